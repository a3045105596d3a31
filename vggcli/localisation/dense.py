"""Dense localisation (Table 9): both nets in their fully convolutional form over the
whole image at each scale (and shift), batched across images by shape."""
import numpy as np

from ..core.errors import VggError
from .geometry import box_columns, clip_boxes, to_source_boxes
from .scoring import MAX_GUESSES

STRIDE = 32  # pool5's stride: the dense output's locations are this far apart


def shift_offsets(shifts):
    """Pixel offsets (per axis) at which the dense nets also run: ``shifts`` steps of
    STRIDE / shifts, so locations are STRIDE / shifts apart instead of STRIDE."""
    if shifts < 1 or STRIDE % shifts:
        raise VggError("--shifts must divide %d, got %d" % (STRIDE, shifts))
    return [step * STRIDE // shifts for step in range(shifts)]


def dense_candidates(loc, task, classifier, records, scales, shifts=1, batch_size=32,
                     window=64, progress=True):
    """Per image: (the classification net's top-5 (class, score)), and its candidates
    {class: [(score, box)]} for those classes from every location and scale.

    ``shifts`` > 1 also runs both nets on the image shifted by fractions of the
    stride (OverFeat's offsets), for locations STRIDE / shifts apart. NOTE: the
    paper's dense output has locations 32 px apart for a 224 crop (1/7 of it);
    a scaled-down study with 32 px crops needs shifts to keep that geometry, or
    an image of 54 px gives a single location. The parts (image, scale, shift) of
    ``window`` images at a time are grouped by shape and run ``batch_size`` at a time
    through each net."""
    from ..nets.models import dense_form
    from ..testing.inference import DenseForward
    from ..training.train_state import progress_factory

    crop = loc.net.knobs["crop_size"]
    if classifier.net.knobs["crop_size"] != crop:
        raise VggError("the classification net's crop (%d) differs from the localisation "
                       "net's (%d): their dense outputs would not share locations"
                       % (classifier.net.knobs["crop_size"], crop))
    nets = []
    for loaded in (loc, classifier):
        block = dense_form(loaded.net, frozen=True)
        block.hybridize(static_alloc=True)
        nets.append((block, DenseForward(loaded.mean_rgb, loaded.ctx, flip=False)))
    offsets = shift_offsets(shifts)
    results, bar = [], progress_factory(progress)(len(records), 0, "localise (dense)")
    for start in range(0, len(records), window):
        images = [records.get(p) for p in range(start, min(len(records), start + window))]
        parts = _parts(images, scales, offsets, crop)
        maps = _run_parts(parts, nets, batch_size)
        per_image = [[] for _ in images]
        for part, found in zip(parts, maps):  # in each image's own order
            per_image[part[0]].append(found)
        for mine, (_, _, _, size) in zip(per_image, images):
            results.append(_image_candidates(mine, task, crop, size))
        bar.update(len(images))
    bar.close()
    return results


def _parts(images, scales, offsets, crop):
    """[(image index, HxWx3 part, source pixels per part pixel, (dx, dy))]: each image
    rescaled to each scale and shifted by each offset (parts smaller than the crop are
    left out), in the order the image's candidates are gathered."""
    from ..training.data import rescale_shorter_side
    parts = []
    for owner, (image, _, _, (width, height)) in enumerate(images):
        for scale in scales:
            rescaled = rescale_shorter_side(image, scale)
            ratio = (width / rescaled.shape[1], height / rescaled.shape[0])
            for dy in offsets:
                for dx in offsets:
                    if min(rescaled.shape[0] - dy, rescaled.shape[1] - dx) >= crop:
                        parts.append((owner, np.ascontiguousarray(rescaled[dy:, dx:]), ratio,
                                      (dx, dy)))
    return parts


def _run_parts(parts, nets, batch_size):
    """Per part (boxes map, class posterior map, ratio, offset): same-shape parts
    batched through the localisation and classification nets (``nets``: their dense
    blocks and forwards); the posterior is the soft-max over classes per location."""
    from ..testing.evaluate import softmax
    from ..testing.inference import by_shape
    (loc_block, loc_forward), (cls_block, cls_forward) = nets
    maps = [None] * len(parts)
    for group in by_shape([part[1] for part in parts]):
        for at in range(0, len(group), batch_size):
            chunk = group[at:at + batch_size]
            batch = np.stack([parts[k][1] for k in chunk])
            boxes = loc_forward.run(loc_block, batch)
            scores = cls_forward.run(cls_block, batch)
            for row, k in enumerate(chunk):
                score = scores[row]
                score = softmax(score.reshape(score.shape[0], -1).T).T.reshape(score.shape)
                maps[k] = (boxes[row], score, parts[k][2], parts[k][3])
    return maps


def _image_candidates(maps, task, crop, size):
    """(top-5 [(class, score)], {class: (scores, boxes)}) of one image from its parts'
    maps: class scores averaged over locations and parts; each top class's box at
    every location of every part, scored by that location's class score (by the whole
    map's mean where the classification net's map has another size)."""
    width, height = size
    posterior = np.mean([s.reshape(s.shape[0], -1).mean(axis=1) for _, s, _, _ in maps],
                        axis=0)
    top = np.argsort(-posterior, kind="stable")[:MAX_GUESSES]
    origins, ratios = [], []  # per location of every part, the same for every class
    for boxes, _, ratio, (dx, dy) in maps:
        grid_rows, grid_cols = boxes.shape[1:]
        cols, rows = np.meshgrid(np.arange(grid_cols), np.arange(grid_rows))
        origins.append(np.stack([STRIDE * cols.ravel() + dx, STRIDE * rows.ravel() + dy],
                                axis=1))
        ratios.append(np.broadcast_to(np.asarray(ratio, dtype=np.float64),
                                      (grid_rows * grid_cols, 2)))
    count = sum(len(o) for o in origins)
    origins, ratios = np.concatenate(origins), np.concatenate(ratios)
    centres = np.concatenate([  # every top class's boxes, class after class
        np.concatenate([b[box_columns(task, int(label))].reshape(4, -1).T
                        for b, _, _, _ in maps]) for label in top])
    boxes = clip_boxes(to_source_boxes(centres, np.tile(origins, (len(top), 1)), crop,
                                       np.tile(ratios, (len(top), 1))), width, height)
    candidates = {}
    for k, label in enumerate(top):
        scores = np.concatenate([
            s[label].ravel() if s.shape[1:] == b.shape[1:] else
            np.full(b.shape[1] * b.shape[2], s[label].mean()) for b, s, _, _ in maps])
        candidates[int(label)] = (scores, boxes[k * count:(k + 1) * count])
    return [(int(c), float(posterior[c])) for c in top], candidates
