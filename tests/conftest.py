import warnings

import numpy as np
import pytest

# NOTE: vggcli first: it sets OMP_NUM_THREADS before MXNet loads. Setting the
# thread count after MXNet has started (MXSetNumOMPThreads) made two CPU
# contexts drift from one context by 1e-4 within 3 steps.
import vggcli  # noqa: F401, I001

warnings.filterwarnings("ignore", category=DeprecationWarning)


def _photos():
    """Real photos shipped inside scikit-image (no download)."""
    from skimage import data
    return {"astronaut": data.astronaut(), "coffee": data.coffee(), "chelsea": data.chelsea(),
            "rocket": data.rocket(), "motorcycle": data.stereo_motorcycle()[0]}


@pytest.fixture(scope="session")
def photos():
    return _photos()


@pytest.fixture(scope="session")
def photo_batch(photos):
    """Four real photos as a float32 NCHW batch, 64x64, mean-subtracted."""
    import cv2
    images = [cv2.resize(img, (64, 64), interpolation=cv2.INTER_AREA)
              for img in list(photos.values())[:4]]
    batch = np.stack(images).astype(np.float32).transpose(0, 3, 1, 2)
    return batch - batch.mean(axis=(0, 2, 3), keepdims=True)
