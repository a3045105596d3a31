"""What a training run optimises and counts: classification (§3.1, soft-max
cross-entropy, top-1/top-5 correct) or localisation (Appendix A: the last FC
layer regresses a box, Euclidean loss).

A localisation label row is [class, centre x, centre y, width, height, valid]
in units of the crop side (``data.box_target``); the net's output is one box
(SCR, 4 numbers) or one per class (PCR, 4 x classes: class c's box is outputs
4c .. 4c + 3), and the loss and the error use the ground-truth class's box, as
the paper's Table 8 protocol does. For a localisation run the log's
``top1_err`` and ``top5_err`` are both the localisation error of the crops: the
share whose box has IoU < 0.5 with the target box (or that show no box).
"""
import numpy as np

from ..core.errors import VggError

TASKS = ("classify", "scr", "pcr")
BOX = 4  # centre x, centre y, width, height
IOU_CORRECT = 0.5  # the paper's (and ILSVRC's) threshold


def net_outputs(task, classes):
    """Units of the last FC layer."""
    return {"classify": classes, "scr": BOX, "pcr": BOX * classes}[task]


class Classification:
    name = "classify"

    def __init__(self, classes=None):
        from mxnet import gluon
        self.classes = classes
        self.loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()

    def counts(self, out, label):
        """(loss sum, top-1 correct, top-5 correct) of a device's batch, as NDArrays."""
        import mxnet as mx
        k = min(5, out.shape[1])
        top = mx.nd.topk(out, k=k, axis=1, ret_typ="indices")
        hits = top == label.reshape((-1, 1))
        return self.loss_fn(out, label).sum(), hits[:, 0].sum(), hits.sum()


def chosen_box(F, out, label, classes):
    """The box the loss and the error look at: SCR's only box, or PCR's box of the
    label's class (a one-hot mask over the classes' boxes, so only that box gets a
    gradient)."""
    if classes is None:
        return out
    mask = F.one_hot(F.slice_axis(label, axis=1, begin=0, end=1).reshape((-1,)), classes)
    return F.sum(out.reshape((0, -1, BOX)) * mask.expand_dims(axis=2), axis=1)


def center_iou(a, b):
    """IoU of (cx, cy, w, h) boxes row by row (continuous coordinates, numpy)."""
    from ..localisation.scoring import center_to_box
    a_box, b_box = center_to_box(a), center_to_box(b)
    overlap = np.clip(np.minimum(a_box[:, 2:], b_box[:, 2:]) -
                      np.maximum(a_box[:, :2], b_box[:, :2]), 0, None).prod(axis=1)
    union = np.clip(a[:, 2:], 0, None).prod(axis=1) + b[:, 2:].prod(axis=1) - overlap
    return np.where(union > 0, overlap / np.maximum(union, 1e-12), 0.0)


class Localisation:
    """SCR (``per_class`` False) or PCR over ``classes`` classes."""

    def __init__(self, name, classes):
        from mxnet import gluon
        if name not in ("scr", "pcr"):
            raise VggError("localisation task must be scr or pcr, got %r" % name)
        self.name = name
        self.classes = classes if name == "pcr" else None
        task = self

        class EuclideanLoss(gluon.loss.Loss):
            """Squared distance of the box to the target; a crop without a box adds 0."""

            def __init__(self):
                super().__init__(weight=None, batch_axis=0)

            def hybrid_forward(self, F, out, label):
                box = chosen_box(F, out, label, task.classes)
                target = F.slice_axis(label, axis=1, begin=1, end=1 + BOX)
                valid = F.slice_axis(label, axis=1, begin=1 + BOX, end=2 + BOX).reshape((-1,))
                return F.sum(F.square(box - target), axis=1) * valid

        self.loss_fn = EuclideanLoss()

    def counts(self, out, label):
        import mxnet as mx
        box = chosen_box(mx.nd, out, label, self.classes).asnumpy()
        rows = label.asnumpy()
        correct = (center_iou(box, rows[:, 1:1 + BOX]) >= IOU_CORRECT) & (rows[:, -1] > 0)
        hits = mx.nd.array([correct.sum()], ctx=out.context)[0]
        return self.loss_fn(out, label).sum(), hits, hits


def make_task(name, classes):
    if name == "classify":
        return Classification(classes)
    return Localisation(name, classes)
