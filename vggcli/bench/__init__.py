"""`make bench`: the benchmark suite, its peers (PyTorch, MXNet's own tools) measured
in the same run, and the cluster bench."""
