"""The fixed step schedule (--lr-steps), the lr warm-up (--warmup) and vgg train's
'did not learn' verdict."""
import json
import math
import os

import pytest

from vggcli.training import recipes
from vggcli.core.errors import VggError
from vggcli.training.schedule import PlateauSchedule, StepSchedule, make_schedule
from vggcli.training.train import LEARNED_LOSS_FRACTION, learning_verdict, train

from .conftest import config


def test_step_schedule_divides_after_the_named_epochs_whatever_val_says():
    schedule = StepSchedule(0.1, [2, 4])
    events = [schedule.step(accuracy) for accuracy in (0.5, 0.6, 0.6, 0.2, 0.9, 0.1)]
    assert events == ["improved", "reduced", "waiting", "reduced", "improved", "waiting"]
    assert schedule.lr == pytest.approx(0.001) and not schedule.finished
    copy = StepSchedule(1.0, [1])
    copy.load_state_dict(schedule.state_dict())
    assert copy.lr == schedule.lr and copy.step(0.0) == "waiting"
    assert isinstance(make_schedule(dict(lr=0.1, lr_steps="3,5")), StepSchedule)
    assert isinstance(make_schedule(dict(lr=0.1, lr_steps=None, patience=2,
                                         max_reductions=3)), PlateauSchedule)


@pytest.mark.parametrize("text", ["", "5,3", "0,4", "a", "3,3"])
def test_bad_lr_steps_are_refused(text):
    with pytest.raises(VggError, match="lr_steps"):
        recipes.validate(dict(lr_steps=text), where="options")


def test_a_loss_near_chance_is_reported_as_not_learned():
    chance = math.log(10)
    assert learning_verdict(chance - 0.01, 10)[0] is False
    assert learning_verdict(LEARNED_LOSS_FRACTION * chance - 0.01, 10)[0] is True
    learned, sentence = learning_verdict(2.30, 10)
    assert "did not learn" in sentence and "2.303" in sentence


def _lines(out, event):
    with open(os.path.join(out, "log.jsonl")) as f:
        return [r for r in map(json.loads, f) if r.get("event") == event]


def test_warmup_ramps_the_rate_linearly_then_the_steps_divide_it(digits, tmp_path):
    """With --warmup 1 the logged lr of iteration i of the first epoch is lr * i / n
    (n the epoch's iterations); the second epoch runs at lr, the third at lr / 10
    (--lr-steps 2); the run ends with a summary line saying whether it learned."""
    out = str(tmp_path / "run")
    cfg = config(digits, out, net="A", epochs=3, lr=0.01, warmup=1, lr_steps="2",
                 log_every=1, init="xavier", dropout=0.0)
    summary = train(cfg, progress=False)
    iterations = _lines(out, "iter")
    per_epoch = len(iterations) // 3
    first = [r["lr"] for r in iterations if r["epoch"] == 1]
    assert first == pytest.approx([0.01 * (i + 1) / per_epoch for i in range(per_epoch)])
    assert [r["lr"] for r in iterations if r["epoch"] == 2] == pytest.approx([0.01] * per_epoch)
    assert [r["lr"] for r in iterations if r["epoch"] == 3] == pytest.approx([0.001] * per_epoch)
    assert [e["schedule"] for e in _lines(out, "epoch")][1] == "reduced"
    (verdict,) = _lines(out, "summary")
    assert verdict["learned"] == summary["learned"] and verdict["epochs"] == 3


def test_a_run_on_a_fixed_schedule_resumes_from_its_checkpoint(digits, tmp_path):
    """A step schedule's state passes the checkpoint's checks: a run killed after its
    last epoch's checkpoint (before final.params) resumes and finishes at lr / 10."""
    out = str(tmp_path / "run")
    cfg = config(digits, out, net="A", epochs=2, lr=0.01, lr_steps="1", init="xavier",
                 dropout=0.0)
    train(cfg, progress=False)
    os.remove(os.path.join(out, "final.params"))
    summary = train(cfg, resume=True, progress=False)
    assert summary["epochs"] == 2 and os.path.isfile(os.path.join(out, "final.params"))
    assert [e["lr"] for e in _lines(out, "epoch")] == pytest.approx([0.01, 0.001])
