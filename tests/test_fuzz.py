"""Every reader fuzzed (Hypothesis): valid files the tests make, mutated (bit flips,
truncation at every length class, inserted and repeated chunks, huge declared sizes;
for JSON and YAML, any node replaced by a value of another type, NaN, inf, huge
numbers, text that is not UTF-8), fed to the command that reads them.

The property, for every example: exit status 0, 1, 2 or 3; at 1 or 2 exactly one
``Error:`` line and no output left (3: done, with the skipped inputs named); never a
traceback or an "internal error" (the error boundary's name for a bug); no file the
toolkit did not write changed.

Budget: ``VGG_FUZZ_EXAMPLES`` examples per reader (``make test``: 12, deterministic,
about a minute in all; ``make fuzz``: 400 each, random, repeated for its time budget).
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


@FUZZ
@given(data=st.data())
def test_fuzz_records_inspect(small_records, tmp_path_factory, data):
    work = _copy(small_records, tmp_path_factory.mktemp("f"))
    name = data.draw(st.sampled_from(["val.rec", "val.idx", "val.lst"]))
    original = (work / name).read_bytes()
    (work / name).write_bytes(data.draw(mutations(original)))
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
    from vggcli.recipes import recipe_path
    with open(recipe_path("D-384"), "rb") as f:
        original = f.read()
    work = tmp_path_factory.mktemp("f")
    (work / "r.yaml").write_bytes(data.draw(mutations(original)))
    check(["recipe", "show", work / "r.yaml"], work)
