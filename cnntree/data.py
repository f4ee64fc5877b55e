"""Faces in, arrays out: FER2013 CSVs (plain or gzip), image folders, the bundled sample.

Everything is loaded to grey 48x48 ``uint8`` images with integer labels, a split name per
image (FER2013's ``Usage`` or a top-level folder) and a name per image (a CSV line or a file
path, used for grouped K-fold). Parsed files are cached as ``.npz`` keyed by the source's
size, mtime and a hash of its first and last MiB, so a second load is a memory copy.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .errors import CnnTreeError
from .files import open_regular, read_limited, write_atomically
from .schema import did_you_mean
from .spec import FER2013_CLASSES

SIZE = 48
PIXELS = SIZE * SIZE
SAMPLE_PATH = Path(__file__).parent / "sample" / "fer2013_sample.csv.gz"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".tif", ".tiff", ".webp"}
_CACHE_VERSION = 2
MAX_DATA_BYTES = int(os.environ.get("CNNTREE_MAX_DATA_BYTES", 2 << 30))  # a CSV, decompressed: FER2013 is 0.3 GiB
MAX_IMAGE_BYTES = 64 << 20
MAX_IMAGE_PIXELS = 50_000_000  # a 50-megapixel photo; a header declaring more is refused before decoding
_CHUNK_ROWS = 2048


@dataclass(frozen=True)
class FaceData:
    """Images with labels; ``labels`` index ``classes``, ``splits`` names each image's split."""

    images: np.ndarray  # (n, 48, 48) uint8
    labels: np.ndarray  # (n,) int64
    classes: tuple[str, ...]
    splits: np.ndarray  # (n,) str: "Training", "PublicTest", ... or "" when the source has none
    names: np.ndarray  # (n,) str: "line 17" or a path relative to the data folder
    source: str = ""
    skipped: tuple[str, ...] = field(default=(), compare=False)  # messages of skipped bad inputs
    resized: int = field(default=0, compare=False)  # images that were not 48x48 (read, and resized)

    def __len__(self):
        return len(self.labels)

    def subset(self, index) -> "FaceData":
        return replace(self, images=self.images[index], labels=self.labels[index],
                       splits=self.splits[index], names=self.names[index])

    def counts(self) -> dict[str, int]:
        return {c: int(n) for c, n in zip(self.classes, np.bincount(self.labels, minlength=len(self.classes)))}


def cache_dir() -> Path:
    return Path(os.environ.get("CNNTREE_CACHE") or Path.home() / ".cache" / "cnntree")


def load_faces(path: str | os.PathLike, skip_bad: bool = False, cache: bool = True) -> FaceData:
    """Load a FER2013 CSV (``.csv`` or ``.csv.gz``), an image folder, or ``"sample"``."""
    path = SAMPLE_PATH if str(path) == "sample" else Path(path)
    if not path.exists():
        raise CnnTreeError(f"{path}: no such file or folder")
    if path.is_dir():
        reader, key_source = _read_folder, _folder_fingerprint(path)
    elif path.name.lower().endswith((".csv", ".csv.gz", ".gz")):
        reader, key_source = _read_csv, _file_fingerprint(path)
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
    for file in sorted(_walk_two_levels(path)):
        stat = file.stat()
        digest.update(f"{file.relative_to(path)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _read_cache(cached: Path, source: str) -> FaceData:
    with np.load(cached, allow_pickle=False) as z:
        return FaceData(images=z["images"], labels=z["labels"], classes=tuple(z["classes"].tolist()),
                        splits=z["splits"], names=z["names"], source=source,
                        skipped=tuple(z["skipped"].tolist()), resized=int(z["resized"]))


def _write_cache(cached: Path, data: FaceData) -> None:
    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, images=data.images, labels=data.labels, classes=np.array(data.classes),
                     splits=data.splits, names=data.names, skipped=np.array(data.skipped, dtype=str),
                     resized=data.resized)

    try:
        write_atomically(cached, write)
    except OSError:
        pass  # a read-only cache folder only costs speed


# ---------------------------------------------------------------------------- CSV


def _read_csv(path: Path, skip_bad: bool) -> FaceData:
    try:
        with open_regular(path, "data file", None if path.name.lower().endswith(".gz") else MAX_DATA_BYTES) as f:
            if path.name.lower().endswith(".gz"):
                with gzip.GzipFile(fileobj=f) as unzipped:
                    raw = read_limited(unzipped, MAX_DATA_BYTES, str(path), "decompressed data")
            else:
                raw = f.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise CnnTreeError(f"{path}: truncated or corrupt gzip file ({error})") from None
    except OSError as error:
        raise CnnTreeError(f"{path}: cannot read ({error.strerror or error})") from None
    lines = raw.split(b"\n")
    del raw
    header = [h.strip().strip(b'"').decode("utf-8", "replace").lower() for h in lines[0].split(b",")]
    columns = {}
    for name in ("emotion", "pixels", "usage"):
        if name in header:
            columns[name] = header.index(name)
        elif name != "usage":
            raise CnnTreeError(f"{path}: line 1: missing column \"{name}\" (header is {','.join(header)})")
    bad: dict[int, str] = {}  # line number -> reason
    rows = []  # (line number, emotion, pixel bytes, usage)
    width = len(header)
    for number, line in enumerate(lines[1:], start=2):
        line = line.strip()
        if not line:
            continue
        parts = line.split(b",")
        if len(parts) != width:
            bad[number] = f"expected {width} comma-separated fields, got {len(parts)}"
            continue
        code = parts[columns["emotion"]].strip().strip(b'"')
        if not code.isdigit() or int(code) >= len(FER2013_CLASSES):
            bad[number] = f"unknown emotion code {code.decode('utf-8', 'replace')!r} (expected 0-6)"
            continue
        usage = parts[columns["usage"]].strip().strip(b'"').decode("utf-8", "replace") if "usage" in columns else ""
        rows.append((number, int(code), parts[columns["pixels"]].strip().strip(b'"'), usage))
    del lines
    images = np.empty((len(rows), SIZE, SIZE), np.uint8)
    for start in range(0, len(rows), _CHUNK_ROWS):
        chunk = rows[start:start + _CHUNK_ROWS]
        values, problems = _parse_pixels([r[2] for r in chunk])
        for offset, reason in problems.items():
            bad[chunk[offset][0]] = reason
        images[start:start + len(chunk)] = values
    keep = np.array([r[0] not in bad for r in rows], bool)
    if bad:
        first = min(bad)
        if not skip_bad:
            raise CnnTreeError(f"{path}: line {first}: {bad[first]} (use --skip-bad to skip bad rows)")
    if not keep.any():
        raise CnnTreeError(f"{path}: no usable rows")
    return FaceData(
        images=images[keep],
        labels=np.array([r[1] for r in rows], np.int64)[keep],
        classes=FER2013_CLASSES,
        splits=np.array([r[3] for r in rows], dtype=str)[keep],
        names=np.array([f"line {r[0]}" for r in rows], dtype=str)[keep],
        source=str(path),
        skipped=tuple(f"line {n}: {bad[n]}" for n in sorted(bad)),
    )


def _parse_pixels(fields: list[bytes]) -> tuple[np.ndarray, dict[int, str]]:
    """Parse rows of space-separated 0-255 integers at once (vectorised, no Python loop per value).

    Returns the (rows, 48, 48) images and {row offset: reason} for rows that are not exactly
    2304 integers in 0..255; those rows' images are left zero.
    """
    buffer = b" ".join(fields) + b" "
    a = np.frombuffer(buffer, np.uint8)
    row_starts = np.zeros(len(fields) + 1, np.int64)
    row_starts[1:] = np.cumsum([len(f) + 1 for f in fields])
    digit = (a - 48) < 10  # uint8 arithmetic wraps, so this is 48 <= a <= 57
    problems: dict[int, str] = {}
    junk = ~digit & (a != 32) & (a != 9)
    if junk.any():
        for row in np.unique(np.searchsorted(row_starts, np.flatnonzero(junk), "right") - 1):
            text = fields[row][:40].decode("utf-8", "replace")
            problems[int(row)] = f"non-numeric pixel values ({text!r}...)"
    changes = np.flatnonzero(np.diff(digit.view(np.int8), prepend=np.int8(0)))
    starts, ends = changes[0::2], changes[1::2]  # ends: one past each number's last digit
    length = ends - starts

    def digit_at(offset, min_length):
        return (a[ends - offset].astype(np.int16) - 48) * (length >= min_length)

    values = digit_at(1, 1) + 10 * digit_at(2, 2) + 100 * digit_at(3, 3)
    per_row = np.diff(np.searchsorted(starts, row_starts))
    for row in np.flatnonzero(per_row != PIXELS):
        problems.setdefault(int(row), f"{per_row[row]} pixel values, expected {PIXELS} (48x48)")
    too_big = (length > 3) | (values > 255)
    if too_big.any():
        for row in np.unique(np.searchsorted(row_starts, starts[too_big], "right") - 1):
            problems.setdefault(int(row), "pixel value above 255")
    images = np.zeros((len(fields), PIXELS), np.uint8)
    good = np.ones(len(fields), bool)
    good[list(problems)] = False
    images[good] = values[np.repeat(good, per_row)].reshape(-1, PIXELS)
    return images.reshape(-1, SIZE, SIZE), problems


# ---------------------------------------------------------------------------- folders


def _walk_two_levels(root: Path):
    """Image candidates at <class>/<file> or <split>/<class>/<file>; hidden names ignored."""
    for first in sorted(root.iterdir()):
        if first.name.startswith("."):
            continue
        if first.is_dir():
            for second in sorted(first.iterdir()):
                if second.name.startswith("."):
                    continue
                if second.is_dir():
                    yield from (f for f in sorted(second.iterdir()) if not f.name.startswith("."))
                else:
                    yield second


def read_face(path) -> tuple[np.ndarray, bool]:
    """One image file as a grey 48x48 face, and whether it had to be resized.

    Only regular files of at most 64 MiB are read, and an image whose header declares more than
    50 megapixels is refused before it is decoded.
    """
    import cv2

    with open_regular(path, "image file", MAX_IMAGE_BYTES) as f:
        buffer = np.frombuffer(f.read(), np.uint8)
    if buffer.size == 0:
        raise CnnTreeError(f"{path}: empty file")
    pixels = _declared_pixels(buffer)
    if pixels > MAX_IMAGE_PIXELS:
        raise CnnTreeError(f"{path}: the image declares {pixels:,} pixels, more than the {MAX_IMAGE_PIXELS:,} "
                           "cnntree decodes")
    image = cv2.imdecode(buffer, cv2.IMREAD_GRAYSCALE)
    if image is None or image.size == 0:
        raise CnnTreeError(f"{path}: unreadable image")
    if image.shape == (SIZE, SIZE):
        return image, False
    return cv2.resize(image, (SIZE, SIZE), interpolation=cv2.INTER_AREA), True


def _declared_pixels(buffer: np.ndarray) -> int:
    """Width x height from the image header (Pillow reads only the header), 0 when it cannot tell."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(buffer.tobytes())) as image:
            return image.width * image.height
    except Exception:  # noqa: BLE001 - not a format Pillow knows: OpenCV decides
        return 0


def _read_folder(root: Path, skip_bad: bool) -> FaceData:
    entries = [e for e in sorted(root.iterdir()) if not e.name.startswith(".")]
    dirs = [e for e in entries if e.is_dir()]
    if not dirs:
        raise CnnTreeError(f"{root}: no class folders (expected <class>/*.png or <split>/<class>/*.png)")
    nested = all(any(s.is_dir() for s in d.iterdir()) for d in dirs)
    groups = [(d.name, c) for d in dirs for c in sorted(d.iterdir()) if c.is_dir() and not c.name.startswith(".")] \
        if nested else [("", d) for d in dirs]
    classes = sorted({folder.name for _, folder in groups})
    images, labels, splits, names, bad, resized = [], [], [], [], [], 0
    for split, folder in groups:
        files = [f for f in sorted(folder.iterdir()) if not f.name.startswith(".") and not f.is_dir()]
        if not files:
            raise CnnTreeError(f"{folder}: empty class folder (no images)")
        for file in files:
            rel = str(file.relative_to(root))
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                bad.append(f"{file}: not an image file (expected {', '.join(sorted(IMAGE_SUFFIXES))})")
                continue
            try:
                image, was_resized = read_face(file)
            except CnnTreeError as error:
                bad.append(str(error))
                continue
            resized += was_resized
            images.append(image)
            labels.append(classes.index(folder.name))
            splits.append(split)
            names.append(rel)
    if bad and not skip_bad:
        raise CnnTreeError(f"{bad[0]} (use --skip-bad to skip bad files)")
    if not images:
        raise CnnTreeError(f"{root}: no readable images")
    empty = [classes[i] for i in sorted(set(range(len(classes))) - set(labels))]
    if empty:
        raise CnnTreeError(f"{root}: class folder \"{empty[0]}\" has no readable images")
    return FaceData(images=np.stack(images), labels=np.array(labels, np.int64), classes=tuple(classes),
                    splits=np.array(splits, dtype=str), names=np.array(names, dtype=str), source=str(root),
                    skipped=tuple(bad), resized=resized)


# ---------------------------------------------------------------------------- classes


def relabel(data: FaceData, classes, drop=(), label_map=None) -> FaceData:
    """Rename or merge source classes (``label_map``), drop some, then index by ``classes``.

    Every remaining source class must be one of ``classes`` and every class must keep at
    least one image: nothing is dropped silently.
    """
    label_map = label_map or {}
    for source_name in list(label_map) + list(drop):
        if source_name not in data.classes and source_name not in label_map.values():
            raise CnnTreeError(f"{data.source}: label map or drop names \"{source_name}\", which is not a class "
                               f"of the data{did_you_mean(source_name, data.classes)}; "
                               f"data classes: {', '.join(data.classes)}")
    mapped = [label_map.get(c, c) for c in data.classes]
    index = {name: i for i, name in enumerate(classes)}
    keep_source = [m not in drop for m in mapped]
    for m, keep in zip(mapped, keep_source):
        if keep and m not in index:
            raise CnnTreeError(f"{data.source}: data class \"{m}\" is not in the spec's classes "
                               f"({', '.join(classes)}); drop it (data.drop) or map it (data.label_map)")
    lookup = np.array([index[m] if k else -1 for m, k in zip(mapped, keep_source)], np.int64)
    new_labels = lookup[data.labels]
    kept = data.subset(new_labels >= 0)
    out = replace(kept, labels=new_labels[new_labels >= 0], classes=tuple(classes))
    empty = [c for c, n in out.counts().items() if n == 0]
    if empty:
        raise CnnTreeError(f"{data.source}: class{'es' if len(empty) > 1 else ''} {', '.join(empty)} "
                           "ha{} no images after the label map and drops".format("ve" if len(empty) > 1 else "s"))
    return out


# ---------------------------------------------------------------------------- splits


@dataclass(frozen=True)
class Splits:
    """Index arrays into a :class:`FaceData` for training, validation and each test split."""

    train: np.ndarray
    validation: np.ndarray
    tests: dict[str, np.ndarray]
    train_name: str = "Training"
    validation_source: str = "Training"

    def sizes(self) -> dict[str, int]:
        return {self.train_name: len(self.train), "Validation": len(self.validation),
                **{name: len(idx) for name, idx in self.tests.items()}}


def make_splits(data: FaceData, split: dict, validation: dict) -> Splits:
    """Apply a spec's ``data.split`` scheme and its ``data.validation`` carve-out."""
    scheme = split["scheme"]
    if scheme == "usage":
        named = _usage_splits(data, split)
        train_name = split["train"]
    else:
        rng_seed = split["seed"]
        if scheme == "random":
            train, test = _stratified_fraction(data.labels, np.arange(len(data)), split["test_fraction"], rng_seed,
                                               f"{data.source}: data.split.test_fraction")
        else:
            train, test = _kfold(data, split)
        named = {"Training": train, "Test": test}
        train_name = "Training"
    source = validation["from"]
    if source not in named:
        raise CnnTreeError(f"data.validation.from: \"{source}\" is not a split of this data"
                           f"{did_you_mean(source, named)}; splits: {', '.join(named)}")
    rest, val = _stratified_fraction(data.labels, named[source], validation["fraction"], 12345,
                                     "data.validation.fraction")
    named[source] = rest
    tests = {k: v for k, v in named.items() if k != train_name and len(v)}
    return Splits(train=named[train_name], validation=val, tests=tests, train_name=train_name,
                  validation_source=source)


def _usage_splits(data: FaceData, split: dict) -> dict[str, np.ndarray]:
    present = sorted(set(data.splits.tolist()) - {""})
    if not present:
        raise CnnTreeError(f"{data.source}: the data has no split column or split folders; "
                           "use data.split.scheme \"random\" or \"kfold\"")
    wanted = [split["train"], *split["test"]]
    for name in wanted:
        if name not in present:
            raise CnnTreeError(f"{data.source}: data.split names split \"{name}\", which the data does not have"
                               f"{did_you_mean(name, present)}; splits: {', '.join(present)}")
    named = {name: np.flatnonzero(data.splits == name) for name in wanted}
    if not len(named[split["train"]]):
        raise CnnTreeError(f"{data.source}: split \"{split['train']}\" is empty")
    return named


def _stratified_fraction(labels, index, fraction, seed, where):
    """Split ``index`` into (rest, slice) with ``fraction`` of every class in the slice."""
    if fraction >= 1.0:
        return index[:0], index
    rng = np.random.default_rng(seed)
    picked = []
    for cls in np.unique(labels[index]):
        members = index[labels[index] == cls]
        n = int(round(fraction * len(members)))
        picked.append(rng.permutation(members)[:n])
    chosen = np.sort(np.concatenate(picked)) if picked else index[:0]
    if len(chosen) == 0 or len(chosen) == len(index):
        raise CnnTreeError(f"{where}: {fraction} of {len(index)} images leaves an empty part")
    return np.setdiff1d(index, chosen), chosen


def _kfold(data: FaceData, split: dict):
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    k, fold = split["folds"], split["fold"]
    if fold >= k:
        raise CnnTreeError(f"data.split.fold: {fold} is out of range for {k} folds (0..{k - 1})")
    groups = subject_groups(data.names, split["group_regex"]) if split["group_regex"] else None
    if groups is not None and len(set(groups)) < k:
        raise CnnTreeError(f"data.split.folds: {k} folds but only {len(set(groups))} subjects (groups) in the data")
    smallest = min(data.counts().items(), key=lambda kv: kv[1])
    if smallest[1] < k:
        raise CnnTreeError(f"data.split.folds: {k} folds but class \"{smallest[0]}\" has only {smallest[1]} images")
    if groups is not None:
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=split["seed"])
        folds = list(splitter.split(np.zeros(len(data)), data.labels, groups))
    else:
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=split["seed"])
        folds = list(splitter.split(np.zeros(len(data)), data.labels))
    return folds[fold]


def subject_groups(names, regex: str) -> np.ndarray:
    """The subject id of each image: the regex's first group (or whole match) on its file name."""
    pattern = safe_regex(regex, "group regex")
    out = []
    for name in names:
        match = pattern.search(os.path.basename(str(name)))
        if not match:
            raise CnnTreeError(f"{name}: group regex {regex!r} does not match this file name")
        out.append(match.group(1) if pattern.groups else match.group(0))
    return np.array(out, dtype=str)


def safe_regex(regex: str, what: str) -> re.Pattern:
    """``regex`` compiled, refused when it could backtrack for minutes: an unbounded repetition that
    contains another repetition or an alternation (``(a+)+``, ``(a|aa)*``) is exponential on
    unlucky file names, and Python's ``re`` has no time limit."""
    try:
        from re import _constants as c, _parser as parser
    except ImportError:  # Python 3.10
        import sre_constants as c
        import sre_parse as parser

    if len(regex) > 500:
        raise CnnTreeError(f"{what} {regex[:40]!r}...: longer than 500 characters")
    try:
        pattern = re.compile(regex)
        tree = parser.parse(regex)
    except (re.error, RecursionError, OverflowError) as error:
        raise CnnTreeError(f"{what} {regex!r}: invalid ({error})") from None
    repeats = tuple(getattr(c, name) for name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") if hasattr(c, name))

    def risky(items, inside_unbounded: bool) -> bool:
        for op, arg in items:
            if op in repeats:
                low, high, body = arg
                unbounded = high == c.MAXREPEAT or high > 100
                if unbounded and inside_unbounded or risky(body, inside_unbounded or unbounded):
                    return True
            elif op == c.BRANCH:
                if inside_unbounded or any(risky(branch, inside_unbounded) for branch in arg[1]):
                    return True
            elif op == c.SUBPATTERN:
                if risky(arg[-1], inside_unbounded):
                    return True
            elif op in (c.ASSERT, c.ASSERT_NOT) and risky(arg[1], inside_unbounded):
                return True
        return False

    if risky(tree, False):
        raise CnnTreeError(f"{what} {regex!r}: a repetition inside a repetition or alternation can take "
                           "exponential time; simplify it (e.g. ^(S\\d+)_)")
    return pattern


def load_for_spec(spec, path=None, skip_bad: bool | None = None) -> tuple[FaceData, Splits]:
    """The spec's data (or ``path`` instead), relabelled to its classes and split."""
    cfg = spec.data
    source = str(path) if path is not None else spec.data_path()
    data = load_faces(source, skip_bad=cfg["skip_bad"] if skip_bad is None else skip_bad)
    data = relabel(data, spec.classes, cfg["drop"], cfg["label_map"])
    return data, make_splits(data, cfg["split"], cfg["validation"])
