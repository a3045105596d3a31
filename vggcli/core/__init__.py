"""The bottom layer every step uses: errors, MXNet's and numpy's file formats (ndfile),
image decoding, devices, precision, child processes, the process set-up (env) and
third-party workarounds (compat), plots."""
