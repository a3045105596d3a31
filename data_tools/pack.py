"""Pack images into indexed RecordIO (``.rec`` + ``.idx`` + ``.lst``), in parallel,
resumably, with a manifest that training reads (counts, skipped files, mean RGB).

Output folder (both ``vgg pack`` and ``vgg pack-imagenet``)::

    train.rec train.idx train.lst      records shuffled with --seed
    val.rec   val.idx   val.lst        records in image-id order
    train.box.idx val.box.idx          with boxes: the index of the records that have
                                       them (localisation trains and tests on those)
    synsets.txt                        class i = line i ('wnid words' for ImageNet)
    manifest.json                      counts per split and class, skipped files
                                       with reasons, settings, training mean RGB

Each record is MXNet's ``IRHeader(flag=0, label=class index, id=key, id2=0)``
followed by JPEG bytes; keys run 0..N-1 in file order, as in the .idx and .lst.
A record with boxes (Appendix A) has ``flag`` > 0 and GluonCV's detection label
(data_tools.boxes) as its extra labels; the class stays in ``label``.

Nothing complete-looking is written before the work is: a split is built under
``*.partial`` names with a ``<split>.state.json`` checkpoint (flushed and
fsynced every ``checkpoint_every`` images), and renamed at the end; the
manifest comes last. ``resume=True`` truncates the partial files to the last
checkpoint and continues.
"""
import json
import multiprocessing
import os
import shutil
import sys
import time
from collections import OrderedDict

import numpy as np

from .common import (NO_SPACE, VggError, VggRuntimeError, available_cores, check_output,
                     check_overlap, mark_output, output_kind, printable, read_json,
                     write_text_atomic)

from .encode import encode_task, init_worker
from .recordio import IR_HEADER, RecordWriter

MANIFEST_VERSION = 1
EXIT_SKIPPED = 3  # finished, but some files were skipped (listed in manifest.json)



class PackSettings:
    """What decides the bytes of the output; a resume must use the same."""

    def __init__(self, max_short_side=512, quality=95, seed=0, shuffle_train=True):
        if max_short_side < 0:
            raise VggError("--max-short-side must be >= 0 (0 keeps sizes), got %d"
                           % max_short_side)
        if not 1 <= quality <= 100:
            raise VggError("--quality must be in 1..100, got %d" % quality)
        self.max_short_side, self.quality = int(max_short_side), int(quality)
        self.seed, self.shuffle_train = int(seed), bool(shuffle_train)

    def as_dict(self):
        return dict(max_short_side=self.max_short_side, quality=self.quality, seed=self.seed,
                    shuffle_train=self.shuffle_train)


def _paths(out_dir, split):
    base = os.path.join(out_dir, split)
    return dict(rec=base + ".rec", idx=base + ".idx", lst=base + ".lst", box=base + ".box.idx",
                plan=base + ".plan.tsv", state=base + ".state.json",
                done=base + ".done.json")


def read_synsets(folder):
    """The class lines of a packed dataset's synsets.txt (line i = class i: 'wnid words'
    for ImageNet, the folder name otherwise); [] where there is none."""
    path = os.path.join(folder, "synsets.txt")
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def order_items(items, split, settings):
    """Training records are shuffled (a seeded permutation); val stays in id order."""
    items = sorted(items, key=lambda item: item.ident)
    if split == "train" and settings.shuffle_train:
        order = np.random.RandomState(settings.seed).permutation(len(items))
        items = [items[i] for i in order]
    return items


def _write_plan(path, items):
    # paths as JSON strings: a name may hold tabs, newlines or bytes that are not UTF-8
    # (os.fsdecode's surrogates, which json escapes as \udcNN and restores)
    lines = ["%d\t%d\t%s\t%d\t%d\t%s\n" % (pos, it.label, it.kind, it.offset, it.size,
                                          json.dumps([it.container, it.ident, it.boxes]))
             for pos, it in enumerate(items)]
    write_text_atomic(path, "".join(lines))


def _read_plan(path, start):
    with open(path) as f:
        for number, line in enumerate(f):
            if number < start:
                continue
            try:
                pos, label, kind, offset, size, names = line.rstrip("\n").split("\t", 5)
                container, ident, boxes = json.loads(names)
                task = (int(pos), int(label), kind, container, int(offset), int(size), ident,
                        boxes)
            except ValueError:
                raise VggError("%s line %d is damaged (or from another vgg version): pack "
                               "again with --overwrite" % (path, number + 1)) from None
            yield task


class _SplitState:
    """Progress of one split, saved as JSON at every checkpoint."""

    def __init__(self, total, classes, settings=None):
        self.data = dict(settings=settings.as_dict() if settings else {}, total=total,
                         position=0, records=0, rec_bytes=0, idx_bytes=0, lst_bytes=0, skipped=[],
                         per_class=[0] * classes, pixel_sums=[0, 0, 0], pixels=0,
                         box_bytes=0, boxes=dict(images=0, objects=0, clipped=0, dropped=0,
                                                 images_left_without=0))

    @classmethod
    def load(cls, path):
        state = cls.__new__(cls)
        try:
            state.data = read_json(path, "pack state", required=sorted(cls(0, 0).data))
        except VggError as err:
            raise VggError("%s: pack again with --overwrite" % err) from None
        return state

    def save(self, path):
        write_text_atomic(path, json.dumps(self.data))


def _checkpoint(state, writer, idx_file, lst_file, box_file, state_path):
    writer.sync()
    for handle in (idx_file, lst_file, box_file):
        handle.flush()
        os.fsync(handle.fileno())
    state.data.update(rec_bytes=writer.tell(), idx_bytes=idx_file.tell(),
                      lst_bytes=lst_file.tell(), box_bytes=box_file.tell())
    state.save(state_path)


def _open_append(path, size):
    handle = open(path, "r+" if size else "w")
    handle.truncate(size)
    handle.seek(size)
    return handle


def _windows(iterable, size):
    window = []
    for element in iterable:
        window.append(element)
        if len(window) == size:
            yield window
            window = []
    if window:
        yield window


def worker_pool(settings, workers=None):
    """Decoding processes. ``spawn``: no fork after MXNet/OpenMP threads have started."""
    context = multiprocessing.get_context("spawn")
    return context.Pool(workers or available_cores(), initializer=init_worker,
                        initargs=(settings.max_short_side, settings.quality))


def _split_state(items, paths, split, classes, settings, resume):
    """The split's saved state when resuming, else a new plan (the ordered items,
    written to disk) and an empty state."""
    if resume and os.path.exists(paths["state"]) and os.path.exists(paths["plan"]):
        state = _SplitState.load(paths["state"])
        if state.data["settings"] != settings.as_dict():
            raise VggError("cannot resume %s: it was started with %s, now %s; rerun without "
                           "--resume to start over" % (split, state.data["settings"],
                                                       settings.as_dict()))
        return state
    items = order_items(items, split, settings)
    _write_plan(paths["plan"], items)
    state = _SplitState(len(items), classes, settings)
    state.save(paths["state"])
    return state


def pack_split(items, out_dir, split, classes, settings, pool, workers, resume=False,
               checkpoint_every=1000, progress=True):
    """Pack one split with ``pool``; returns its manifest entry. See the module docstring."""
    paths = _paths(out_dir, split)
    partial = {k: paths[k] + ".partial" for k in ("rec", "idx", "lst", "box")}
    state = _split_state(items, paths, split, classes, settings, resume)
    data, total = state.data, state.data["total"]
    writer = RecordWriter(partial["rec"], resume_at=data["rec_bytes"])
    idx_file = _open_append(partial["idx"], data["idx_bytes"])
    lst_file = _open_append(partial["lst"], data["lst_bytes"])
    box_file = _open_append(partial["box"], data["box_bytes"])
    box_counts = data["boxes"]
    bar = _progress(total, data["position"], "pack %s" % split, progress)
    started, done_now, last_checkpoint = time.time(), 0, data["position"]
    try:
        # bounded windows: Pool.imap would otherwise queue the whole plan at once
        for window in _windows(_read_plan(paths["plan"], data["position"]), 256 * workers):
            for result in pool.imap(encode_task, window, chunksize=4):
                _add(result, data, writer, idx_file, lst_file, box_file)
                data["position"] = result[0] + 1
                done_now += 1
                bar.update(1)
                if data["position"] - last_checkpoint >= checkpoint_every:
                    _checkpoint(state, writer, idx_file, lst_file, box_file, paths["state"])
                    last_checkpoint = data["position"]
        _checkpoint(state, writer, idx_file, lst_file, box_file, paths["state"])
    finally:
        bar.close()
        writer.close()
        for handle in (idx_file, lst_file, box_file):
            handle.close()
    _finish(paths, partial, box_counts["images"])
    seconds = time.time() - started
    pixels = max(data["pixels"], 1)
    return OrderedDict([
        ("records", data["records"]),
        ("skipped", data["skipped"]),
        ("per_class", data["per_class"]),
        ("mean_rgb", [s / pixels for s in data["pixel_sums"]]),
        ("boxes", box_counts),
        ("bytes", os.path.getsize(paths["rec"])),
        ("images_per_second", done_now / seconds if seconds > 0 else None),
    ])


def _add(result, data, writer, idx_file, lst_file, box_file):
    """One encoded image into the partial files and the split's counts (or its reason
    into the skipped list)."""
    (_, label, ident, payload, reason, shape, sums, extra, (clipped, dropped)) = result
    if payload is None:
        data["skipped"].append({"id": ident, "reason": reason})
        return
    key, box_counts = data["records"], data["boxes"]
    extra_bytes = b"" if extra is None else extra.astype("<f4").tobytes()
    offset = writer.write(IR_HEADER.pack(len(extra_bytes) // 4, float(label), key, 0)
                          + extra_bytes + payload)
    idx_file.write("%d\t%d\n" % (key, offset))
    if extra is not None:
        box_file.write("%d\t%d\n" % (key, offset))
        box_counts["images"] += 1
        box_counts["objects"] += int((len(extra) - extra[0]) // extra[1])
    elif clipped + dropped:
        box_counts["images_left_without"] += 1
    box_counts["clipped"] += clipped
    box_counts["dropped"] += dropped
    lst_file.write("%d\t%d\t%s\n" % (key, label, ident))
    data["records"] += 1
    data["per_class"][label] += 1
    data["pixel_sums"] = [a + int(b) for a, b in zip(data["pixel_sums"], sums)]
    data["pixels"] += int(shape[0]) * int(shape[1])


def _finish(paths, partial, boxed_images):
    """The partial files under their final names, .rec last (its presence means the
    split is whole); the plan and state go."""
    if boxed_images:
        os.replace(partial["box"], paths["box"])
    else:
        os.remove(partial["box"])
    for kind in ("idx", "lst", "rec"):
        os.replace(partial[kind], paths[kind])
    os.remove(paths["plan"])
    os.remove(paths["state"])


def _progress(total, initial, desc, enabled):
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, desc=desc, unit="img", file=sys.stderr,
                dynamic_ncols=True, smoothing=0.05, disable=not enabled)


def pack(splits, classes, out_dir, settings, source, refused=(), workers=None, resume=False,
         checkpoint_every=1000, progress=True, overwrite=False, inputs=(), boxes=None):
    """Pack ``splits`` ({name: [Item]}) into ``out_dir``; returns the manifest dict.

    ``out_dir`` follows the output policy (data_tools.common): a new or empty
    folder, the same pack continued with ``resume``, or with ``overwrite`` a
    previous pack replaced; never a folder of other files, nor one that overlaps
    ``inputs`` (the dataset's folders and archives). ``boxes``: what matching the
    box files found (data_tools.boxes.attach_boxes's counts), kept in the manifest."""
    for name, items in splits.items():
        if not items and not (resume and os.path.exists(_paths(out_dir, name)["state"])):
            raise VggError("no images found for the %s split" % name)
    _prepare_out(out_dir, resume, overwrite, inputs)
    os.makedirs(out_dir, exist_ok=True)
    if output_kind(out_dir) is None:
        mark_output(out_dir, "pack")
    write_text_atomic(os.path.join(out_dir, "synsets.txt"), "\n".join(classes.lines()) + "\n")
    source = dict(source)
    label_ids = source.pop("label_ids", None)
    manifest = OrderedDict([
        ("version", MANIFEST_VERSION),
        ("classes", len(classes)),
        ("source", source),
        ("settings", dict(settings.as_dict(), workers=workers or available_cores())),
        ("refused", [dict(id=r.ident, reason=r.reason) for r in refused]),
        ("splits", OrderedDict()),
    ])
    if label_ids:  # class i is submitted to the ILSVRC devkit as label_ids[i]
        manifest["label_ids"] = label_ids
    if boxes:
        manifest["boxes"] = boxes
    workers = workers or available_cores()
    try:
        _pack_splits(splits, classes, out_dir, settings, workers, resume, checkpoint_every,
                     progress, manifest)
    except OSError as err:
        if err.errno not in NO_SPACE:
            raise
        raise VggRuntimeError("cannot write %s: %s; the packed part is kept: free space and "
                              "rerun with --resume" % (printable(err.filename or out_dir),
                                                       os.strerror(err.errno))) from None
    if "train" in manifest["splits"]:
        manifest["mean_rgb"] = manifest["splits"]["train"]["mean_rgb"]
    write_text_atomic(os.path.join(out_dir, "manifest.json"), json.dumps(manifest, indent=1))
    for name in splits:
        os.remove(_paths(out_dir, name)["done"])
    return manifest


def _prepare_out(out_dir, resume, overwrite, inputs):
    """The output policy for a pack: with ``resume`` a pack of ours (or nothing) to
    continue; else a new or empty folder, or with ``overwrite`` a previous pack, which
    goes as a whole."""
    if resume:
        check_overlap(out_dir, inputs)
        own = [n for n in os.listdir(out_dir) if n.endswith((".state.json", ".plan.tsv"))
               or n == "manifest.json"] if os.path.isdir(out_dir) else []
        if os.path.isdir(out_dir) and os.listdir(out_dir) and \
                output_kind(out_dir) != "pack" and not own:
            raise VggError("--out %s holds files vgg pack did not write: nothing to resume"
                           % out_dir)
        return
    if not overwrite and _unfinished(out_dir):
        raise VggError("--out %s holds an unfinished pack (stopped or killed): continue it "
                       "with --resume, or give --overwrite to start over" % out_dir)
    check_output(out_dir, "pack", inputs=inputs, overwrite=overwrite)
    if os.path.isdir(out_dir) and output_kind(out_dir) == "pack":
        shutil.rmtree(out_dir)


def _unfinished(out_dir):
    """A pack of ours that has no manifest yet: its run was stopped before the end."""
    return os.path.isdir(out_dir) and output_kind(out_dir) == "pack" and \
        not os.path.exists(os.path.join(out_dir, "manifest.json"))


def _pack_splits(splits, classes, out_dir, settings, workers, resume, checkpoint_every,
                 progress, manifest):
    with worker_pool(settings, workers) as pool:
        for name, items in splits.items():
            done_path = _paths(out_dir, name)["done"]
            if resume and os.path.exists(done_path) and \
                    os.path.exists(_paths(out_dir, name)["rec"]):
                with open(done_path) as f:  # finished before the interruption
                    entry = json.load(f, object_pairs_hook=OrderedDict)
            else:
                entry = pack_split(items, out_dir, name, len(classes), settings, pool, workers,
                                   resume=resume, checkpoint_every=checkpoint_every,
                                   progress=progress)
                write_text_atomic(done_path, json.dumps(entry))
            manifest["splits"][name] = entry


# the planning front ends live in data_tools.plan; these names stay importable here
from .plan import plan_folder, plan_imagenet, split_items  # noqa: E402, F401
