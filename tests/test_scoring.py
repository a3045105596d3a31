"""The ILSVRC localisation metric against hand-computed cases (the devkit's
compute_overlap.m and eval_localization_flat.m, worked by hand)."""
import numpy as np
import pytest

from vggcli.localisation import scoring as loc


def test_iou_counts_pixels_inclusively_as_the_devkit_does():
    # 10x10 boxes overlapping 5x5 pixels: 25 / (100 + 100 - 25)
    assert loc.devkit_iou((0, 0, 9, 9), (5, 5, 14, 14)) == pytest.approx(25 / 175)
    assert loc.devkit_iou((0, 0, 9, 9), (0, 0, 9, 9)) == 1.0
    # sharing one column of pixels overlaps (10 px), where exclusive ends would give 0
    assert loc.devkit_iou((0, 0, 9, 9), (9, 0, 18, 9)) == pytest.approx(10 / 190)
    assert loc.devkit_iou((0, 0, 9, 9), (10, 0, 19, 9)) == 0.0
    assert loc.devkit_iou((0, 0, 9, 9), (20, 20, 30, 30)) == 0.0
    # exactly 0.5 counts as localised (>= in the devkit: f_j = ov < 0.5)
    assert loc.devkit_iou((0, 0, 9, 19), (0, 0, 9, 9)) == pytest.approx(0.5)
    assert loc.image_errors([(3, (0, 0, 9, 19))], [(3, (0, 0, 9, 9))])[1] == 0.0


def test_errors_over_guesses_classes_and_boxes():
    truths = [(7, (0, 0, 9, 9)), (7, (50, 50, 89, 89))]  # two boxes of one class
    # the second box is found by the first guess: localised at every k
    assert loc.image_errors([(7, (52, 50, 89, 91))], truths) == {k: 0.0 for k in range(1, 6)}
    # a perfect box with the wrong class is an error
    assert loc.image_errors([(2, (0, 0, 9, 9))], truths) == {k: 1.0 for k in range(1, 6)}
    # fewer than five guesses; the right one second: wrong at k = 1 only
    errors = loc.image_errors([(2, (0, 0, 9, 9)), (7, (0, 0, 9, 9))], truths)
    assert errors == {1: 1.0, 2: 0.0, 3: 0.0, 4: 0.0, 5: 0.0}
    # right class, box overlapping too little (25/175), at every k
    assert loc.image_errors([(7, (5, 5, 14, 14))] * 3, truths)[5] == 1.0
    # a sixth guess is ignored, however right
    sixth = [(1, (0, 0, 1, 1))] * 5 + [(7, (0, 0, 9, 9))]
    assert loc.image_errors(sixth, truths)[5] == 1.0
    # two ground-truth classes: each counts 1/2 (the devkit's e(i) / n)
    two = [(7, (0, 0, 9, 9)), (4, (20, 20, 39, 39))]
    assert loc.image_errors([(4, (20, 20, 39, 39))], two)[1] == 0.5
    with pytest.raises(ValueError):
        loc.image_errors([(1, (0, 0, 9, 9))], [])


def test_error_is_the_mean_over_images_and_submission_lines_are_the_devkits():
    truths = [[(0, (0, 0, 9, 9))], [(1, (0, 0, 9, 9))], [(2, (10, 10, 19, 19))]]
    guesses = [[(0, (0, 0, 9, 9))],                          # right at k = 1
               [(0, (0, 0, 9, 9)), (1, (1, 1, 9, 9))],       # right at k = 2 (IoU 0.81)
               [(2, (0, 0, 9, 9))]]                          # never
    errors = loc.localisation_errors(guesses, truths)
    assert errors[1] == pytest.approx(2 / 3) and errors[2] == pytest.approx(1 / 3)
    assert errors[5] == pytest.approx(1 / 3)
    assert loc.submission_line([(0, (1.4, 2.6, 30, 40)), (999, (0, 0, 5, 5))]) == \
        "1 2 4 31 41 1000 1 1 6 6"  # 0-based boxes become the devkit's 1-based pixels
    assert loc.submission_line([(0, (0, 0, 5, 5))], label_ids=[449]) == "449 1 1 6 6"
    with pytest.raises(ValueError):
        loc.localisation_errors(guesses[:2], truths)


def test_centre_parameterisation_round_trips():
    boxes = np.array([[0, 0, 10, 20], [3.5, 4, 9, 5]])
    centres = loc.box_to_center(boxes)
    np.testing.assert_allclose(centres[0], [5, 10, 10, 20])
    np.testing.assert_allclose(loc.center_to_box(centres), boxes)
