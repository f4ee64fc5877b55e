import gzip
import os

import numpy as np
import pytest

from cnntree import with_overrides
from cnntree.data import load_faces, load_for_spec, make_splits, subject_groups
from cnntree.data.labels import relabel
from cnntree.errors import CnnTreeError
from cnntree.spec import FER2013_CLASSES, load_spec, parse_spec

from .helpers import FULL_FER2013, ROOT, rows_from, write_csv, write_folder


def test_sample_has_every_class_in_every_split(sample):
    assert sample.classes == FER2013_CLASSES
    assert sample.images.shape == (1750, 48, 48) and sample.images.dtype == np.uint8
    for split, per_class in (("Training", 180), ("PublicTest", 35), ("PrivateTest", 35)):
        counts = np.bincount(sample.labels[sample.splits == split], minlength=7)
        assert counts.tolist() == [per_class] * 7


def test_csv_plain_and_gzip_give_the_same_pixels(tmp_path, sample):
    rows = rows_from(sample, 3)
    plain = load_faces(write_csv(tmp_path / "a.csv", rows), cache=False)
    gz = load_faces(write_csv(tmp_path / "a.csv.gz", rows), cache=False)
    assert len(plain) == 21
    np.testing.assert_array_equal(plain.images, gz.images)
    np.testing.assert_array_equal(plain.labels, [r[0] for r in rows])
    np.testing.assert_array_equal(plain.images[0], rows[0][1])
    assert plain.names[0] == "line 2"


def test_columns_found_by_header_name_and_usage_optional(tmp_path, sample):
    img = sample.images[0]
    path = tmp_path / "reordered.csv"
    path.write_text("Usage,emotion,pixels\n" + f"Training,3,{' '.join(map(str, img.ravel()))}\n")
    data = load_faces(path, cache=False)
    assert data.labels.tolist() == [3] and data.splits.tolist() == ["Training"]
    path.write_text("emotion,pixels\n" + f"5,{' '.join(map(str, img.ravel()))}\n")
    assert load_faces(path, cache=False).splits.tolist() == [""]


def _bad_rows(sample):
    good = " ".join(map(str, sample.images[0].ravel()))
    return {
        "wrong pixel count": ("0", " ".join(good.split()[:-1]), "line 3: 2303 pixel values, expected 2304 (48x48)"),
        "non-numeric": ("0", good.replace("255", "2x5", 1) if "255" in good else "x" + good,
                        "line 3: non-numeric pixel values"),
        "NaN text": ("0", "nan " + " ".join(good.split()[1:]), "line 3: non-numeric pixel values"),
        "unknown emotion": ("9", good, "line 3: unknown emotion code '9' (expected 0-6)"),
        "value above 255": ("0", "256 " + " ".join(good.split()[1:]), "line 3: pixel value above 255"),
    }


@pytest.mark.parametrize("case", ["wrong pixel count", "non-numeric", "NaN text", "unknown emotion", "value above 255"])
def test_bad_row_names_the_line_or_is_skipped(tmp_path, sample, case):
    emotion, pixels, message = _bad_rows(sample)[case]
    path = write_csv(tmp_path / "bad.csv", [(1, sample.images[1], "Training"), (emotion, pixels, "Training"),
                                            (2, sample.images[2], "PublicTest")])
    with pytest.raises(CnnTreeError) as info:
        load_faces(path, cache=False)
    assert str(info.value).startswith(f"{path}: {message}")
    assert "--skip-bad" in str(info.value)
    data = load_faces(path, skip_bad=True, cache=False)
    assert data.labels.tolist() == [1, 2]
    assert len(data.skipped) == 1 and data.skipped[0].startswith("line 3:")
    np.testing.assert_array_equal(data.images[1], sample.images[2])


def test_missing_column(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("emotion,Usage\n0,Training\n")
    with pytest.raises(CnnTreeError, match=r'x\.csv: line 1: missing column "pixels"'):
        load_faces(path, cache=False)


def test_truncated_gzip(tmp_path, small_csv):
    packed = gzip.compress(small_csv.read_bytes())
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(CnnTreeError, match=r"cut\.csv\.gz: truncated or corrupt gzip file"):
        load_faces(path, cache=False)


def test_missing_and_unsupported_sources(tmp_path):
    with pytest.raises(CnnTreeError, match="no such file or folder"):
        load_faces(tmp_path / "none.csv")
    (tmp_path / "x.parquet").write_text("x")
    with pytest.raises(CnnTreeError, match="unsupported data source"):
        load_faces(tmp_path / "x.parquet")


def test_cache_is_reused_and_invalidated_by_changes(tmp_path, sample, monkeypatch):
    monkeypatch.setenv("CNNTREE_CACHE", str(tmp_path / "cache"))
    path = write_csv(tmp_path / "c.csv", rows_from(sample, 2))
    first = load_faces(path)
    assert len(list((tmp_path / "cache").glob("c.csv-*.npz"))) == 1
    os.utime(path, ns=(1, 1))  # same bytes, other mtime: a new key
    assert len(load_faces(path)) == len(first)
    assert len(list((tmp_path / "cache").glob("c.csv-*.npz"))) == 2
    write_csv(path, rows_from(sample, 1))  # new content
    assert len(load_faces(path)) == 7


def test_damaged_cache_is_rebuilt(tmp_path, sample, monkeypatch):
    monkeypatch.setenv("CNNTREE_CACHE", str(tmp_path / "cache"))
    path = write_csv(tmp_path / "c.csv", rows_from(sample, 2))
    load_faces(path)
    (cached,) = (tmp_path / "cache").glob("c.csv-*.npz")
    cached.write_bytes(b"garbage")
    assert len(load_faces(path)) == 14


def test_folder_with_split_level(tmp_path, sample):
    write_folder(tmp_path / "d", sample, per_class=3, split="train")
    write_folder(tmp_path / "d", sample, per_class=2, split="test")
    data = load_faces(tmp_path / "d", cache=False)
    assert data.classes == tuple(sorted(FER2013_CLASSES))
    assert (data.splits == "train").sum() == 21 and (data.splits == "test").sum() == 14
    angry = np.flatnonzero(sample.labels == 0)[0]
    np.testing.assert_array_equal(data.images[data.names == f"test/angry/S000_angry_{angry}.png"][0],
                                  sample.images[angry])


def test_folder_without_split_level_resizes_and_counts(tmp_path, sample):
    import cv2

    root = write_folder(tmp_path / "d", sample, per_class=2)
    cv2.imwrite(str(root / "happy" / "big.jpg"), cv2.resize(sample.images[0], (96, 96)))
    data = load_faces(root, cache=False)
    assert len(data) == 15 and set(data.splits.tolist()) == {""}
    assert data.images.shape[1:] == (48, 48)
    assert data.resized == 1 and data.skipped == ()


@pytest.mark.parametrize("case,message", [
    ("empty class", r"empty class folder \(no images\)"),
    ("not an image", r"notes\.txt: not an image file"),
    ("unreadable", r"broken\.png: unreadable image"),
    ("empty file", r"zero\.png: empty file"),
    ("no classes", r"no class folders"),
])
def test_bad_folders(tmp_path, sample, case, message):
    root = write_folder(tmp_path / "d", sample, per_class=2)
    if case == "empty class":
        (root / "contempt").mkdir()
    elif case == "not an image":
        (root / "sad" / "notes.txt").write_text("hello")
    elif case == "unreadable":
        (root / "sad" / "broken.png").write_bytes(b"\x89PNG not really")
    elif case == "empty file":
        (root / "sad" / "zero.png").write_bytes(b"")
    else:
        root = tmp_path / "flat"
        root.mkdir()
        (root / "a.png").write_bytes(b"")
    with pytest.raises(CnnTreeError, match=message):
        load_faces(root, cache=False)
    if case in ("not an image", "unreadable", "empty file"):
        data = load_faces(root, skip_bad=True, cache=False)
        assert len(data) == 14 and len(data.skipped) == 1


def test_label_map_merges_and_drop_removes(sample):
    merged = relabel(sample, ["negative", "fear", "happy", "sad", "surprise", "neutral"],
                     label_map={"angry": "negative", "disgust": "negative"})
    assert merged.counts()["negative"] == sample.counts()["angry"] + sample.counts()["disgust"]
    dropped = relabel(sample, ["angry", "fear", "happy", "sad", "surprise", "neutral"], drop=["disgust"])
    assert len(dropped) == len(sample) - sample.counts()["disgust"]
    assert dropped.classes[0] == "angry"


def test_label_map_errors(sample):
    with pytest.raises(CnnTreeError, match='names "angr", which is not a class of the data \\(did you mean "angry"'):
        relabel(sample, FER2013_CLASSES, label_map={"angr": "anger"})
    with pytest.raises(CnnTreeError, match='data class "disgust" is not in the spec\'s classes'):
        relabel(sample, ["angry", "fear", "happy", "sad", "surprise", "neutral"])
    with pytest.raises(CnnTreeError, match="contempt has no images"):
        relabel(sample, [*FER2013_CLASSES, "contempt"])


def test_usage_splits_with_validation_carve_out(sample):
    splits = make_splits(sample, {"scheme": "usage", "train": "Training", "test": ["PublicTest", "PrivateTest"]},
                         {"from": "Training", "fraction": 0.1})
    assert splits.sizes() == {"Training": 1134, "Validation": 126, "PublicTest": 245, "PrivateTest": 245}
    assert np.bincount(sample.labels[splits.validation]).tolist() == [18] * 7
    assert not set(splits.train) & set(splits.validation)
    whole = make_splits(sample, {"scheme": "usage", "train": "Training", "test": ["PublicTest", "PrivateTest"]},
                        {"from": "PublicTest", "fraction": 1.0})
    assert whole.sizes() == {"Training": 1260, "Validation": 245, "PrivateTest": 245}


def test_random_split_is_stratified_and_seeded(sample):
    split = {"scheme": "random", "test_fraction": 0.2, "seed": 3}
    a = make_splits(sample, split, {"from": "Training", "fraction": 0.1})
    b = make_splits(sample, split, {"from": "Training", "fraction": 0.1})
    np.testing.assert_array_equal(a.tests["Test"], b.tests["Test"])
    assert np.bincount(sample.labels[a.tests["Test"]]).tolist() == [50] * 7
    assert len(a.train) + len(a.validation) + len(a.tests["Test"]) == len(sample)


def test_grouped_kfold_keeps_subjects_apart(tmp_path, sample):
    data = load_faces(write_folder(tmp_path / "d", sample, per_class=12), cache=False)
    groups = subject_groups(data.names, r"^(S\d+)_")
    assert len(set(groups)) == 12
    seen = {}
    for fold in range(4):
        splits = make_splits(data, {"scheme": "kfold", "folds": 4, "fold": fold, "group_regex": r"^(S\d+)_",
                                    "seed": 0}, {"from": "Training", "fraction": 0.1})
        test_groups = set(groups[splits.tests["Test"]])
        assert not test_groups & set(groups[np.concatenate([splits.train, splits.validation])])
        for g in test_groups:
            assert g not in seen
            seen[g] = fold
    assert len(seen) == 12  # every subject is tested in exactly one fold


def test_kfold_errors(sample, tmp_path):
    with pytest.raises(CnnTreeError, match="10 folds but only 5 subjects"):
        data = load_faces(write_folder(tmp_path / "d", sample, per_class=10), cache=False)
        data = data.subset(np.array([n.split("/")[-1][:4] in {f"S00{i}" for i in range(5)} for n in data.names]))
        make_splits(data, {"scheme": "kfold", "folds": 10, "fold": 0, "group_regex": r"^(S\d+)_", "seed": 0},
                    {"from": "Training", "fraction": 0.1})
    with pytest.raises(CnnTreeError, match="does not match this file name"):
        subject_groups(np.array(["angry/x.png"]), r"^(S\d+)_")
    with pytest.raises(CnnTreeError, match=r'200 folds but class "angry" has only 180'):
        make_splits(sample.subset(sample.splits == "Training"),
                    {"scheme": "kfold", "folds": 100, "fold": 0, "group_regex": None, "seed": 0} | {"folds": 200},
                    {"from": "Training", "fraction": 0.1})


def test_usage_split_errors(tmp_path, sample):
    with pytest.raises(CnnTreeError, match='split "Trainig", which the data does not have \\(did you mean "Training"'):
        make_splits(sample, {"scheme": "usage", "train": "Trainig", "test": ["PublicTest"]},
                    {"from": "Training", "fraction": 0.1})
    data = load_faces(write_folder(tmp_path / "flat", sample, per_class=2), cache=False)
    with pytest.raises(CnnTreeError, match="no split column or split folders"):
        make_splits(data, {"scheme": "usage", "train": "Training", "test": ["PublicTest"]},
                    {"from": "Training", "fraction": 0.1})


def test_spec_data_path_is_relative_to_the_spec(tmp_path, sample):
    write_csv(tmp_path / "faces.csv", rows_from(sample, 30))
    (tmp_path / "s.json").write_text('{"name": "s", "kind": "single", "data": {"path": "faces.csv", "split": "random"}}')
    data, splits = load_for_spec(load_spec(tmp_path / "s.json"))
    assert len(data) == 210 and splits.sizes()["Training"] > 0


def test_six_class_spec_drops_disgust_from_data():
    spec = load_spec(ROOT / "trees" / "moravcik_no_disgust.json")
    data, splits = load_for_spec(spec)
    assert data.classes == spec.classes and len(data) == 1750 - 250


@pytest.mark.slow  # reads all 35,887 faces
@pytest.mark.skipif(not FULL_FER2013.exists(), reason="full FER2013 not available")
def test_full_fer2013_split_sizes():
    spec = parse_spec({"name": "f", "kind": "single", "data": {"validation": {"from": "PublicTest", "fraction": 1.0}}})
    data, splits = load_for_spec(with_overrides(spec, data=str(FULL_FER2013)))
    assert len(data) == 35887
    assert splits.sizes() == {"Training": 28709, "Validation": 3589, "PrivateTest": 3589}
    train_counts = np.bincount(data.labels[splits.train]).tolist()
    assert train_counts == [3995, 436, 4097, 7215, 4830, 3171, 4965]
    assert np.bincount(data.labels[data.splits == "PrivateTest"]).tolist() == [491, 55, 528, 879, 594, 416, 626]
