"""localisation.geometry: the net's boxes mapped back to the source image's pixels."""

import numpy as np




def test_a_net_box_maps_back_to_source_pixels():
    from vggcli.localisation.geometry import to_source_boxes
    # a window at (8, 4) of a 32 px crop, on an image rescaled by 1/2 (ratio 2)
    box = to_source_boxes([0.5, 0.5, 0.5, 0.25], (8, 4), 32, (2.0, 2.0))[0]
    # rescaled: x 16..32, y 16..24 (continuous) -> source 32..64, 32..48 -> last pixels 63, 47
    np.testing.assert_allclose(box, [32, 32, 63, 47])
