"""What ``vgg launch --launcher ssh`` compares across hosts before a long run: the
toolkit's version and the data every rank will read.

``python -m vggcli.distributed.host_check [--data DIR]`` prints it as one JSON line (run on each
host over ssh); ``fingerprint`` is the same from Python.
"""
import json
import os
import sys

from ..training.checkpoint import sha256


def data_fingerprint(folder):
    """{file: [size, sha256 or None]} of a packed folder: sizes of the .rec files (140 GB
    at ImageNet's size: hashing them would take longer than a check should), sizes and
    hashes of the .idx files (each record's offset: two packs of other images or
    another order differ there) and of manifest.json."""
    try:
        names = sorted(os.listdir(folder))
    except OSError as e:
        return {"error": "%s: %s" % (folder, e.strerror or e)}
    found = {}
    for name in names:
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            continue
        try:
            if name.endswith((".idx", ".lst")) or name == "manifest.json":
                found[name] = [os.path.getsize(path), sha256(path)]
            elif name.endswith(".rec"):
                found[name] = [os.path.getsize(path), None]
        except OSError as e:
            return {"error": "%s: %s" % (path, e.strerror or e)}
    return found


def fingerprint(data=None):
    from .. import __version__
    found = {"version": __version__, "python": "%d.%d" % sys.version_info[:2]}
    if data:
        found["data"] = data_fingerprint(data)
    return found


def differences(here, there):
    """Why ``there`` (a host's fingerprint) is not ``here``'s, as short phrases."""
    out = []
    for key in ("version", "python"):
        if here.get(key) != there.get(key):
            out.append("%s %s there, %s here" % (
                "vgg" if key == "version" else "Python", there.get(key), here.get(key)))
    mine, theirs = here.get("data"), there.get("data")
    if mine is None:
        return out
    if "error" in (theirs or {}):
        return out + ["cannot read the data: %s" % theirs["error"]]
    for name in sorted(set(mine) | set(theirs)):
        if name not in theirs:
            out.append("%s is missing there" % name)
        elif name not in mine:
            out.append("%s is there but not here" % name)
        elif mine[name][0] != theirs[name][0]:
            out.append("%s is %d bytes there, %d here" % (name, theirs[name][0], mine[name][0]))
        elif mine[name][1] != theirs[name][1]:
            out.append("%s differs (sha256)" % name)
    return out


def main(argv=None):
    import argparse
    parser = argparse.ArgumentParser(prog="python -m vggcli.distributed.host_check")
    parser.add_argument("--data", default=None)
    args = parser.parse_args(argv)
    print(json.dumps(fingerprint(args.data)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
