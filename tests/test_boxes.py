"""Boxes for localisation: VOC XML as the ILSVRC-2012 bbox archives write it, CSV,
cleaning, and GluonCV's detection RecordIO layout read back by GluonCV itself."""
import os

import numpy as np
import pytest

from data_tools import boxes
from data_tools.boxes import parse_label
from data_tools.common import VggError

from . import mini_imagenet
from .test_pack import MAX_SIDE

# The layout of ILSVRC2012_bbox_val_v3.tgz's files (val/ILSVRC2012_val_00000001.xml)
ILSVRC_XML = b"""<annotation>
\t<folder>val</folder>
\t<filename>ILSVRC2012_val_00000001</filename>
\t<source>
\t\t<database>ILSVRC_2012</database>
\t</source>
\t<size>
\t\t<width>500</width>
\t\t<height>375</height>
\t\t<depth>3</depth>
\t</size>
\t<segmented>0</segmented>
\t<object>
\t\t<name>n01751748</name>
\t\t<pose>Unspecified</pose>
\t\t<truncated>0</truncated>
\t\t<difficult>0</difficult>
\t\t<bndbox>
\t\t\t<xmin>111</xmin>
\t\t\t<ymin>108</ymin>
\t\t\t<xmax>441</xmax>
\t\t\t<ymax>193</ymax>
\t\t</bndbox>
\t</object>
\t<object>
\t\t<name>n01751748</name>
\t\t<pose>Unspecified</pose>
\t\t<truncated>1</truncated>
\t\t<difficult>1</difficult>
\t\t<bndbox>
\t\t\t<xmin>0</xmin>
\t\t\t<ymin>20</ymin>
\t\t\t<xmax>60</xmax>
\t\t\t<ymax>374</ymax>
\t\t</bndbox>
\t</object>
</annotation>
"""


def test_ilsvrc_xml_gives_every_object_with_its_flags():
    parsed = boxes.parse_voc(ILSVRC_XML, "val.xml")
    assert parsed["filename"] == "ILSVRC2012_val_00000001"
    assert (parsed["width"], parsed["height"]) == (500, 375)
    assert [o["box"] for o in parsed["objects"]] == [(111, 108, 441, 193), (0, 20, 60, 374)]
    assert [o["name"] for o in parsed["objects"]] == ["n01751748"] * 2
    assert [(o["truncated"], o["difficult"]) for o in parsed["objects"]] == \
        [(False, False), (True, True)]
    without = ILSVRC_XML.split(b"\t<object>")[0] + b"</annotation>"
    assert boxes.parse_voc(without)["objects"] == []


@pytest.mark.parametrize("damage, message", [
    (lambda x: x[:200], "not valid XML"),
    (lambda x: x.replace(b"annotation>", b"note>"), "not <annotation>"),
    (lambda x: x.replace(b"<width>500</width>", b""), "no <size/width>"),
    (lambda x: x.replace(b"<xmin>111</xmin>", b"<xmin>eleven</xmin>"), "object 1: <bndbox/xmin>"),
    (lambda x: x.replace(b"<ymax>374</ymax>", b"<ymax>nan</ymax>"), "object 2: <bndbox/ymax>"),
])
def test_a_damaged_xml_file_is_named_with_its_fault(damage, message):
    with pytest.raises(VggError, match=message) as caught:
        boxes.parse_voc(damage(ILSVRC_XML), "val/x.xml")
    assert "val/x.xml" in str(caught.value)


def test_csv_boxes_and_their_faults():
    text = ("image,class,xmin,ymin,xmax,ymax\na.jpg,cat,1,2,30,40\na.jpg,cat,5,5,9,9\n"
            "b.jpg,dog,0,0,1,1\n")
    found = boxes.read_box_csv(text.encode())
    assert found == {"a.jpg": [("cat", (1, 2, 30, 40)), ("cat", (5, 5, 9, 9))],
                     "b.jpg": [("dog", (0, 0, 1, 1))]}
    with pytest.raises(VggError, match="line 2: 5 fields"):
        boxes.read_box_csv("image,class,xmin,ymin,xmax,ymax\na.jpg,cat,1,2,30\n")
    with pytest.raises(VggError, match="line 1: the box"):
        boxes.read_box_csv("a.jpg,cat,1,2,x,4\n")


def test_boxes_are_clipped_to_the_image_and_empty_ones_dropped():
    """Ends are inclusive pixels: a 100 px wide image's last column is 99, and a box
    from column 30 to column 30 is one pixel wide (kept); one ending before it starts
    is empty."""
    kept, clipped, dropped = boxes.clean_boxes(
        [(0, (10, 10, 20, 20)), (0, (-5, 3, 120, 50)), (1, (150, 0, 170, 10)),
         (1, (30, 40, 30, 60)), (1, (30, 40, 29, 60)), (1, (0, 80, 10, 90))],
        width=100, height=80)
    assert kept == [(0, (10, 10, 20, 20)), (0, (0, 3, 99, 50)), (1, (30, 40, 30, 60))]
    assert (clipped, dropped) == (1, 3)


def test_gluoncv_reads_our_detection_labels(tmp_path):
    """Written with MXNet's own pack_img, read back with GluonCV's RecordFileDetection:
    the pixel boxes and classes come back."""
    import mxnet as mx

    from vggcli.core.compat import import_gluoncv
    RecordFileDetection = import_gluoncv("gluoncv.data").RecordFileDetection

    image = np.zeros((375, 500, 3), np.uint8)
    objects = [(3, (111.0, 108.0, 441.0, 193.0)), (3, (0.0, 20.0, 60.0, 374.0))]
    label = boxes.detection_label(objects, 500, 375)
    rec, idx = str(tmp_path / "d.rec"), str(tmp_path / "d.idx")
    writer = mx.recordio.MXIndexedRecordIO(idx, rec, "w")
    writer.write_idx(0, mx.recordio.pack_img(mx.recordio.IRHeader(0, label, 0, 0), image,
                                             img_fmt=".png"))
    writer.close()
    _, read = RecordFileDetection(rec)[0]
    np.testing.assert_allclose(read[:, :4], [b for _, b in objects], atol=1e-3)
    np.testing.assert_array_equal(read[:, 4], [3, 3])
    back = boxes.boxes_from_label(label, 500, 375)
    assert [c for c, _ in back] == [3, 3]
    np.testing.assert_allclose([b for _, b in back], [b for _, b in objects], atol=1e-3)
    with pytest.raises(VggError, match="not a detection label"):
        boxes.boxes_from_label([2, 5, 1, 0.1, 0.2], 10, 10)


def test_whole_pixel_boxes_come_back_exactly():
    """The header keeps corners as float32 fractions of the side; the devkit's
    whole-pixel corners must come back exactly, at every image size (for 94 of the
    100 even widths 200-398 the plain product misses a half-width box's IoU of 0.5
    by ~2e-8)."""
    from vggcli.localisation.scoring import devkit_iou, localisation_errors
    for width in range(200, 400, 2):
        height = 215
        half = (0.0, 0.0, width / 2 - 1.0, height - 1.0)  # IoU 0.5 with the whole image
        label = boxes.detection_label([(3, half), (3, (7.0, 1.0, 123.0, 214.0))], width,
                                      height)
        objects, source = boxes.parse_label(label)
        back = boxes.objects_in_pixels(objects, *source)
        assert back == [(3, half), (3, (7.0, 1.0, 123.0, 214.0))]
        whole = (0.0, 0.0, width - 1.0, height - 1.0)
        assert devkit_iou(whole, back[0][1]) == 0.5
        # a tie at IoU 0.5 counts as right, as in the devkit
        assert localisation_errors([[(3, whole)]], [back[:1]])[1] == 0.0
    # a corner that is not a whole pixel stays where it was
    label = boxes.detection_label([(0, (10.25, 0.0, 99.5, 50.0))], 200, 100)
    (_, box), = boxes.objects_in_pixels(*[boxes.parse_label(label)[0], 200, 100])
    assert box[0] == pytest.approx(10.25, abs=1e-4) and box[2] == pytest.approx(99.5, abs=1e-4)


# --- ILSVRC's bbox archives and Kaggle's CSVs, packed (moved from test_localise) --------

def _records_by_id(out, split):
    from vggcli.training.data import RecordImages
    from vggcli.testing.inference import record_ids
    rec = os.path.join(out, split + ".rec")
    images = RecordImages(rec)
    ids = record_ids(rec, len(images))
    return {ids[i].rsplit("/", 1)[-1][:-5]: images.record(i) for i in range(len(images))}


def test_ilsvrc_boxes_are_packed_clipped_dropped_and_counted(boxed):
    truth, out, manifest, expected = boxed
    train = manifest["splits"]["train"]["boxes"]
    assert train == dict(images=2, objects=3, clipped=1, dropped=1, images_left_without=0)
    assert manifest["splits"]["val"]["boxes"]["images"] == len(truth.val)
    found = manifest["boxes"]["train"]
    assert found["train"]["unknown_class"] == 1 and found["files_without_image"] == 1
    assert found["train"]["images_with_boxes"] == 2  # the XML without objects adds none
    for split in ("train", "val"):
        records = _records_by_id(out, split)
        with_boxes = {k for k, (_, _, extra) in records.items() if len(extra)}
        assert with_boxes == {k for k in expected if k in records}
        keys = [int(line.split()[0]) for line in open(os.path.join(out, split + ".box.idx"))]
        assert len(keys) == len(with_boxes)
        for stem, (_, label, extra) in records.items():
            if not len(extra):
                continue
            objects, header = parse_label(extra)
            source_h, source_w = truth.sizes[stem + ".JPEG"]
            assert tuple(header) == (source_w, source_h)  # the original size, for the devkit
            np.testing.assert_allclose(objects[:, 1:] * np.tile([source_w, source_h], 2),
                                       [box for _, box in expected[stem]], atol=1e-3)
            assert label == expected[stem][0][0]  # the class stays in the header's label


def test_gluoncv_reads_the_packed_boxes_on_the_shrunk_images(boxed):
    """GluonCV's RecordFileDetection gives the boxes in the stored image's pixels: the
    source box times stored size / source size (normalised corners survive the
    shrink); the class comes back in its column."""
    from vggcli.core.compat import import_gluoncv
    RecordFileDetection = import_gluoncv("gluoncv.data").RecordFileDetection
    truth, out, _, expected = boxed
    ids = [line.rstrip("\n").split("\t")[2] for line in open(os.path.join(out, "val.lst"))]
    dataset = RecordFileDetection(os.path.join(out, "val.rec"))
    assert len(dataset) == len(ids)
    for index, ident in enumerate(ids):
        image, label = dataset[index]
        stem = ident[:-5]
        source_h, source_w = truth.sizes[ident]
        scale = np.array([image.shape[1] / source_w, image.shape[0] / source_h] * 2)
        assert min(image.shape[:2]) == min(MAX_SIDE, source_h, source_w)
        (cls, box), = expected[stem]
        np.testing.assert_allclose(label[0, :4], np.array(box) * scale, atol=1e-2)
        assert label[0, 4] == cls


def test_kaggle_solution_files_give_the_same_boxes_as_the_xml(tmp_path):
    """Kaggle's LOC_val_solution.csv repeats the XML's 1-based corners per object."""
    from data_tools.boxes import read_box_files
    root = tmp_path / "mini"
    mini_imagenet.build(str(root))
    found = read_box_files(str(root / "kaggle" / "LOC_val_solution.csv"))
    assert len(found) == 6
    for objects in found.values():
        assert [box for _, box in objects] == [(0, 1, 29, 39), (4, 5, 69, 79)]
        assert objects[0][0] == objects[1][0] and objects[0][0] in mini_imagenet.WNIDS


def test_damaged_box_files_are_named(tmp_path):
    from data_tools.boxes import read_box_files
    from data_tools.common import VggError
    (tmp_path / "bad.csv").write_text("image,class,xmin,ymin,xmax,ymax\na.jpg,cat,1,2\n")
    with pytest.raises(VggError, match="bad.csv, line 2"):
        read_box_files(str(tmp_path / "bad.csv"))
    (tmp_path / "b.tgz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(VggError, match="b.tgz is damaged or not a tar"):
        read_box_files(str(tmp_path / "b.tgz"))
    xml = tmp_path / "xml"
    xml.mkdir()
    (xml / "ILSVRC2012_val_00000001.xml").write_bytes(b"<annotation><size>")
    with pytest.raises(VggError, match="ILSVRC2012_val_00000001.xml is not valid XML"):
        read_box_files(str(xml))
    (tmp_path / "latin.csv").write_bytes(b"image,class,xmin,ymin,xmax,ymax\n\xe9.jpg,c,1,2,3,4\n")
    with pytest.raises(VggError, match="latin.csv is not UTF-8 text"):
        read_box_files(str(tmp_path / "latin.csv"))
    (tmp_path / "k.csv").write_text("ImageId,PredictionString\nx,n01 1 2 3\n")
    with pytest.raises(VggError, match="k.csv, line 2: expected ImageId"):
        read_box_files(str(tmp_path / "k.csv"))
    os.mkfifo(str(tmp_path / "fifo.csv"))
    with pytest.raises(VggError, match="not a regular file"):
        read_box_files(str(tmp_path / "fifo.csv"))
