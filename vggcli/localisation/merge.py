"""OverFeat's greedy merging of a class's candidate boxes, and each image's guesses
(up to 5 classes, each with its best merged box)."""
import numpy as np

MERGE_THRESHOLD = 1.0


def match_scores(box, boxes):
    """How far ``box`` is from each of ``boxes`` (rows x0, y0, x1, y1): the distance of
    the centres over the pair's mean side, plus 1 - IoU (inclusive pixels). NOTE:
    OverFeat's text adds the raw intersection area to the centre distance, which
    would keep overlapping boxes apart; 1 - IoU makes overlap count for merging, as
    its description of the procedure intends."""
    box, boxes = np.asarray(box, dtype=np.float64), np.asarray(boxes, dtype=np.float64)
    sides, side = boxes[:, 2:] - boxes[:, :2] + 1, box[2:] - box[:2] + 1
    distance = np.linalg.norm((boxes[:, :2] + boxes[:, 2:]) / 2 - (box[:2] + box[2:]) / 2,
                              axis=1)
    mean_side = np.maximum((sides.sum(axis=1) + side.sum()) / 4, 1e-9)
    inter = np.clip(np.minimum(boxes[:, 2:], box[2:]) - np.maximum(boxes[:, :2], box[:2]) + 1,
                    0, None).prod(axis=1)
    union = sides.prod(axis=1) + side.prod() - inter
    return distance / mean_side + 1 - inter / np.maximum(union, 1e-9)


def greedy_merge(boxes, scores, threshold=MERGE_THRESHOLD):
    """(boxes, scores) after OverFeat's greedy merge: while the closest pair of boxes
    has a match score under ``threshold``, replace it by the mean of the two boxes
    with the sum of their scores. The pair matrix is built once and updated by a
    row per merge (O(n^2) work in numpy, for the hundreds of boxes of a class)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if len(boxes) < 2:
        return list(boxes), list(scores)
    pairs = np.stack([match_scores(box, boxes) for box in boxes])
    np.fill_diagonal(pairs, np.inf)
    while len(boxes) > 1:
        flat = int(np.argmin(pairs))
        i, j = divmod(flat, len(boxes))
        if pairs[i, j] > threshold:
            break
        merged, total = (boxes[i] + boxes[j]) / 2, scores[i] + scores[j]
        keep = np.ones(len(boxes), dtype=bool)
        keep[[i, j]] = False
        boxes, scores = np.vstack([boxes[keep], merged]), np.append(scores[keep], total)
        row = match_scores(merged, boxes)
        row[-1] = np.inf
        pairs = pairs[keep][:, keep]
        pairs = np.vstack([np.hstack([pairs, row[:-1, None]]), row[None]])
    return list(boxes), list(scores)


def best_box(boxes, scores, threshold=MERGE_THRESHOLD):
    merged, totals = greedy_merge(boxes, scores, threshold)
    return merged[int(np.argmax(totals))]


def guesses_from_candidates(results, threshold=MERGE_THRESHOLD):
    """Per image up to 5 (class, box): the classes by score, each with its best merged
    box."""
    guesses = []
    for top, candidates in results:
        row = []
        for label, _ in top:
            scores, boxes = candidates.get(label, ((), ()))
            if len(scores):
                row.append((label, tuple(best_box(boxes, scores, threshold))))
        guesses.append(row)
    return guesses
