"""vgg train on scikit-learn's digits (real scans), with scaled-down nets."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

import mxnet as mx

from vggcli.training import checkpoint, recipes
from vggcli.nets import models
from vggcli.nets import params as paramfile
from vggcli.cli import cli
from vggcli.core.errors import VggError, VggRuntimeError
from vggcli.training.train import train
from vggcli.training.train_setup import A_LAYERS

from .conftest import config


def epoch_lines(out):
    with open(os.path.join(out, "log.jsonl")) as f:
        return [json.loads(line) for line in f if '"event": "epoch"' in line]


@pytest.mark.slow
@pytest.mark.numerics
def test_net_a_learns_digits(trained_a):
    """Learning, beyond noise: a net at chance has 0.9 top-1 error on the 359 val
    images with a binomial standard error of sqrt(0.9 * 0.1 / 359) = 0.016, so an
    error under 0.9 - 5 * 0.016 = 0.82 is not chance."""
    out, summary = trained_a
    assert summary["best_val_top1_err"] < 0.9 - 5 * (0.9 * 0.1 / 359) ** 0.5
    lines = epoch_lines(out)
    assert len(lines) == summary["epochs"] == 14
    assert lines[-1]["train_loss"] < lines[0]["train_loss"] - 0.5
    for name in ("best.params", "final.params", "config.yaml", "curves.png", "log.jsonl"):
        assert os.path.isfile(os.path.join(out, name)), name
    with open(os.path.join(out, "curves.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
@pytest.mark.numerics
def test_net_d_initialised_from_a_learns_digits(trained_a, digits, tmp_path):
    """Learning with margin: chance is 0.9; the seeds' spread is recorded below."""
    a_out, _ = trained_a
    summary = train(config(digits, tmp_path, net="D", epochs=6, patience=4, init="xavier",
                           init_from=os.path.join(a_out, "best.params")), progress=False)
    # chance 0.9; seeds 0, 1, 2 on AVX2 (each from its own seed's A): 0.42, 0.35, 0.45
    assert summary["best_val_top1_err"] < 0.7


def test_init_from_a_copies_exactly_and_initialises_the_rest(trained_a):
    a_out, _ = trained_a
    a_arrays, _ = paramfile.read_params(os.path.join(a_out, "best.params"))
    fresh = models.initialize(models.get_model("E", classes=10, width_mult=0.25, fc_width=128,
                                               crop_size=32), init="xavier", seed=5)
    before = {k: p.data().asnumpy().copy() for k, p in fresh._collect_params_with_prefix().items()}
    from vggcli.training.train_setup import init_from_a
    copied = init_from_a(fresh, os.path.join(a_out, "best.params"), [mx.cpu()])
    assert len(copied) == 2 * len(A_LAYERS)
    for name, param in fresh._collect_params_with_prefix().items():
        value = param.data().asnumpy()
        if name in copied:
            np.testing.assert_array_equal(value, a_arrays[name].asnumpy())
        else:
            np.testing.assert_array_equal(value, before[name])
            if name.endswith("weight"):
                assert value.std() > 0


def test_init_from_a_of_another_width_is_refused(trained_a):
    a_out, _ = trained_a
    wider = models.get_model("D", classes=10, width_mult=0.5, fc_width=128, crop_size=32)
    models.initialize(wider)
    from vggcli.training.train_setup import init_from_a
    with pytest.raises(VggError, match=r"conv1_1.weight is \(16, 3, 3, 3\) there but "
                                       r"\(32, 3, 3, 3\) in net D"):
        init_from_a(wider, os.path.join(a_out, "best.params"), [mx.cpu()])


STEP = dict(net="B", epochs=1, init="xavier", dropout=0.0, width_mult=0.125, fc_width=32,
            seed=3, log_every=1)


def one_batch(digits, tmp_path):
    """The first training batch (32 real digit crops) of the small config."""
    from vggcli.training.data import read_manifest
    from vggcli.training.train_setup import load_data
    cfg = config(digits, tmp_path, workers=0, **STEP)
    loader = load_data(cfg, read_manifest(digits))[0]
    return cfg, next(iter(loader))


def gradients_after(cfg, batch, ctx, kvstore="local", accumulate=1):
    """A fresh net (the config's seed) and its trainer after one forward/backward of
    ``batch`` split over ``ctx`` (in ``accumulate`` micro-batches) and the KVStore's
    sum of the devices' gradients."""
    from mxnet import gluon

    from vggcli.training.train import accumulate_gradients
    from vggcli.training.train_setup import build_net, make_trainer
    net = models.initialize(build_net(cfg, 10), init=cfg["init"], ctx=ctx, seed=cfg["seed"])
    if accumulate > 1:
        net.collect_params().setattr("grad_req", "add")
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = make_trainer(net, cfg["lr"], cfg, kvstore)
    accumulate_gradients(net, batch, ctx, gluon.loss.SoftmaxCrossEntropyLoss(), accumulate)
    trainer.allreduce_grads()
    return net, trainer


def grads(net, ctx_index=0):
    return {name: p.list_grad()[ctx_index].asnumpy().astype(np.float64)
            for name, p in net._collect_params_with_prefix().items()}


def weights(net):
    return {name: p.data().asnumpy().astype(np.float64)
            for name, p in net._collect_params_with_prefix().items()}


def step_bounds(cfg, batch):
    """Per parameter, the bound on how far two float32 evaluations of the batch's
    gradient may be apart when only the summation order differs.

    A weight gradient sums B x P terms (images x output positions; the longest is
    conv1_1's, P = crop^2). Splitting the batch over devices regroups that sum
    (two half sums added by the KVStore) and lets oneDNN pick kernels for another
    batch size, so the two results may differ by reorder_bound(B * crop^2) times
    the sum of the terms' absolute values. That sum is at least sum_b |g_b| over
    the per-image gradients g_b, which stand in for it here (they leave out
    cancellation inside one image; the worst-case linear bound exceeds real
    sqrt(n) rounding by ~sqrt(B * crop^2) = 181x, which covers it). The bound is
    normwise per parameter tensor: ||g_split - g_whole|| <= bound.
    """
    import mxnet as mx

    from .numerics import reorder_bound
    crops, offsets, labels = batch
    total = None
    for b in range(labels.shape[0]):
        one = (crops[b:b + 1], offsets[b:b + 1], labels[b:b + 1])
        g = grads(gradients_after(cfg, one, [mx.cpu(0)])[0])
        total = {k: np.abs(v) for k, v in g.items()} if total is None else \
            {k: total[k] + np.abs(v) for k, v in g.items()}
    factor = reorder_bound(labels.shape[0] * cfg["crop_size"] ** 2)
    return {k: factor * np.linalg.norm(v) for k, v in total.items()}


@pytest.mark.numerics
def test_two_devices_compute_the_gradient_of_the_whole_batch(digits, tmp_path):
    """Paper §3.3: splitting the batch over devices changes nothing but rounding.

    (1) Each device's gradient is exactly the one a single device computes for that
    half (same kernels, same shapes), and the KVStore's sum of two float32 arrays is
    correctly rounded and commutative: bit-equal to the two halves' sum here.
    (2) That sum equals the whole batch's gradient within ``step_bounds``.
    (3) After one SGD step (momentum buffer empty) w' = w - lr (g / B + wd w), so the
    weights differ by at most lr / B times the gradient bound, plus the update's own
    rounding (3 operations: 3u|w| each).
    """
    import mxnet as mx

    from .numerics import FLOAT32_U, describe
    cfg, batch = one_batch(digits, tmp_path)
    crops, offsets, labels = batch
    size = labels.shape[0]
    assert size == 32
    one_net, one_trainer = gradients_after(cfg, batch, [mx.cpu(0)])
    two_net, two_trainer = gradients_after(cfg, batch, [mx.cpu(0), mx.cpu(1)])
    whole, split = grads(one_net), grads(two_net)
    assert all(np.array_equal(split[k], grads(two_net, 1)[k]) for k in split)

    halves = [grads(gradients_after(cfg, [a[h * 16:(h + 1) * 16] for a in batch],
                                    [mx.cpu(0)])[0]) for h in (0, 1)]
    for name in split:  # (1)
        summed = (halves[0][name].astype(np.float32) + halves[1][name].astype(np.float32))
        np.testing.assert_array_equal(split[name], summed, err_msg=name)

    bounds = step_bounds(cfg, batch)  # (2)
    for name in split:
        gap = np.linalg.norm(split[name] - whole[name])
        assert gap <= bounds[name], describe("gradient " + name, gap, bounds[name])
        assert np.linalg.norm(whole[name]) > 10 * bounds[name], name  # the test can fail

    before = weights(one_net)  # (3): both nets start from the same seed
    one_trainer.update(size)
    two_trainer.update(size)
    after_one, after_two = weights(one_net), weights(two_net)
    for name in after_one:
        bound = (cfg["lr"] / size * bounds[name]
                 + 6 * FLOAT32_U * np.linalg.norm(before[name]))
        gap = np.linalg.norm(after_two[name] - after_one[name])
        assert gap <= bound, describe("weights " + name, gap, bound)
        assert np.linalg.norm(after_one[name] - before[name]) > 10 * bound, name


@pytest.mark.numerics
@pytest.mark.parametrize("micro", [2, 4])
def test_accumulated_micro_batches_give_the_whole_batch_gradient(digits, tmp_path, micro):
    """--accumulate N sums the gradients of N micro-batches into one step: the sum is
    the whole batch's gradient regrouped (as over devices), so within ``step_bounds``;
    dropout is off in one_batch's config, so the masks do not differ. A step that kept
    only the last micro-batch's gradient would miss it by about (N-1)/N of its norm,
    which the second assertion shows is far outside the bound."""
    import mxnet as mx

    from .numerics import describe
    cfg, batch = one_batch(digits, tmp_path)
    whole = grads(gradients_after(cfg, batch, [mx.cpu(0)])[0])
    summed = grads(gradients_after(cfg, batch, [mx.cpu(0)], accumulate=micro)[0])
    bounds = step_bounds(cfg, batch)
    for name in whole:
        gap = np.linalg.norm(summed[name] - whole[name])
        assert gap <= bounds[name], describe("gradient " + name, gap, bounds[name])
        assert np.linalg.norm(whole[name]) > 10 * bounds[name], name


def test_accumulate_trains_and_refuses_what_does_not_divide(digits, tmp_path):
    summary = train(config(digits, tmp_path / "acc", accumulate=4, **STEP), progress=False)
    assert summary["iterations"] == 45
    with open(tmp_path / "acc" / "log.jsonl") as f:
        start = json.loads(f.readline())
    assert start["config"]["accumulate"] == 4
    with pytest.raises(VggError, match="--accumulate 5 must divide the batch of 32"):
        train(config(digits, tmp_path / "bad", accumulate=5, **STEP), progress=False)


def test_gradient_compression_sends_two_bit_gradients(digits, tmp_path):
    """--gradient-compression 2bit:t (MXNet's, with error feedback): each device sends
    -t, 0 or +t per element and keeps the rest as a residual for the next step, so the
    sum over two devices holds only values in {-2t, -t, 0, t, 2t}; uncompressed it
    holds thousands of distinct values. It needs something to compress."""
    threshold = 0.25
    cfg, batch = one_batch(digits, tmp_path)
    net = gradients_after(dict(cfg, gradient_compression="2bit:%g" % threshold), batch,
                          [mx.cpu(0), mx.cpu(1)], kvstore="device")[0]
    plain = grads(gradients_after(cfg, batch, [mx.cpu(0), mx.cpu(1)], kvstore="device")[0])
    for name, grad in grads(net).items():
        levels = grad / threshold
        np.testing.assert_array_equal(levels, np.round(levels), err_msg=name)
        assert np.abs(levels).max() <= 2, name
    assert len(np.unique(plain["features.conv1_1.weight"])) > 100
    with pytest.raises(VggError, match="needs --kvstore device with several devices"):
        train(config(digits, tmp_path / "one", gradient_compression="2bit:0.5", **STEP),
              progress=False)
    with pytest.raises(VggError, match="2bit:THRESHOLD"):
        recipes.validate(dict(gradient_compression="1bit"))


@pytest.mark.numerics
def test_two_devices_train_like_one_device(digits, tmp_path):
    """A sanity check over the first 25 steps of an epoch, not a numerics bound (the
    step test above is): rounding differences grow chaotically with the steps, to
    6e-5 relative on AVX2 and 1.8e-4 on AVX-512 within 25 steps (6e-3 by step 45),
    while a lost device gradient (half the step, measured as a run at lr / 2) moves
    the losses by up to 2% within those 25 steps. 5e-3 lies between the two."""
    train(config(digits, tmp_path / "one", devices="cpu", **STEP), progress=False)
    train(config(digits, tmp_path / "two", devices="cpu:0,1", **STEP), progress=False)

    def losses(out):
        with open(out / "log.jsonl") as f:
            return [json.loads(line)["loss"] for line in f if '"event": "iter"' in line]

    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert len(one) == len(two) == 45
    np.testing.assert_allclose(two[:25], one[:25], rtol=5e-3)
    with open(tmp_path / "two" / "log.jsonl") as f:
        start_line = json.loads(f.readline())
    assert start_line["devices"] == ["cpu(0)", "cpu(1)"] and start_line["kvstore"] == "local"


def _kill_mid_epoch(args, ckpt_root, timeout=120):
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        names = checkpoint.list_checkpoints(ckpt_root)
        if any(not n.endswith("batch-000000") and n.startswith("epoch-0001") for n in names):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "training ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights(digits, tmp_path):
    """SIGKILL in the middle of epoch 2, then --resume: the final weights are bit-identical
    to an uninterrupted run, because data order, augmentation and dropout are functions
    of (seed, epoch, batch) and the momentum buffers are checkpointed."""
    flags = ["--net", "A", "--data", digits, "--width-mult", "0.125", "--fc-width", "64",
             "--crop-size", "32", "--scale", "36", "--batch-size", "32", "--epochs", "3",
             "--init", "xavier", "--checkpoint-every", "8", "--quiet"]
    base = [sys.executable, "-m", "vggcli", "train"] + flags
    subprocess.run(base + ["--out", str(tmp_path / "whole")], check=True, capture_output=True)
    killed = tmp_path / "killed"
    _kill_mid_epoch(base + ["--out", str(killed)], str(killed / "checkpoints"))
    assert not (killed / "final.params").exists()
    done = subprocess.run([sys.executable, "-m", "vggcli", "train", "--resume", str(killed),
                           "--quiet"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    whole, _ = paramfile.read_params(str(tmp_path / "whole" / "final.params"))
    resumed, _ = paramfile.read_params(str(killed / "final.params"))
    for name in whole:
        np.testing.assert_array_equal(whole[name].asnumpy(), resumed[name].asnumpy())
    strip = ("time", "seconds", "images_per_second")
    assert [{k: v for k, v in r.items() if k not in strip} for r in epoch_lines(killed)] == \
        [{k: v for k, v in r.items() if k not in strip} for r in epoch_lines(tmp_path / "whole")]


def test_damaged_checkpoint_is_a_one_line_error(digits, tmp_path):
    out = tmp_path / "run"
    train(config(digits, out, net="A", epochs=1, width_mult=0.125, fc_width=32),
          progress=False)
    folder = os.path.join(out, "checkpoints", checkpoint.list_checkpoints(
        str(out / "checkpoints"))[-1])
    weights = os.path.join(folder, "weights.params")
    with open(weights, "r+b") as f:
        f.seek(200)
        f.write(b"\xff\xff\xff\xff")
    result = CliRunner().invoke(cli, ["train", "--resume", str(out)])
    assert result.exit_code == 2
    assert result.output.strip() == ("Error: checkpoint file %s is damaged: its sha256 does "
                                      "not match checksums.json" % weights)
    result = CliRunner().invoke(cli, ["train", "--data", digits, "--out", str(out)])
    assert result.exit_code == 2 and "already holds a run" in result.output


def test_diverging_loss_stops_with_a_message(digits, tmp_path):
    # a checkpoint every iteration: the first loss (at init) is finite whatever the lr,
    # so a last good checkpoint always exists when the loss blows up
    cfg = config(digits, tmp_path, net="A", epochs=2, width_mult=0.125, fc_width=32,
                 init="xavier", lr=1e4, checkpoint_every=1)
    with pytest.raises(VggRuntimeError, match="loss became (nan|inf) at epoch 1"):
        train(cfg, progress=False)
    assert checkpoint.list_checkpoints(str(tmp_path / "checkpoints"))
    assert not (tmp_path / "final.params").exists()


# --- recipes and options -----------------------------------------------------------

def test_every_table_3_row_has_a_recipe_with_its_parent():
    names = recipes.list_recipes()
    localisation = ["D-scr-fc-384", "D-pcr-fc-384", "D-pcr-384", "D-pcr-256"]  # Tables 8, 9
    assert names == sorted(["A-256", "A-LRN-256", "B-256"] + localisation +
                           ["%s-%s" % (n, s) for n in "CDE" for s in ("256", "384", "jitter")])
    for name in localisation:
        loaded = recipes.load_recipe(name)
        scale = name.rsplit("-", 1)[1]
        assert loaded["parent"] == "D-" + scale and loaded["scale"] == scale
        assert loaded["lr"] == 0.001 and loaded["task"] == name.split("-")[1]
        assert loaded["train_layers"] == ("fc" if "-fc-" in name else "all")
    assert recipes.chain("D-pcr-384") == ["A-256", "D-256", "D-384", "D-pcr-384"]
    for name in names:
        loaded = recipes.load_recipe(name)
        assert loaded["net"] in models.CONFIGS
    assert recipes.chain("E-jitter") == ["A-256", "E-256", "E-384", "E-jitter"]
    assert recipes.load_recipe("E-384")["lr"] == 0.001
    assert recipes.load_recipe("D-jitter")["scale"] == "256:512"


def test_recipe_plan_prints_the_exact_chain():
    result = CliRunner().invoke(cli, ["recipe", "plan", "E-jitter", "--data", "d",
                                      "--devices", "gpu:0-3"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "A-256 -> E-256 -> E-384 -> E-jitter"
    assert ("vgg train --recipe E-256 --data d --out runs/E-256 --init-from "
            "runs/A-256/best.params --devices gpu:0-3") in result.output
    assert "--finetune-from runs/E-384/best.params" in result.output
    assert "--dtype" not in result.output
    result = CliRunner().invoke(cli, ["recipe", "plan", "D-256", "--dtype", "bfloat16"])
    lines = [line for line in result.output.splitlines() if line.startswith("vgg train")]
    assert len(lines) == 2 and all(line.endswith(" --dtype bfloat16") for line in lines)


def test_recipe_validation_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("net: D\nlearning_rate: 0.1\n")
    with pytest.raises(VggError,
                       match="unknown key learning_rate; valid keys: accumulate, batch_size"):
        recipes.load_recipe(str(bad))
    bad.write_text("net: D\nlr: fast\n")
    with pytest.raises(VggError, match="lr must be float, got 'fast'"):
        recipes.load_recipe(str(bad))
    bad.write_text("net: D\nscale: 512:256\n")
    with pytest.raises(VggError, match="Smin <= Smax"):
        recipes.load_recipe(str(bad))
    cfg, meta = recipes.resolve("D-384", {"lr": 0.002, "devices": "cpu:0,1"})
    assert cfg["lr"] == 0.002 and cfg["scale"] == "384" and meta["parent"] == "D-256"
    assert cfg["momentum"] == 0.9 and cfg["wd"] == 0.0005 and cfg["batch_size"] == 256


def test_train_cli_usage_errors(digits, tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["train", "--recipe", "D-256", "--data", digits, "--out",
                                 str(tmp_path)])
    assert result.exit_code == 2
    assert "recipe D-256 starts from the weights of A-256: give --init-from" in result.output
    result = runner.invoke(cli, ["train", "--net", "A", "--data", digits, "--out",
                                 str(tmp_path), "--kvstore", "dist_typo"])
    assert result.exit_code == 2 and "'dist_typo' is not one of 'local', 'device'" in \
        result.output
    result = runner.invoke(cli, ["train", "--net", "A", "--data", digits, "--out",
                                 str(tmp_path), "--init", "glorot"])
    assert result.exit_code == 2 and "'glorot' is not one of 'normal', 'xavier', 'he'" in \
        result.output
    result = runner.invoke(cli, ["train", "--net", "A", "--data", digits, "--out",
                                 str(tmp_path), "--lr-steps", "9,3"])
    assert result.exit_code == 2 and "lr_steps must be increasing epochs" in result.output
    result = runner.invoke(cli, ["recipe", "plan", "D-256", "--devices", "tpu:0"])
    assert result.exit_code == 2 and "devices must look like cpu" in result.output
    result = runner.invoke(cli, ["train", "--net", "A", "--data", digits, "--out",
                                 str(tmp_path), "--devices", "gpu:0"])
    assert result.exit_code == 2 and "gpu:0 requested, but MXNet sees 0 GPU(s)" in \
        result.output
    result = runner.invoke(cli, ["train", "--resume", str(tmp_path), "--lr", "0.1"])
    assert result.exit_code == 2 and "only --devices" in result.output
    result = runner.invoke(cli, ["train", "--recipe", "Z-256", "--data", digits])
    assert result.exit_code == 2 and "no recipe 'Z-256'; available: A-256" in result.output


def test_input_std_trains_conv1_as_on_normalised_pixels():
    """--input-std s: SGD (momentum, weight decay) on raw pixels with conv1_1's lr / s^2
    and decay x s^2 is SGD on pixels / s with conv1_1's weights x s, checked against a
    second net fed pixels / s explicitly, over three steps. Tolerance: the two compute
    the same sums in a different order in float32 (~1e-7 relative each); 1e-4 relative
    leaves room for three steps of it through 11 layers and is far below the change a
    missing lr_mult makes (conv1_1 would move s^2 = 3318 times further)."""
    import pickle

    from mxnet import autograd, gluon

    from vggcli.training.train_setup import make_trainer
    s = models.PIXEL_STD
    small = dict(classes=4, width_mult=0.0625, fc_width=8, crop_size=32, dropout=0.0)
    ours = models.initialize(models.get_model("A", **small), init="he", seed=0)
    ref = models.initialize(models.get_model("A", **small), init="he", seed=1, input_std=1)
    for name, param in ref._collect_params_with_prefix().items():
        value = ours._collect_params_with_prefix()[name].data()
        param.set_data(value * s if name == "features.conv1_1.weight" else value)
    cfg = dict(momentum=0.9, wd=0.0005, gradient_compression=None, init="he")
    trainers = [make_trainer(ours, 0.01, dict(cfg, input_std="auto"), "local"),
                make_trainer(ref, 0.01, dict(cfg, input_std="1"), "local")]
    rng = np.random.RandomState(0)
    pixels = mx.nd.array(rng.normal(0, s, size=(8, 3, 32, 32)))
    labels = mx.nd.array(rng.randint(0, 4, size=8))
    loss = gluon.loss.SoftmaxCrossEntropyLoss()
    for _ in range(3):
        for net, trainer, x in zip((ours, ref), trainers, (pixels, pixels / s)):
            with autograd.record():
                value = loss(net(x), labels)
            value.backward()
            trainer.step(8)
    for name, param in ours._collect_params_with_prefix().items():
        got = param.data().asnumpy() * (s if name == "features.conv1_1.weight" else 1)
        want = ref._collect_params_with_prefix()[name].data().asnumpy()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max(),
                                   err_msg=name)
    # a dist kvstore's servers get the optimizer pickled, without the parameters
    index = trainers[0]._params.index(ours._collect_params_with_prefix()[
        "features.conv1_1.weight"])
    shipped = pickle.loads(pickle.dumps(trainers[0]._optimizer))
    assert shipped._get_lr(index) == pytest.approx(0.01 / s ** 2)
    assert shipped._get_wd(index) == pytest.approx(0.0005 * s ** 2)
    assert models.input_std_for("xavier") == models.input_std_for("normal") == 1.0


def test_input_std_must_be_a_positive_number():
    for bad in ("0", "-3", "nan", "inf", "wide"):
        with pytest.raises(VggError, match="input_std must be auto or a number > 0"):
            recipes.validate({"input_std": bad}, "config")
