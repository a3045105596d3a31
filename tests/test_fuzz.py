"""Every reader fuzzed (Hypothesis): valid files the tests make, mutated (bit flips,
truncation at every length class, inserted and repeated chunks, huge declared sizes;
for JSON and YAML, any node replaced by a value of another type, NaN, inf, huge
numbers, text that is not UTF-8), fed to the command that reads them:

- records .rec/.idx/.lst and manifest.json (inspect, eval); parameter files (eval);
  features .npz (transfer); eval folders (fuse); localisation folders (fuse);
  checkpoints: state.json, checksums.json, weights and momentum, and the run's
  config.yaml (train --resume; with and without checksums that agree with the
  damage); box CSV and images (pack);
  ILSVRC train/val tars, the devkit and box XML in its archive (pack-imagenet);
  torchvision .pth and Caffe .caffemodel (convert); recipe YAML (recipe show); the
  numeric options of nets and eval.

The property, for every example: exit status 0, 1, 2 or 3; at 1 or 2 exactly one
``Error:`` line and no output left (3: done, with the skipped inputs named); never a
traceback or an "internal error" (the error boundary's name for a bug); no file the
toolkit did not write changed.

Budget: ``VGG_FUZZ_EXAMPLES`` examples per reader (``make test``: 12, deterministic,
about 30 s in all; ``make fuzz``: 400 each, random, repeated for its time budget).
A failure Hypothesis finds is added below as an ``@example`` (a regression case)."""
import json
import os
import shutil

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from vggcli.cli import cli

from .hostile import snapshot

EXAMPLES = int(os.environ.get("VGG_FUZZ_EXAMPLES", "12"))
RANDOM = os.environ.get("VGG_FUZZ_RANDOM") == "1"
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not RANDOM,
                database=None, print_blob=True,
                suppress_health_check=list(HealthCheck))

LENGTH_CLASSES = (0, 1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 255,
                  256, 511, 512, 1023, 1024, 4095, 4096)


def mutations(data):
    """A strategy of byte strings derived from ``data``."""
    n = len(data)
    cuts = sorted({k for k in LENGTH_CLASSES if k < n} | {n // 2, max(0, n - 1), max(0, n - 8)})

    def flip(bits):
        out = bytearray(data)
        for bit in bits:
            out[bit // 8] ^= 1 << (bit % 8)
        return bytes(out)

    def insert(args):
        at, chunk = args
        return data[:at] + chunk + data[at:]

    def repeat(args):
        at, size, times = args
        return data[:at] + data[at:at + size] * times + data[at:]

    def overwrite(args):
        at, word = args
        return data[:at] + word + data[at + len(word):]
    words = [b"\xff\xff\xff\xff", b"\xff\xff\xff\x7f", b"\x00\x00\x00\x80", b"\xff" * 8,
             b"\x00\x00\x00\x00", b"\x00\x00\xc0\x7f"]  # huge sizes, -1, 0, NaN as float32
    return st.one_of(
        (st.sampled_from(cuts) | st.integers(0, max(0, n - 1))).map(lambda k: data[:k]),
        st.lists(st.integers(0, n * 8 - 1), min_size=1, max_size=8).map(flip),
        st.tuples(st.integers(0, n), st.binary(min_size=1, max_size=64)).map(insert),
        st.tuples(st.integers(0, max(0, n - 1)), st.integers(1, 64),
                  st.integers(2, 40)).map(repeat),
        st.tuples(st.integers(0, max(0, n - 4)), st.sampled_from(words)).map(overwrite))


HOSTILE_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.lists(st.integers(-3, 3), max_size=4), st.dictionaries(st.text(max_size=5),
                                                              st.integers(), max_size=3),
    st.sampled_from(["\udcff", "../../etc/passwd", "\x00", "1e999", "-0"]))


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node[:8]):
            yield from _paths(value, prefix + (index,))


def json_mutations(document):
    """Text of ``document`` (parsed JSON) with one node replaced or removed, or the
    whole text byte-mutated."""
    paths = list(_paths(document))[1:]

    def replace(args):
        path, value, remove = args
        copy = json.loads(json.dumps(document))
        node = copy
        for key in path[:-1]:
            node = node[key]
        if remove and isinstance(node, dict):
            del node[path[-1]]
        else:
            node[path[-1]] = value
        return json.dumps(copy).encode("utf-8", "surrogatepass")
    text = json.dumps(document).encode()
    return st.one_of(st.tuples(st.sampled_from(paths), HOSTILE_VALUES,
                               st.booleans()).map(replace), mutations(text))


def _mutated(data, damage, original, name):
    """``original`` (the file ``name``) damaged by a fixed example's ``damage`` (name,
    function), else by a drawn mutation: of its bytes, or for JSON of its bytes or its
    parsed nodes."""
    if damage:
        return damage[1](original)
    if name.endswith(".json") and data.draw(st.booleans()):
        return data.draw(json_mutations(json.loads(original)))
    return data.draw(mutations(original))


def check(args, *unchanged, out=None, finding=None):
    """Run ``vgg args`` in this process and assert the property (module docstring);
    ``finding``: the line start of a command whose exit status 1 reports what it found
    (vgg inspect's ``problem:``) rather than an error."""
    before = snapshot(*unchanged)
    result = CliRunner().invoke(cli, [str(a) for a in args])
    text = result.output
    assert result.exit_code in (0, 1, 2, 3), (result.exit_code, text[-2000:])
    assert "Traceback" not in text and "internal error" not in text, text[-2000:]
    if result.exit_code in (1, 2):
        lines = text.splitlines()
        errors = [line for line in lines if line.startswith("Error: ")]
        found = finding and result.exit_code == 1 and not errors and any(
            line.startswith(finding) for line in lines)
        assert found or len(errors) == 1, text[-2000:]
        if out is not None:
            assert not os.path.exists(out), "a failed run left %s" % out
    if result.exit_code == 3 and out is not None:  # done, with inputs skipped and named
        assert os.path.exists(out), text[-2000:]
    assert snapshot(*unchanged) == before
    return result


@pytest.fixture(scope="module")
def small_records(digits, tmp_path_factory):
    """The first 24 validation records of the digits (val.rec/.idx/.lst, manifest)."""
    from data_tools.recordio import read_index
    folder = tmp_path_factory.mktemp("fuzz-records")
    entries = read_index(os.path.join(digits, "val.idx"))[:25]
    with open(os.path.join(digits, "val.rec"), "rb") as f:
        data = f.read(entries[24][1])
    (folder / "val.rec").write_bytes(data)
    (folder / "val.idx").write_text("".join("%d\t%d\n" % e for e in entries[:24]))
    lines = open(os.path.join(digits, "val.lst")).read().splitlines()[:24]
    (folder / "val.lst").write_text("\n".join(lines) + "\n")
    for name in ("manifest.json", "synsets.txt"):
        shutil.copy(os.path.join(digits, name), folder / name)
    return folder


def _copy(folder, tmp_path):
    work = tmp_path / ("case-%d" % len(os.listdir(tmp_path)))
    shutil.copytree(folder, work)
    return work


def _negative_label(data):
    """The first record's label set to -20 (a random fuzzing failure: inspect looked its
    name up at index -20 of the class list, IndexError)."""
    import struct
    at = 8  # after the RecordIO magic and length: the header's flag, then the label
    return data[:at + 4] + struct.pack("<f", -20.0) + data[at + 8:]


@FUZZ
@given(data=st.data(), damage=st.none())
@example(data=None, damage=("val.rec", _negative_label))
def test_fuzz_records_inspect(small_records, tmp_path_factory, data, damage):
    work = _copy(small_records, tmp_path_factory.mktemp("f"))
    name = damage[0] if damage else data.draw(st.sampled_from(["val.rec", "val.idx",
                                                                "val.lst"]))
    (work / name).write_bytes(_mutated(data, damage, (work / name).read_bytes(), name))
    check(["inspect", work / "val.rec", "--samples", "3"], work, finding="problem: ")


def _huge_key(text):
    """A key of 20 digits in the index (a random fuzzing failure: numpy's int64
    OverflowError)."""
    return b"99999999999999999999" + text[text.index(b"\t"):]


@FUZZ
@given(data=st.data(), damage=st.none())
@example(data=None, damage=("val.idx", _huge_key))
def test_fuzz_records_and_manifest_eval(small_records, params, tmp_path_factory, data,
                                        damage):
    work = _copy(small_records, tmp_path_factory.mktemp("f"))
    name = damage[0] if damage else data.draw(st.sampled_from(["val.rec", "val.idx",
                                                                "manifest.json"]))
    original = (work / name).read_bytes()
    if damage:
        mutated = damage[1](original)
    elif name == "manifest.json":
        mutated = data.draw(json_mutations(json.loads(original)))
    else:
        mutated = data.draw(mutations(original))
    (work / name).write_bytes(mutated)
    out = work.parent / "eval-out"
    check(["eval", "--params", params, "--data", work / "val.rec", "--out", out, "--quiet",
           "--scales", "36", "--limit", "8"], work, out=out)


def _damaged_name(data):
    """An array name's first byte set to 0xff (the first fuzzing failure: MXNet's
    UnicodeDecodeError)."""
    at = data.index(b"features.conv1_1")
    return data[:at] + b"\xff" + data[at + 1:]


@FUZZ
@given(data=st.data(), damage=st.none())
@example(data=None, damage=_damaged_name)
def test_fuzz_params(small_records, params, tmp_path_factory, data, damage):
    work = tmp_path_factory.mktemp("f")
    with open(params, "rb") as f:
        original = f.read()
    (work / "net.params").write_bytes(damage(original) if damage else
                                      data.draw(mutations(original)))
    out = work.parent / (work.name + "-eval")
    check(["eval", "--params", work / "net.params", "--data", small_records / "val.rec",
           "--out", out, "--quiet", "--scales", "36", "--limit", "4"], work, out=out)


@pytest.fixture(scope="module")
def small_features(small_records, params, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz-features")
    result = CliRunner().invoke(cli, ["features", "--params", params, "--data",
                                      str(small_records / "val.rec"), "--scales", "36",
                                      "--out", str(folder / "f.npz"), "--quiet"])
    assert result.exit_code == 0, result.output
    return folder / "f.npz"


def _open_header(data):
    """The .npy header's dict left unclosed inside the archive (a random fuzzing
    failure: numpy's header parser raised tokenize.TokenError)."""
    at = data.index(b"{'descr'")
    end = data.index(b"}", at)
    return data[:end] + b" " + data[end + 1:]


@FUZZ
@given(data=st.data(), damage=st.none())
@example(data=None, damage=_open_header)
def test_fuzz_features_transfer(small_features, tmp_path_factory, data, damage):
    work = tmp_path_factory.mktemp("f")
    good = small_features.read_bytes()
    (work / "train.npz").write_bytes(damage(good) if damage else data.draw(mutations(good)))
    (work / "test.npz").write_bytes(good)
    out = work.parent / (work.name + "-svm")
    check(["transfer", "--train", work / "train.npz", "--test", work / "test.npz", "--out",
           out], work, out=out)


@pytest.fixture(scope="module")
def eval_pair(small_records, params, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz-eval")
    for name, scale in (("a", "36"), ("b", "40")):
        result = CliRunner().invoke(cli, ["eval", "--params", params, "--data",
                                          str(small_records / "val.rec"), "--scales", scale,
                                          "--out", str(folder / name), "--quiet"])
        assert result.exit_code == 0, result.output
    return folder


@FUZZ
@given(data=st.data())
def test_fuzz_eval_folders_fuse(eval_pair, tmp_path_factory, data):
    work = _copy(eval_pair, tmp_path_factory.mktemp("f"))
    name = data.draw(st.sampled_from(["report.json", "scores.npy", "labels.npy", "ids.txt"]))
    original = (work / "b" / name).read_bytes()
    if name == "report.json":
        mutated = data.draw(json_mutations(json.loads(original)))
    else:
        mutated = data.draw(mutations(original))
    (work / "b" / name).write_bytes(mutated)
    out = work / "fused"
    check(["fuse", work / "a", work / "b", "--out", out], work / "a", work / "b", out=out)


@pytest.fixture(scope="module")
def box_folder(tmp_path_factory):
    """Four real photos in two class folders and a CSV of their boxes."""
    import cv2
    from skimage import data as photos
    folder = tmp_path_factory.mktemp("fuzz-boxes")
    rows = ["image,class,xmin,ymin,xmax,ymax"]
    for i, photo in enumerate([photos.astronaut(), photos.coffee(), photos.chelsea(),
                               photos.rocket()]):
        cls = "c%d" % (i % 2)
        (folder / "raw" / cls).mkdir(parents=True, exist_ok=True)
        small = cv2.resize(photo, (64, 48))[:, :, ::-1]
        cv2.imwrite(str(folder / "raw" / cls / ("p%d.jpg" % i)), small)
        rows.append("%s/p%d.jpg,%s,4,5,40,30" % (cls, i, cls))
    (folder / "boxes.csv").write_text("\n".join(rows) + "\n")
    return folder


@FUZZ
@given(data=st.data())
def test_fuzz_box_csv_and_images_pack(box_folder, tmp_path_factory, data):
    work = _copy(box_folder, tmp_path_factory.mktemp("f"))
    target = data.draw(st.sampled_from(["boxes.csv", "raw/c0/p0.jpg"]))
    original = (work / target).read_bytes()
    (work / target).write_bytes(data.draw(mutations(original)))
    out = work.parent / "packed"
    result = check(["pack", work / "raw", "--out", out, "--boxes", work / "boxes.csv",
                    "--val-ratio", "0.5", "--quiet", "--workers", "1"], work, out=out)
    assert result.exit_code != 0 or os.path.isfile(out / "manifest.json")


NUMERIC_OPTIONS = [
    (["nets", "--net", "A"], "--width-mult"), (["nets", "--net", "A"], "--classes"),
    (["nets", "--net", "A"], "--crop-size")]
NUMBERS = st.one_of(st.integers(-2 ** 65, 2 ** 65).map(str),
                    st.floats(allow_nan=True, allow_infinity=True).map(repr),
                    st.sampled_from(["", " ", "1e999", "-0", "0x10", "1,2", "nan", "inf",
                                     "\udcff", "9" * 400]),
                    st.text(max_size=12))


@FUZZ
@given(numbers=st.lists(NUMBERS, min_size=1, max_size=1), which=st.integers(0, 2))
@example(numbers=["inf"], which=0)  # #28: an OverflowError before the error boundary
@example(numbers=["1e9"], which=0)  # MXNet refused a 64e9-filter conv before our size check
@example(numbers=["3.5e305"], which=0)  # a finite multiplier whose widths overflowed to inf
def test_fuzz_numeric_options(numbers, which):
    command, option = NUMERIC_OPTIONS[which]
    check(command + [option, numbers[0]])


@FUZZ
@given(data=st.data())
def test_fuzz_scales_and_sizes(small_records, params, tmp_path_factory, data):
    option = data.draw(st.sampled_from(["--scales", "--batch-size", "--limit", "--int8"]))
    value = data.draw(NUMBERS)
    out = tmp_path_factory.mktemp("f") / "o"
    check(["eval", "--params", params, "--data", small_records / "val.rec", "--out", out,
           "--quiet", "--limit", "2", "--scales", "36", option, value], out=out)


@FUZZ
@given(data=st.data())
def test_fuzz_recipe_yaml(tmp_path_factory, data):
    from vggcli.training.recipes import recipe_path
    with open(recipe_path("D-384"), "rb") as f:
        original = f.read()
    work = tmp_path_factory.mktemp("f")
    (work / "r.yaml").write_bytes(data.draw(mutations(original)))
    check(["recipe", "show", work / "r.yaml"], work)


# --- checkpoints: vgg train --resume -------------------------------------------------

@pytest.fixture(scope="module")
def checkpointed(digits, tmp_path_factory):
    """A one-epoch run of a tiny net as a kill leaves it: its checkpoint after batch 32
    kept, the later ones and the final weights gone (a resume trains ~13 batches)."""
    from vggcli.training import checkpoint
    run = tmp_path_factory.mktemp("fuzz-run") / "run"
    result = CliRunner().invoke(cli, [
        "train", "--net", "A", "--data", digits, "--width-mult", "0.125", "--fc-width", "32",
        "--crop-size", "32", "--scale", "36", "--batch-size", "32", "--epochs", "1",
        "--init", "xavier", "--checkpoint-every", "16", "--quiet", "--out", str(run)])
    assert result.exit_code == 0, result.output
    root = run / "checkpoints"
    names = checkpoint.list_checkpoints(str(root))
    keep = checkpoint.checkpoint_name(0, 32)
    assert keep in names, names
    for name in names:
        if name != keep:
            shutil.rmtree(root / name)
    for name in ("final.params", "best.params"):
        if (run / name).exists():
            (run / name).unlink()
    return run, root / keep


def _consistent_checksums(folder, name):
    """checksums.json rewritten for the mutated ``name``: a hostile checkpoint whose
    checksums agree (they prove the file is the one written, not that vgg wrote it)."""
    from vggcli.training.checkpoint import sha256
    sums = json.loads((folder / "checksums.json").read_text())
    sums[name] = dict(sha256=sha256(folder / name), bytes=(folder / name).stat().st_size)
    (folder / "checksums.json").write_text(json.dumps(sums))


def _no_top1(data):
    """The epoch's running sums without top1 (a random fuzzing failure: KeyError)."""
    state = json.loads(data)
    del state["meter"]["top1"]
    return json.dumps(state).encode()


def _no_best(data):
    """The schedule's state without its best accuracy (a random fuzzing failure:
    KeyError, found by make fuzz)."""
    state = json.loads(data)
    del state["schedule"]["best"]
    return json.dumps(state).encode()


def _cut_config(data):
    """The run's config.yaml cut after 63 bytes (a random fuzzing failure: a setting
    it no longer had was a KeyError)."""
    return data[:63]


def _no_weights_sum(data):
    """checksums.json with null for weights.params (a random fuzzing failure)."""
    sums = json.loads(data)
    sums["weights.params"] = None
    return json.dumps(sums).encode()


@FUZZ
@given(data=st.data(), damage=st.none())
@example(data=None, damage=("state.json", _no_top1))
@example(data=None, damage=("state.json", _no_best))
@example(data=None, damage=("config.yaml", _cut_config))
@example(data=None, damage=("checksums.json", _no_weights_sum))
def test_fuzz_checkpoint_resume(checkpointed, tmp_path_factory, data, damage):
    run, folder = checkpointed
    work = _copy(run, tmp_path_factory.mktemp("f"))
    target = work / "checkpoints" / folder.name
    name = damage[0] if damage else data.draw(st.sampled_from(
        ["state.json", "weights.params", "optimizer.nd", "checksums.json", "state.json",
         "config.yaml"]))
    if name == "config.yaml":  # the run's settings, which --resume reads back
        original = (work / name).read_bytes()
        (work / name).write_bytes(damage[1](original) if damage else
                                  data.draw(mutations(original)))
    else:
        (target / name).write_bytes(_mutated(data, damage, (target / name).read_bytes(),
                                             name))
    if name not in ("checksums.json", "config.yaml") and (damage or data.draw(st.booleans())):
        _consistent_checksums(target, name)
    check(["train", "--resume", work, "--quiet"], out=work / "final.params")


# --- localisation outputs: vgg fuse ----------------------------------------------------

@pytest.fixture(scope="module")
def dense_pair(trained, marked, tmp_path_factory):
    """Two dense localisation outputs of the painted photos (PCR and SCR nets)."""
    folder = tmp_path_factory.mktemp("fuzz-loc")
    for name in ("pcr", "scr"):
        result = CliRunner().invoke(cli, [
            "localise", "--params", str(trained / name / "best.params"), "--classifier",
            str(trained / "cls" / "best.params"), "--data", os.path.join(marked[0], "val.rec"),
            "--mode", "dense", "--scales", "40", "--quiet", "--out", str(folder / name)])
        assert result.exit_code == 0, result.output
    return folder


def _nan_box(data):
    """A candidate's box coordinate made NaN (a random fuzzing failure: rounding NaN)."""
    return data[:156] + b"\xff" * 4 + data[160:]


@FUZZ
@given(data=st.data(), damage=st.none())
@example(data=None, damage=("candidates.npy", _nan_box))
def test_fuzz_localisation_folders_fuse(dense_pair, tmp_path_factory, data, damage):
    work = _copy(dense_pair, tmp_path_factory.mktemp("f"))
    name = damage[0] if damage else data.draw(st.sampled_from(
        ["report.json", "truths.json", "top.npy", "candidates.npy", "ids.txt",
         "submission.txt"]))
    (work / "scr" / name).write_bytes(_mutated(data, damage, (work / "scr" / name).read_bytes(),
                                               name))
    out = work / "fused"
    check(["fuse", work / "pcr", work / "scr", "--out", out], work / "pcr", work / "scr",
          out=out)


# --- weights from elsewhere: vgg convert ----------------------------------------------

@pytest.fixture(scope="module")
def foreign_weights(tmp_path_factory):
    """Net A's layers (1/8 width, 64-wide fc) as a torchvision .pth and a Caffe
    .caffemodel: valid files whose shapes then differ from the full-size net A."""
    from vggcli.nets import convert, models
    folder = tmp_path_factory.mktemp("fuzz-foreign")
    net = models.initialize(models.get_model("A", classes=5, width_mult=0.125, fc_width=64,
                                             crop_size=32), seed=1)
    params = [(name, p.data().asnumpy()) for name, p in
              net._collect_params_with_prefix().items()]
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        state, index = {}, 0
        for name, value in params:
            layer = "features.%d" % index if name.startswith("features") else \
                "classifier.%d" % (3 * ["fc6", "fc7", "fc8"].index(name.split(".")[0]))
            state["%s.%s" % (layer, name.rsplit(".", 1)[1])] = torch.from_numpy(value)
            index += name.endswith("bias") and name.startswith("features")
        torch.save(state, str(folder / "a.pth"))
    messages = convert.caffe_messages()
    model = messages["NetParameter"](name="VGG_ILSVRC_11_layers")
    for name, value in params:
        if name.endswith("weight"):
            layer = model.layer.add()
            layer.name = name.split(".")[-2]
            layer.type = "Convolution" if value.ndim == 4 else "InnerProduct"
        blob = layer.blobs.add()
        blob.shape.dim.extend(value.shape)
        blob.data.extend(value.ravel().tolist())
    (folder / "a.caffemodel").write_bytes(model.SerializeToString())
    return folder


def _odd_layer_name(data):
    """The first layer's name made not UTF-8 (a random fuzzing failure: protobuf gave
    bytes, and str.startswith failed)."""
    at = data.index(b"conv1_1")
    return data[:at] + b"\xff" + data[at + 1:]


@FUZZ
@given(data=st.data(), damage=st.none())
@example(data=None, damage=("a.caffemodel", _odd_layer_name))
def test_fuzz_pth_and_caffemodel_convert(foreign_weights, tmp_path_factory, data, damage):
    names = [n for n in ("a.pth", "a.caffemodel") if (foreign_weights / n).exists()]
    name = damage[0] if damage else data.draw(st.sampled_from(names))
    work = tmp_path_factory.mktemp("f")
    (work / name).write_bytes(_mutated(data, damage, (foreign_weights / name).read_bytes(),
                                       name))
    source = "torchvision" if name.endswith(".pth") else "caffe"
    out = work.parent / (work.name + ".params")
    check(["convert", "--from", source, work / name, "--net", "A", "--out", out], work,
          out=out)


# --- the ILSVRC downloads: vgg pack-imagenet ----------------------------------------

@pytest.fixture(scope="module")
def mini_ilsvrc(tmp_path_factory):
    """The miniature ILSVRC's tars and devkit, with a val bbox archive (one VOC XML per
    val image)."""
    import io
    import tarfile

    from . import mini_imagenet
    root = tmp_path_factory.mktemp("fuzz-ilsvrc")
    truth = mini_imagenet.build(str(root))
    with tarfile.open(root / "bbox_val.tgz", "w:gz") as tar:
        for name, label in sorted(truth.val.items()):
            h, w = truth.sizes[name]
            xml = ("<annotation><filename>%s</filename><size><width>%d</width><height>%d"
                   "</height><depth>3</depth></size><object><name>%s</name><bndbox><xmin>2"
                   "</xmin><ymin>3</ymin><xmax>%d</xmax><ymax>%d</ymax></bndbox></object>"
                   "</annotation>" % (name[:-5], w, h, label, w // 2, h // 2)).encode()
            info = tarfile.TarInfo("val/%s.xml" % name[:-5])
            info.size = len(xml)
            tar.addfile(info, io.BytesIO(xml))
    layout = {k: os.path.relpath(v, root) for k, v in truth.layouts["tars"].items()}
    return root, layout


def _tgz_rewritten(data, change):
    """The .tar.gz ``data`` with each file's bytes replaced by ``change(index, name,
    body)`` (folders kept as they are)."""
    import io
    import tarfile
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as source, \
            tarfile.open(fileobj=out, mode="w:gz") as tar:
        for index, info in enumerate(source.getmembers()):
            if not info.isfile():
                tar.addfile(info)
                continue
            body = change(index, info.name, source.extractfile(info).read())
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return out.getvalue()


def _cut_stream(data):
    """The devkit's gzip stream cut at 200 bytes (a finding: the EOFError of reading a
    member was an internal error)."""
    return data[:200]


def _odd_ground_truth(data):
    """The devkit with a val ground-truth line that is not a number (a random fuzzing
    failure: int() raised ValueError)."""
    return _tgz_rewritten(data, lambda _, name, body: b"3i\x00\n" + body
                          if name.endswith("ground_truth.txt") else body)


@FUZZ
@given(data=st.data(), damage=st.none())
@example(data=None, damage=("devkit", _cut_stream))
@example(data=None, damage=("devkit", _odd_ground_truth))
def test_fuzz_ilsvrc_tars_devkit_and_box_xml_pack_imagenet(mini_ilsvrc, tmp_path_factory,
                                                           data, damage):
    root, layout = mini_ilsvrc
    work = _copy(root, tmp_path_factory.mktemp("f"))
    target = damage[0] if damage else data.draw(st.sampled_from(
        ["train_tar", "val_tar", "devkit", "xml", "xml"]))
    if damage:
        path = work / layout[target]
        path.write_bytes(damage[1](path.read_bytes()))
    elif target == "xml":
        path = work / "bbox_val.tgz"
        original = path.read_bytes()
        text = data.draw(mutations(_first_member(original)))
        path.write_bytes(_tgz_rewritten(original, lambda index, _, body: text if index == 0
                                        else body))
    else:
        path = work / layout[target]
        path.write_bytes(data.draw(mutations(path.read_bytes())))
    out = work.parent / (work.name + "-packed")
    check(["pack-imagenet", "--train-tar", work / layout["train_tar"], "--val-tar",
           work / layout["val_tar"], "--devkit", work / layout["devkit"], "--val-boxes",
           work / "bbox_val.tgz", "--out", out, "--quiet", "--max-short-side", "64",
           "--workers", "1"], work, out=out)


def _first_member(data):
    import io
    import tarfile
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return tar.extractfile(tar.getmembers()[0]).read()
