"""training.tasks: SCR / PCR's training target, loss and error, and fine-tuning only the
fc layers (Appendix A.1)."""

import numpy as np




def test_crop_target_by_hand():
    from vggcli.training.data import crop_target
    boxes = np.array([[10.0, 20.0, 50.0, 40.0], [0.0, 0.0, 4.0, 4.0]])
    target, valid = crop_target(boxes, top=10, left=5, crop=40, flipped=False)
    # the first box: x 5..45, y 10..30 in the crop
    np.testing.assert_allclose(target * 40, [25, 20, 40, 20])
    assert valid == 1.0
    target, _ = crop_target(boxes, top=10, left=5, crop=40, flipped=True)
    np.testing.assert_allclose(target * 40, [15, 20, 40, 20])  # x -> 40 - x
    _, valid = crop_target(boxes[1:], top=10, left=5, crop=40, flipped=False)
    assert valid == 0.0  # nothing of the box in the crop: no loss


def test_pcr_loss_and_gradient_use_only_the_ground_truth_class_box():
    import mxnet as mx
    from mxnet import autograd

    from vggcli.training.tasks import Localisation
    task = Localisation("pcr", classes=3)
    target = [0.5, 0.4, 0.2, 0.3]
    out = mx.nd.array([[9, 9, 9, 9] + target + [7, 7, 7, 7],
                       [9, 9, 9, 9] + target + [7, 7, 7, 7]])
    label = mx.nd.array([[1] + target + [1], [2] + target + [1]])
    out.attach_grad()
    with autograd.record():
        loss = task.loss_fn(out, label)
    loss.backward()
    # class 1's box is exact: no loss; class 2's box misses by 6.5, 6.6, 6.8, 6.7
    expected = sum((7 - t) ** 2 for t in target)
    np.testing.assert_allclose(loss.asnumpy(), [0, expected], rtol=1e-5)
    grad = out.grad.asnumpy()
    assert not grad[:, :4].any() and not grad[0].any()  # other classes' boxes: no gradient
    np.testing.assert_allclose(grad[1, 8:], [2 * (7 - t) for t in target], rtol=1e-5)
    _, hits, _ = task.counts(out, label)
    assert hits.asscalar() == 1
    scr = Localisation("scr", classes=3)
    no_box = mx.nd.array([[0] + target + [0]])
    assert scr.loss_fn(mx.nd.array([[0, 0, 1, 1]]), no_box).asscalar() == 0  # not valid


def test_center_iou_by_hand():
    from vggcli.training.tasks import center_iou
    a = np.array([[0.5, 0.5, 0.4, 0.4], [0.5, 0.5, 0.4, 0.4]])
    b = np.array([[0.5, 0.5, 0.4, 0.4], [0.6, 0.5, 0.4, 0.4]])
    np.testing.assert_allclose(center_iou(a, b), [1.0, 0.12 / 0.2])


def test_fc_only_fine_tuning_leaves_the_conv_layers_as_they_were(trained):
    from vggcli.nets.params import read_params
    start, _ = read_params(str(trained / "cls" / "best.params"))
    scr, meta = read_params(str(trained / "scr" / "final.params"))
    assert meta["task"] == "scr" and scr["fc8.weight"].shape[0] == 4
    for key, value in start.items():
        same = np.array_equal(value.asnumpy(), scr[key].asnumpy())
        assert same == key.startswith("features."), key
    pcr, meta = read_params(str(trained / "pcr" / "final.params"))
    assert pcr["fc8.weight"].shape[0] == 4 * 2 and meta["task_classes"] == 2
