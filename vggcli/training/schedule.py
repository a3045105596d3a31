"""The paper's learning-rate schedule (§3.1): divide by 10 when validation accuracy
stops improving; the paper did so 3 times and stopped after 74 epochs.

NOTE: our own, because MXNet's schedulers (FactorScheduler, MultiFactorScheduler)
are functions of the update count and cannot react to a validation metric.
"""


class _Schedule:
    """What both schedules share: the current rate, the end flag, their saved state."""

    state = {}

    @property
    def lr(self):
        return self.state["lr"]

    @property
    def finished(self):
        return self.state["finished"]

    def state_dict(self):
        return dict(self.state)

    def load_state_dict(self, state):
        self.state = dict(state)


class PlateauSchedule(_Schedule):
    """State machine fed one validation accuracy per epoch.

    ``patience``: epochs without improvement (by more than ``min_delta``) before
    the rate is divided by ``factor``; at most ``max_reductions`` times. Once
    they are used up, a further plateau of ``patience`` epochs ends training.
    """

    def __init__(self, lr, factor=0.1, patience=2, max_reductions=3, min_delta=1e-4):
        if not lr > 0:
            raise ValueError("learning rate must be positive")
        self.state = dict(lr=float(lr), best=None, bad_epochs=0, reductions=0, finished=False,
                          factor=float(factor), patience=int(patience),
                          max_reductions=int(max_reductions), min_delta=float(min_delta))

    def step(self, accuracy):
        """Record an epoch's validation accuracy; returns what happened:
        'improved', 'waiting', 'reduced' or 'finished'."""
        s = self.state
        if s["best"] is None or accuracy > s["best"] + s["min_delta"]:
            s["best"], s["bad_epochs"] = float(accuracy), 0
            return "improved"
        s["bad_epochs"] += 1
        if s["bad_epochs"] < s["patience"]:
            return "waiting"
        s["bad_epochs"] = 0
        if s["reductions"] < s["max_reductions"]:
            s["reductions"] += 1
            s["lr"] *= s["factor"]
            return "reduced"
        s["finished"] = True
        return "finished"


class StepSchedule(_Schedule):
    """A fixed schedule with PlateauSchedule's interface: the rate is divided by
    ``factor`` after each epoch in ``steps`` (e.g. [20, 27]), whatever validation
    says, so nets compared get the same number of epochs and divisions."""

    def __init__(self, lr, steps, factor=0.1):
        if not lr > 0:
            raise ValueError("learning rate must be positive")
        self.state = dict(lr=float(lr), best=None, epochs=0, reductions=0, finished=False,
                          factor=float(factor), steps=[int(s) for s in steps])

    def step(self, accuracy):
        """Record an epoch's validation accuracy; returns 'reduced' after a step epoch,
        else 'improved' or 'waiting' by the accuracy."""
        s = self.state
        s["epochs"] += 1
        improved = s["best"] is None or accuracy > s["best"]
        if improved:
            s["best"] = float(accuracy)
        if s["epochs"] in s["steps"]:
            s["reductions"] += 1
            s["lr"] *= s["factor"]
            return "reduced"
        return "improved" if improved else "waiting"


def make_schedule(cfg):
    """The configured schedule: fixed steps (``lr_steps``) or plateaus (the paper's)."""
    if cfg.get("lr_steps"):
        from .recipes import parse_lr_steps
        return StepSchedule(cfg["lr"], parse_lr_steps(cfg["lr_steps"]))
    return PlateauSchedule(cfg["lr"], patience=cfg["patience"],
                           max_reductions=cfg["max_reductions"])
