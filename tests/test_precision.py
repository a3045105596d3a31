"""--dtype: the precision decisions everywhere, and bfloat16 against float32 on CPUs
that have bf16 instructions (skipped elsewhere, with the reason)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from vggcli import precision
from vggcli.errors import VggError

SMALL = dict(width_mult=0.25, fc_width=128, crop_size=32, scale="36", batch_size=32)  # conftest's

# Before any test runs an operator: oneDNN reads DNNL_MAX_CPU_ISA once.
BF16_USED, BF16_NOTE = precision.prepare("bfloat16")
needs_bf16 = pytest.mark.skipif(BF16_USED != "bfloat16", reason=BF16_NOTE or "")


def test_prepare_falls_back_without_amx(monkeypatch):
    monkeypatch.delenv("VGG_BF16_WITHOUT_AMX", raising=False)
    assert precision.prepare("float32") == ("float32", None)
    assert precision.prepare("float16") == ("float16", None)  # devices decide later
    used, note = precision.prepare("bfloat16", flags={"avx2", "fma"})
    assert used == "float32" and "neither AMX nor AVX512-BF16" in note
    used, note = precision.prepare("bfloat16", flags={"avx512f", "avx512_bf16"})
    assert used == "float32" and "no AMX" in note
    monkeypatch.setenv("VGG_BF16_WITHOUT_AMX", "1")
    assert precision.prepare("bfloat16", flags={"avx512f", "avx512_bf16"}) == ("bfloat16", None)
    with pytest.raises(VggError, match="--dtype must be one of"):
        precision.prepare("bf16")


def test_prepare_enables_amx_only_with_the_kernels_permission(monkeypatch):
    amx = {"avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8"}
    monkeypatch.delenv("VGG_BF16_WITHOUT_AMX", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    monkeypatch.setattr(precision, "request_amx_permission", lambda: False)
    monkeypatch.setattr(precision, "_amx", {})  # as in a new process
    used, note = precision.prepare("bfloat16", flags=amx)
    assert used == "float32" and "AMX tile state" in note
    assert "DNNL_MAX_CPU_ISA" not in os.environ  # oneDNN would die with SIGILL
    monkeypatch.setattr(precision, "request_amx_permission", lambda: True)
    monkeypatch.setattr(precision, "_amx", {})
    assert precision.prepare("bfloat16", flags=amx) == ("bfloat16", None)
    assert os.environ["DNNL_MAX_CPU_ISA"] == "AVX512_CORE_AMX"


def test_cpu_flags_are_read_from_proc(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\n"
                    "flags\t\t: fpu avx2 avx512f amx_bf16 amx_tile\n\n"
                    "processor\t: 1\nflags\t\t: fpu avx2 avx512f amx_bf16 amx_tile\n")
    flags = precision.cpu_flags(str(info))
    assert precision.bfloat16_isa(flags) == "amx"
    assert precision.cpu_description(str(info)) == "Intel(R) Xeon(R) Processor, AVX-512 AMX-BF16"
    assert precision.cpu_flags(str(tmp_path / "missing")) == set()
    assert precision.cpu_description(str(tmp_path / "missing")) == "unknown CPU, no AVX2"


def test_dtype_needs_the_right_devices():
    import mxnet as mx
    with pytest.raises(VggError, match="float16 needs GPUs"):
        precision.check_devices("float16", [mx.cpu()])
    with pytest.raises(VggError, match="bfloat16 runs on the CPU"):
        precision.check_devices("bfloat16", [mx.gpu(0)])
    precision.check_devices("float32", [mx.cpu(), mx.cpu(1)])


def _vgg(*args):
    return subprocess.run([sys.executable, "-m", "vggcli"] + list(args), capture_output=True,
                          text=True)


def test_cli_refuses_float16_on_cpu_and_int8_with_dtype(digits, trained_a, tmp_path):
    out = _vgg("train", "--net", "A", "--data", digits, "--out", str(tmp_path / "r"),
               "--dtype", "float16", "--epochs", "1", "--quiet")
    assert out.returncode == 2 and "float16 needs GPUs" in out.stderr
    assert "Traceback" not in out.stderr
    params = os.path.join(trained_a[0], "best.params")
    out = _vgg("eval", "--params", params, "--data", os.path.join(digits, "val.rec"),
               "--out", str(tmp_path / "e"), "--int8", "8", "--dtype", "bfloat16")
    assert out.returncode == 2 and "one of --int8 and --dtype" in out.stderr


@pytest.mark.skipif(BF16_USED == "bfloat16", reason="this CPU runs bfloat16")
def test_cli_bfloat16_falls_back_with_a_message(digits, trained_a, tmp_path):
    params = os.path.join(trained_a[0], "best.params")
    out = _vgg("eval", "--params", params, "--data", os.path.join(digits, "val.rec"),
               "--out", str(tmp_path / "e"), "--limit", "40", "--dtype", "bfloat16", "--quiet")
    assert out.returncode == 0, out.stderr
    assert "note: bfloat16:" in out.stderr and "running float32" in out.stderr
    with open(tmp_path / "e" / "report.json") as f:
        assert json.load(f)["precision"] == "float32"


# --- bfloat16 numbers (CPUs with AMX, or AVX512-BF16 with VGG_BF16_WITHOUT_AMX=1) ------

@pytest.fixture(scope="module")
def net_and_meta(trained_a):
    from vggcli import models
    net = models.load_model(os.path.join(trained_a[0], "best.params"))
    return net, net.file_meta


@needs_bf16
def test_bfloat16_eval_agrees_with_float32(net_and_meta, digits, tmp_path):
    from vggcli import evaluate as ev
    net, meta = net_and_meta
    val = os.path.join(digits, "val.rec")
    common = dict(mean_rgb=meta["mean_rgb"], progress=False, mode="both")
    fp32 = ev.evaluate(net, val, str(tmp_path / "fp32"), [36, 48], **common)
    bf16 = ev.evaluate(net, val, str(tmp_path / "bf16"), [36, 48], dtype="bfloat16", **common)
    a = np.load(str(tmp_path / "fp32" / "scores.npy"))
    b = np.load(str(tmp_path / "bf16" / "scores.npy"))
    assert bf16["precision"] == "bfloat16"
    assert not np.array_equal(a, b)  # it did compute in 16 bits
    assert np.mean(a.argmax(axis=1) == b.argmax(axis=1)) >= 0.99
    assert abs(bf16["top1_error"] - fp32["top1_error"]) <= 0.01
    assert bf16["fidelity"]["top1_agreement"] >= 0.95
    assert bf16["fidelity"]["cosine_mean"] >= 0.99


@needs_bf16
def test_bfloat16_features_are_close_to_float32(net_and_meta, digits, tmp_path):
    from vggcli import features as feat
    net, meta = net_and_meta
    folder = os.path.join(os.path.dirname(digits), "raw", "val")
    common = dict(images=folder, means=[meta["mean_rgb"]], progress=False)
    feat.extract([net], "fc7", [36], str(tmp_path / "f32"), **common)
    feat.extract([net], "fc7", [36], str(tmp_path / "b16"), dtype="bfloat16", **common)
    a, _, ids_a, _ = feat.load_features(str(tmp_path / "f32.npz"))
    b, _, ids_b, info = feat.load_features(str(tmp_path / "b16.npz"))
    assert ids_a == ids_b and info["precision"] == "bfloat16"
    assert info["fidelity"]["cosine_mean"] >= 0.99
    cosine = np.sum(a * b, axis=1)  # both L2-normalised
    assert cosine.mean() >= 0.99 and cosine.min() >= 0.95


def _train_log(digits, out, dtype):
    """Per-iteration losses and the final val error of one short run (its own process:
    MXNet's AMP is process-wide)."""
    args = ["train", "--net", "A", "--data", digits, "--out", str(out), "--epochs", "2",
            "--init", "xavier", "--log-every", "1", "--dtype", dtype, "--quiet"]
    for key, value in SMALL.items():
        args += ["--" + key.replace("_", "-"), str(value)]
    done = _vgg(*args)
    assert done.returncode == 0, done.stderr
    with open(os.path.join(str(out), "log.jsonl")) as f:
        records = [json.loads(line) for line in f]
    losses = np.array([r["loss"] for r in records if r["event"] == "iter"])
    epochs = [r for r in records if r["event"] == "epoch"]
    return records[0]["dtype"], losses, epochs[-1]["val_top1_err"]


@needs_bf16
def test_bfloat16_training_follows_float32(digits, tmp_path):
    dtype32, loss32, err32 = _train_log(digits, tmp_path / "fp32", "float32")
    dtype16, loss16, err16 = _train_log(digits, tmp_path / "bf16", "bfloat16")
    assert (dtype32, dtype16) == ("float32", "bfloat16")
    assert len(loss16) == len(loss32)
    assert not np.array_equal(loss16, loss32)
    # same data, same initial weights: the first loss differs by rounding only (seen
    # 0.1% on Sapphire Rapids); later the two runs drift apart as any two runs do
    assert abs(loss16[0] - loss32[0]) / loss32[0] < 0.005
    assert abs(loss16[-20:].mean() - loss32[-20:].mean()) / loss32[-20:].mean() < 0.1
    assert loss16[-20:].mean() < 0.8 * loss16[:5].mean()  # it learns
    assert abs(err16 - err32) <= 0.1
