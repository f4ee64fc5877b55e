"""Loading faces: FER2013 CSVs (plain or gzip), image folders, the bundled sample.

Everything is loaded to grey 48x48 ``uint8`` images with integer labels, a split name per
image (FER2013's ``Usage`` or a top-level folder) and a name per image (a CSV line or a file
path, used for grouped K-fold). Parsed files are cached as ``.npz`` keyed by the source's
size, mtime and a hash of its first and last MiB, so a second load is a memory copy.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from ..errors import CnnTreeError
from ..files import open_regular, write_atomically
from .faces import FaceData
from .labels import relabel
from .readers import read_csv, read_folder, walk_two_levels
from .splits import Splits, make_splits

SAMPLE_PATH = Path(__file__).resolve().parents[1] / "sample" / "fer2013_sample.csv.gz"
_CACHE_VERSION = 2


def cache_dir() -> Path:
    """Where parsed data is cached: ``$CNNTREE_CACHE`` or ``~/.cache/cnntree``."""
    return Path(os.environ.get("CNNTREE_CACHE") or Path.home() / ".cache" / "cnntree")


def load_faces(path: str | os.PathLike, skip_bad: bool = False, cache: bool = True) -> FaceData:
    """Load a FER2013 CSV (``.csv`` or ``.csv.gz``), an image folder, or ``"sample"``."""
    path = SAMPLE_PATH if str(path) == "sample" else Path(path)
    if not path.exists():
        raise CnnTreeError(f"{path}: no such file or folder")
    if path.is_dir():
        reader, key_source = read_folder, _folder_fingerprint(path)
    elif not path.is_file():
        open_regular(path, "data file").close()  # a FIFO, a device: refused with its own words
    elif path.name.lower().endswith((".csv", ".csv.gz", ".gz")):
        reader, key_source = read_csv, _file_fingerprint(path)
    else:
        raise CnnTreeError(f"{path}: unsupported data source (expected a .csv, .csv.gz or an image folder)")
    if not cache:
        return reader(path, skip_bad)
    key = hashlib.sha1(f"{_CACHE_VERSION}|{path.resolve()}|{key_source}|{skip_bad}".encode()).hexdigest()[:20]
    cached = cache_dir() / f"{path.name}-{key}.npz"
    if cached.exists():
        try:
            return _read_cache(cached, str(path))
        except Exception:  # noqa: BLE001 - numpy and zipfile raise many types for a damaged file
            cached.unlink(missing_ok=True)  # a damaged cache is rebuilt, never trusted
    data = reader(path, skip_bad)
    _write_cache(cached, data)
    return data


def dataset_name(path) -> str:
    """A data set's name for the MLflow experiment its runs share: ``fer2013-sample`` for the bundled
    sample, else the file or folder name with a digest of its contents (a copy of the same file
    under another path lands in the same experiment; an edited one does not)."""
    path = SAMPLE_PATH if str(path) == "sample" else Path(path)
    if path == SAMPLE_PATH:
        return "fer2013-sample"
    if path.is_dir():
        fingerprint = _folder_fingerprint(path)
    else:
        size, _, content = _file_fingerprint(path).split("|")  # not its modification time
        fingerprint = f"{size}|{content}"
    stem = path.name.removesuffix(".gz").removesuffix(".csv") or "data"
    return f"{stem}-{hashlib.sha1(fingerprint.encode()).hexdigest()[:8]}"


def _file_fingerprint(path: Path) -> str:
    digest = hashlib.sha1()
    with open_regular(path, "data file") as f:
        stat = os.fstat(f.fileno())
        digest.update(f.read(1 << 20))
        if stat.st_size > 2 << 20:
            f.seek(-(1 << 20), os.SEEK_END)
            digest.update(f.read())
    return f"{stat.st_size}|{stat.st_mtime_ns}|{digest.hexdigest()}"


def _folder_fingerprint(path: Path) -> str:
    digest = hashlib.sha1()
    for file in sorted(walk_two_levels(path)):
        stat = file.stat()
        digest.update(f"{file.relative_to(path)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _read_cache(cached: Path, source: str) -> FaceData:
    """The cached faces, checked as a reader's output would be: anything else is a damaged cache."""
    with np.load(cached, allow_pickle=False) as z:
        data = FaceData(images=z["images"], labels=z["labels"], classes=tuple(z["classes"].tolist()),
                        splits=z["splits"], names=z["names"], source=source,
                        skipped=tuple(z["skipped"].tolist()), resized=int(z["resized"]))
    n = len(data.labels)
    if (data.images.dtype != np.uint8 or data.images.shape[1:] != (48, 48) or len(data.images) != n
            or len(data.splits) != n or len(data.names) != n or data.labels.dtype.kind not in "iu"
            or (n and not 0 <= data.labels.min() <= data.labels.max() < len(data.classes))):
        raise ValueError(f"{cached}: inconsistent cache")
    return data


def _write_cache(cached: Path, data: FaceData) -> None:
    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, images=data.images, labels=data.labels, classes=np.array(data.classes),
                     splits=data.splits, names=data.names, skipped=np.array(data.skipped, dtype=str),
                     resized=data.resized)

    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(cached, write)
    except (OSError, CnnTreeError):
        pass  # a cache folder that cannot be written only costs speed


def load_for_spec(spec) -> tuple[FaceData, Splits]:
    """The spec's data (its path and skip_bad, overrides included), relabelled to its classes and split."""
    cfg = spec.data
    data = load_faces(spec.data_path(), skip_bad=cfg["skip_bad"])
    data = relabel(data, spec.classes, cfg["drop"], cfg["label_map"])
    return data, make_splits(data, cfg["split"], cfg["validation"])
