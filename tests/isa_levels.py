"""Run the numerics-sensitive tests once per oneDNN instruction-set level this CPU has.

``make test-isa`` (or ``python -m tests.isa_levels [LEVEL ...]``). oneDNN picks its
kernels for the best instructions the CPU has; ``DNNL_MAX_CPU_ISA`` caps that
choice, so one machine with AMX (Sapphire Rapids) runs the kernels of every
CPU family users have. For each level the host supports, this runs
``pytest -m numerics`` with the cap set, checks that oneDNN reports the level it
was given (DNNL_VERBOSE), and prints a Markdown table; ``--out FILE`` writes it
too. Exit status 1 if any level failed.
"""
import argparse
import datetime
import os
import re
import subprocess
import sys
import time

# oneDNN 2.4's names, lowest first, with the /proc/cpuinfo flags each needs; by
# default the levels from AVX2 up (what users' CPUs have), older ones on request
DEFAULT_LOWEST = "AVX2"
LEVELS = [
    ("SSE41", {"sse4_1"}),
    ("AVX", {"avx"}),
    ("AVX2", {"avx2", "fma"}),
    ("AVX512_CORE", {"avx512f", "avx512bw", "avx512vl", "avx512dq"}),
    ("AVX512_CORE_VNNI", {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni"}),
    ("AVX512_CORE_BF16", {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni",
                          "avx512_bf16"}),
    ("AVX512_CORE_AMX", {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni",
                         "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8"}),
]
PROBE = ("import vggcli; vggcli.configure(); import mxnet as mx; "
         "mx.nd.Convolution(mx.nd.ones((1, 3, 8, 8)), mx.nd.ones((4, 3, 3, 3)), no_bias=True, "
         "kernel=(3, 3), num_filter=4).wait_to_read()")


def host_levels(flags):
    return [name for name, needs in LEVELS if needs <= flags]


def onednn_isa(env):
    """The instruction set oneDNN reports it dispatches to under ``env``."""
    probe = subprocess.run([sys.executable, "-c", PROBE], env=dict(env, DNNL_VERBOSE="1"),
                           capture_output=True, text=True, timeout=300)
    found = re.search(r"dnnl_verbose,info,cpu,isa:(.+)", probe.stdout + probe.stderr)
    return found.group(1).strip() if found else "unknown (probe exit %d)" % probe.returncode


def run_level(level, pytest_args):
    env = dict(os.environ, DNNL_MAX_CPU_ISA=level)
    isa = onednn_isa(env)
    start = time.time()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "numerics",
                           "-p", "no:cacheprovider"] + pytest_args, env=env,
                          capture_output=True, text=True)
    seconds = time.time() - start
    sys.stdout.write(done.stdout[-4000:] + done.stderr[-2000:])
    counts = {kind: 0 for kind in ("passed", "failed", "skipped", "error")}
    for number, kind in re.findall(r"(\d+) (passed|failed|skipped|error)", done.stdout):
        counts[kind] = int(number)
    return dict(level=level, isa=isa, seconds=seconds, returncode=done.returncode, **counts)


def table(rows, cpu):
    lines = ["Numerics tests (`pytest -m numerics`) per oneDNN level, %s, on %s:" % (
        datetime.date.today().isoformat(), cpu), "",
        "| DNNL_MAX_CPU_ISA | oneDNN reports | passed | failed | skipped | time |",
        "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append("| %s | %s | %d | %d | %d | %.0f s |" % (
            r["level"], r["isa"], r["passed"], r["failed"] + r["error"], r["skipped"],
            r["seconds"]))
    return "\n".join(lines) + "\n"


def main(argv=None):
    from vggcli.core.precision import cpu_description, cpu_flags

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("levels", nargs="*", help="levels to run (default: every level "
                        "this CPU supports)")
    parser.add_argument("--out", help="also write the table to this Markdown file")
    parser.add_argument("--pytest-args", default="", help="extra pytest arguments")
    args = parser.parse_args(argv)
    available = host_levels(cpu_flags())
    names = [name for name, _ in LEVELS]
    levels = args.levels or [level for level in available
                             if names.index(level) >= names.index(DEFAULT_LOWEST)]
    unknown = [level for level in levels if level not in available]
    if unknown:
        parser.error("this CPU does not support %s (it supports: %s)"
                     % (", ".join(unknown), ", ".join(available) or "none of them"))
    rows = [run_level(level, args.pytest_args.split()) for level in levels]
    text = table(rows, cpu_description())
    print(text)
    if args.out:
        with open(args.out + ".tmp", "w") as f:
            f.write(text)
        os.replace(args.out + ".tmp", args.out)
    failed = [r for r in rows if r["returncode"] != 0 or r["failed"] or r["error"]]
    return 1 if failed or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
