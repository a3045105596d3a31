"""The command line, as a user types it."""
import json
import subprocess
import sys

from click.testing import CliRunner

from vggcli import __version__
from vggcli.cli import cli


def run(*args):
    return CliRunner().invoke(cli, list(args))


def test_version_and_help():
    result = run("--version")
    assert result.exit_code == 0 and __version__ in result.output
    result = run("--help")
    assert result.exit_code == 0 and "nets" in result.output and "--threads" in result.output


def test_bad_net_is_a_usage_error_listing_valid_names():
    result = run("nets", "--net", "F")
    assert result.exit_code == 2
    assert "Error: Invalid value for '--net': unknown net 'F'; valid names: A, A-LRN, B, C, " \
           "D, E" in result.output
    assert "Traceback" not in result.output


def test_bad_crop_size_is_one_line_exit_2():
    result = run("nets", "--crop-size", "100")
    assert result.exit_code == 2
    assert result.output.strip() == \
        "Error: crop size must be a positive multiple of 32 (five 2x2 pools), got 100"


def test_nets_prints_tables_with_exact_counts():
    result = run("nets")
    assert result.exit_code == 0, result.output
    for count in ("132,863,336", "133,047,848", "133,638,952", "138,357,544", "143,667,240"):
        assert count in result.output
    assert "conv3-256 x2, conv1-256" in result.output  # C, stage 3
    assert "conv3-64, LRN" in result.output  # A-LRN, stage 1


def test_nets_json_for_a_small_net():
    result = run("nets", "--net", "vgg16", "--classes", "10", "--width-mult", "0.25",
                 "--fc-width", "64", "--crop-size", "64", "--json")
    rows = json.loads(result.output)
    assert [r["net"] for r in rows] == ["D"]
    convs = [(3, 16), (16, 16), (16, 32), (32, 32), (32, 64), (64, 64), (64, 64),
             (64, 128), (128, 128), (128, 128), (128, 128), (128, 128), (128, 128)]
    expected = sum(9 * a * b + b for a, b in convs) + (128 * 4 + 1) * 64 + 65 * 64 + 65 * 10
    assert rows[0]["params"] == expected


def test_console_entry_points():
    out = subprocess.run([sys.executable, "-m", "vggcli", "--version"], capture_output=True,
                         text=True, check=True).stdout
    assert __version__ in out
    bad = subprocess.run([sys.executable, "-m", "vggcli", "nets", "--net", "Q"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith("Error: Invalid value for '--net'")


def test_threads_default_to_available_cores():
    code = ("import os; os.environ.pop('OMP_NUM_THREADS', None); import vggcli; "
            "vggcli.configure(); import mxnet; "
            "print(os.environ['OMP_NUM_THREADS'], len(os.sched_getaffinity(0)))")
    env = {k: v for k, v in __import__("os").environ.items() if k != "OMP_NUM_THREADS"}
    chosen, cores = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                   env=env, check=True).stdout.split()
    assert chosen == cores


def test_importing_the_library_changes_no_environment():
    """Only the vgg command (or vggcli.configure) sets threads, AMX and log levels.
    (MXNet and OpenCV set variables of their own on import: they load first.)"""
    code = ("import os, sys; before = dict(os.environ); import vggcli, data_tools.recordio; "
            "assert dict(os.environ) == before, 'import vggcli'; "
            "import cv2, mxnet; before = dict(os.environ); import vggcli, data_tools.recordio, "
            "data_tools.pack, vggcli.nets.models, vggcli.testing.evaluate, "
            "vggcli.testing.features; "
            "changed = sorted(k for k in set(before) | set(os.environ) "
            "if before.get(k) != os.environ.get(k)); print(changed); "
            "sys.exit(1 if changed else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]


def test_data_tools_stand_without_vggcli():
    """data_tools depends on nothing of vggcli (vggcli builds on data_tools)."""
    import pathlib
    root = pathlib.Path(__file__).resolve().parent.parent / "data_tools"
    for path in root.glob("*.py"):
        imports = [line for line in path.read_text().splitlines()
                   if line.lstrip().startswith(("import ", "from "))]
        assert not [line for line in imports if "vggcli" in line], path.name


def test_unknown_benchmark_is_a_usage_error():
    result = run("bench", "nope")
    assert result.exit_code == 2
    assert result.output.strip().startswith("Error: unknown benchmark nope; valid: inference")


def test_every_imported_package_is_declared():
    """setup.py declares each third-party package vggcli and data_tools import
    (install_requires, or the extra that the importing feature needs)."""
    import ast
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parent.parent
    distribution = {"cv2": "opencv-python", "PIL": "Pillow", "yaml": "PyYAML",
                    "sklearn": "scikit-learn", "google": "protobuf", "skimage": "scikit-image"}
    local = {"vggcli", "data_tools"} | set(sys.stdlib_module_names)
    imported = set()
    for path in list((root / "vggcli").glob("*.py")) + list((root / "data_tools").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    setup = (root / "setup.py").read_text()
    declared = {name.lower() for name in re.findall(r'"([A-Za-z][\w.-]*)\s*[<>=!~]', setup)}
    missing = sorted(distribution.get(m, m) for m in imported - local
                     if distribution.get(m, m).lower() not in declared)
    assert not missing, missing
    assert "pandas" not in declared  # nothing imports it


_TEMP_SPACE_PROBE = """
import os, sys
if sys.argv[1] != "ours":
    os.environ["MXNET_CPU_TEMP_COPY"] = sys.argv[1]
import vggcli
vggcli.configure()
import mxnet as mx
from mxnet import autograd, gluon
from mxnet.gluon import nn
def peak():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))
mx.random.seed(0)
net = nn.HybridSequential()
net.add(nn.Conv2D(64, 3, padding=1, activation="relu"),
        nn.Conv2D(64, 3, padding=1, activation="relu"), nn.MaxPool2D(2, 2),
        nn.GlobalAvgPool2D(), nn.Dense(10))
net.initialize(mx.init.Xavier())
net.hybridize(static_alloc=True, static_shape=True)
trainer = gluon.Trainer(net.collect_params(), "sgd", dict(learning_rate=0.01, momentum=0.9))
x, y = mx.nd.random.uniform(-128, 127, shape=(8, 3, 112, 112)), mx.nd.arange(8)
for _ in range(8):
    with autograd.record():
        loss = gluon.loss.SoftmaxCrossEntropyLoss()(net(x), y)
    loss.backward()
    trainer.step(8)
    mx.nd.waitall()
print(os.environ["MXNET_CPU_TEMP_COPY"], peak())
"""


def test_one_cpu_temp_space_copy_saves_training_memory():
    """vggcli.configure sets MXNET_CPU_TEMP_COPY=1 unless the user chose a value. MXNet's
    default of 4 copies each grow to the largest oneDNN reorder they serve (here one
    8 x 64 x 112 x 112 float32 array, A bytes), so over 8 training steps of VGG-D's first
    block the peak with 4 copies must exceed the peak with one by at least 2 A (measured
    on VGG-D: 3 A; 2 A leaves one copy's worth for allocator noise)."""
    def run(setting):
        out = subprocess.run([sys.executable, "-c", _TEMP_SPACE_PROBE, setting],
                             capture_output=True, text=True, check=True).stdout.split()
        return out[0], int(out[1])
    chosen, ours = run("ours")
    kept, mxnet_default = run("4")
    assert (chosen, kept) == ("1", "4")
    array = 8 * 64 * 112 * 112 * 4
    assert mxnet_default - ours >= 2 * array, (mxnet_default - ours) / array
