"""localisation.merge: OverFeat's greedy merging of candidate boxes."""

import numpy as np
import pytest




def test_greedy_merging_joins_near_boxes_and_keeps_far_ones():
    from vggcli.localisation.merge import best_box, greedy_merge
    near = [(10, 10, 50, 50), (12, 10, 52, 50), (10, 12, 50, 52)]
    far = [(100, 100, 110, 110)]
    boxes, scores = greedy_merge(near + far, [0.2, 0.3, 0.1, 0.5])
    assert len(boxes) == 2
    merged = [b for b, s in zip(boxes, scores) if s > 0.55]
    assert len(merged) == 1 and scores[[float(s) for s in scores].index(
        max(scores))] == pytest.approx(0.6)
    # the pairwise means: (b1 + b2) / 2 first, then with b3: x0 = (11 + 10) / 2
    np.testing.assert_allclose(merged[0], [10.5, 11, 50.5, 51])
    assert tuple(best_box(near + far, [0.2, 0.3, 0.1, 0.5])) == pytest.approx(
        (10.5, 11, 50.5, 51))  # three weak boxes that agree beat one stronger alone
    assert len(greedy_merge(near + far, [1, 1, 1, 1], threshold=0.0)[0]) == 4
