"""Importing vggcli and calling its library functions leaves the process as it was:
``os.environ``, the warnings filters, every module already in ``sys.modules`` and
Pillow's decompression-bomb limit. (The ``vgg`` command owns its process and sets
these for itself; ``vggcli.configure()`` is the documented way for a caller to ask for
the same.) Run in a fresh interpreter, after the third-party imports, whose own
import-time settings are theirs."""
import json
import subprocess
import sys

SCRIPT = r"""
import io, json, os, sys, warnings
import cv2, mxnet as mx, numpy as np
from PIL import Image

env, filters = dict(os.environ), list(warnings.filters)
modules, pillow = dict(sys.modules), Image.MAX_IMAGE_PIXELS
params, records, out = sys.argv[1:4]

import vggcli
from vggcli.core import compat as _compat, images
from vggcli.nets import models
from vggcli.testing import evaluate, features, inference

net = models.initialize(models.get_model("A", classes=3, width_mult=0.125, fc_width=16,
                                         crop_size=32), seed=0)
net(mx.nd.zeros((1, 3, 32, 32))).wait_to_read()
photo = np.random.RandomState(0).randint(0, 255, (20, 30, 3), np.uint8)
for ext in (".png", ".bmp"):  # .bmp: Pillow reads the header
    images.decode_bytes(cv2.imencode(ext, photo)[1].tobytes())
_compat.import_gluoncv("gluoncv.data")  # hides torch from gluoncv while it loads
loaded = inference.load_for_inference(params)
evaluate.evaluate(loaded.net, records, os.path.join(out, "eval"), [36], mode="both",
                  limit=8, mean_rgb=loaded.mean_rgb, ctx=loaded.ctx, progress=False)
features.extract([loaded.net], "fc7", [36], os.path.join(out, "f.npz"), data=records,
                 means=[loaded.mean_rgb], ctx=loaded.ctx, progress=False)

print(json.dumps(dict(
    environ=sorted(k for k in set(env) | set(os.environ) if env.get(k) != os.environ.get(k)),
    warnings=list(warnings.filters) != filters,
    modules=sorted(k for k, m in modules.items() if sys.modules.get(k) is not m),
    pillow=[pillow, Image.MAX_IMAGE_PIXELS] if Image.MAX_IMAGE_PIXELS != pillow else None)))
"""


def test_library_calls_leave_the_process_as_it_was(params, digits, tmp_path):
    import os
    done = subprocess.run([sys.executable, "-c", SCRIPT, params,
                           os.path.join(digits, "val.rec"), str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    changed = json.loads(done.stdout.strip().splitlines()[-1])
    assert changed == dict(environ=[], warnings=False, modules=[], pillow=None), changed
