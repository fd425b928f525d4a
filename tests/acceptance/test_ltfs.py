"""`reelfs tape format --device DIR`: an emulated LTO cartridge in the layout of
the reference LTFS implementation's file backend, labelled as an empty LTFS 2.4
volume. The XML is checked with Python's own parser against the element order
and required fields of the SNIA LTFS Format Specification 2.4, so what reelfs
writes is checked by something other than reelfs."""

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

# The spec's element sequences (LTFS Format 2.4, sections 8 and 9); required
# ones first in each pair.
LABEL_ORDER = ["creator", "formattime", "volumeuuid", "location", "partitions",
               "blocksize", "compression"]
INDEX_ORDER = ["creator", "comment", "volumeuuid", "generationnumber", "updatetime",
               "location", "previousgenerationlocation", "allowpolicyupdate",
               "dataplacementpolicy", "highestfileuid", "volumelockstate", "directory"]
INDEX_REQUIRED = ["creator", "volumeuuid", "generationnumber", "updatetime", "location",
                  "allowpolicyupdate", "directory"]
DIR_ORDER = ["name", "readonly", "creationtime", "changetime", "modifytime", "accesstime",
             "backuptime", "fileuid", "extendedattributes", "contents"]
DIR_REQUIRED = [n for n in DIR_ORDER if n != "extendedattributes"]
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def children(el):
    return [c.tag for c in el]


def assert_sequence(el, order, required):
    names = children(el)
    for r in required:
        assert r in names, f"<{el.tag}> lacks <{r}>: {names}"
    positions = [order.index(n) for n in names]  # ValueError = unknown element
    assert positions == sorted(positions), f"<{el.tag}> out of order: {names}"
    assert len(set(names)) == len(names), f"<{el.tag}> repeats an element: {names}"


def format_cartridge(reelfs, dev, *extra):
    dev.mkdir(exist_ok=True)
    return reelfs.ok("tape", "format", "--device", dev, "--tape", "A00001L8", *extra)


def test_format_writes_the_reference_file_backend_layout(reelfs, tmp_path):
    dev = tmp_path / "cart"
    proc = format_cartridge(reelfs, dev, "--capacity", "2G")
    assert "A00001" in proc.stdout
    names = sorted(p.name for p in dev.iterdir())
    # Each partition: VOL1, FM, label, FM, FM, index, FM, end of data.
    for p in "01":
        assert [n for n in names if n.startswith(p + "_")] == sorted(
            f"{p}_{b}_{k}" for b, k in enumerate("RFRFFRFE"))
        vol1 = (dev / f"{p}_0_R").read_bytes()
        assert len(vol1) == 80 and vol1.startswith(b"VOL1A00001L") and vol1[24:28] == b"LTFS"
        assert vol1[79:] == b"4"
    # The settings the reference backend reads, with the asked-for size in MB.
    conf = ET.parse(dev / "filedebug_tc_conf.xml").getroot()
    assert conf.tag == "filedebug_cartridge_config"
    assert conf.findtext("capacity_mb") == "2048"
    # Cartridge memory: coherency per partition and the volume change reference.
    for attr in ["attr_0_80c", "attr_1_80c", "attr_0_9"]:
        assert (dev / attr).is_file(), attr


def test_labels_and_indexes_have_the_structure_the_spec_defines(reelfs, tmp_path):
    dev = tmp_path / "cart"
    format_cartridge(reelfs, dev)
    uuids = set()
    for p, letter in [("0", "a"), ("1", "b")]:
        label = ET.fromstring((dev / f"{p}_2_R").read_bytes())
        assert label.tag == "ltfslabel" and label.get("version") == "2.4.0"
        assert_sequence(label, LABEL_ORDER, LABEL_ORDER)
        assert label.findtext("location/partition") == letter
        assert label.findtext("partitions/index") == "a"
        assert label.findtext("partitions/data") == "b"
        assert label.findtext("blocksize") == "524288"
        assert label.findtext("compression") == "false"
        assert TIME.match(label.findtext("formattime"))
        uuids.add(label.findtext("volumeuuid"))

        index = ET.fromstring((dev / f"{p}_5_R").read_bytes())
        assert index.tag == "ltfsindex" and index.get("version") == "2.4.0"
        assert_sequence(index, INDEX_ORDER, INDEX_REQUIRED)
        assert index.findtext("generationnumber") == "1"
        assert TIME.match(index.findtext("updatetime"))
        # Self pointer: where the index is; back pointer from a to b.
        assert index.findtext("location/partition") == letter
        assert index.findtext("location/startblock") == "5"
        if letter == "a":
            assert index.findtext("previousgenerationlocation/partition") == "b"
            assert index.findtext("previousgenerationlocation/startblock") == "5"
        else:
            assert index.find("previousgenerationlocation") is None
        root = index.find("directory")
        assert_sequence(root, DIR_ORDER, DIR_REQUIRED)
        assert len(root.find("contents")) == 0
        uuids.add(index.findtext("volumeuuid"))
    assert len(uuids) == 1 and UUID.match(uuids.pop())


def test_format_json_reports_the_volume(reelfs, tmp_path):
    dev = tmp_path / "cart"
    dev.mkdir()
    rep = reelfs.json("tape", "format", "--device", dev, "--tape", "B00002L9", "--capacity", "1G")
    assert rep["barcode"] == "B00002L9"
    assert rep["volume_serial"] == "B00002"
    assert UUID.match(rep["volume_uuid"])
    assert rep["block_size"] == 524288
    # 1024 MB cartridge, 5% index partition, less the 7 blocks before end of data.
    assert rep["data_capacity"] == (1024 - 51) * 1024 * 1024 - 7 * 524288


def test_a_formatted_cartridge_is_not_erased_without_force(reelfs, tmp_path):
    dev = tmp_path / "cart"
    format_cartridge(reelfs, dev)
    before = {p.name: p.read_bytes() for p in dev.iterdir()}
    proc = reelfs("tape", "format", "--device", dev, "--tape", "A00009L8")
    assert proc.returncode != 0
    assert "already holds LTFS volume A00001" in proc.stderr and "--force" in proc.stderr
    assert {p.name: p.read_bytes() for p in dev.iterdir()} == before
    reelfs.ok("tape", "format", "--device", dev, "--tape", "A00009L8", "--force")
    assert (dev / "0_0_R").read_bytes().startswith(b"VOL1A00009")


def test_bad_input_is_refused_with_what_to_do(reelfs, tmp_path):
    dev = tmp_path / "cart"
    dev.mkdir()
    for barcode in ["a00001L8", "A001", "A0-001L8"]:
        proc = reelfs("tape", "format", "--device", dev, "--tape", barcode)
        assert proc.returncode != 0
        assert "barcode" in proc.stderr and "0-9 or A-Z" in proc.stderr, proc.stderr
    assert list(dev.iterdir()) == [], "nothing written for a refused barcode"

    proc = reelfs("tape", "format", "--device", tmp_path / "missing", "--tape", "A00001L8")
    assert proc.returncode != 0 and "missing" in proc.stderr

    plain = tmp_path / "plain-file"
    plain.write_bytes(b"not a tape")
    proc = reelfs("tape", "format", "--device", plain, "--tape", "A00001L8", "--capacity", "1G")
    assert proc.returncode != 0 and "--capacity" in proc.stderr
    proc = reelfs("tape", "format", "--device", plain, "--tape", "A00001L8")
    assert proc.returncode != 0 and "neither a directory" in proc.stderr
    assert plain.read_bytes() == b"not a tape"

    proc = reelfs("tape", "format", "--device", dev, "--tape", "A00001L8", "--capacity", "10M")
    assert proc.returncode != 0 and "too small" in proc.stderr


def test_format_leaves_other_files_in_the_folder_alone(reelfs, tmp_path):
    dev = tmp_path / "cart"
    dev.mkdir()
    (dev / "README.txt").write_text("shelf 4\n")
    format_cartridge(reelfs, dev, "--force")
    assert (dev / "README.txt").read_text() == "shelf 4\n"
