"""Readers: a FER2013 CSV (plain or gzip, parsed without a Python loop per pixel) and an image
folder, each into grey 48x48 faces; every read bounded (see :mod:`cnntree.files`)."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from ..errors import CnnTreeError
from ..files import open_regular, read_limited
from ..spec import FER2013_CLASSES
from .faces import FaceData

SIZE = 48  # every face is SIZE x SIZE grey pixels
PIXELS = SIZE * SIZE
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".tif", ".tiff", ".webp"}
MAX_DATA_BYTES = 2 << 30  # a CSV, decompressed: FER2013 is 0.3 GiB
MAX_IMAGE_BYTES = 64 << 20
MAX_IMAGE_PIXELS = 50_000_000  # a 50-megapixel photo; a header declaring more is refused before decoding
_CHUNK_ROWS = 2048


def read_csv(path: Path, skip_bad: bool) -> FaceData:
    """A FER2013 CSV (``.csv`` or ``.csv.gz``) as FaceData; bad rows are errors naming their line unless ``skip_bad``."""
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


def walk_two_levels(root: Path):
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
    """One image file as a grey 48x48 face, and whether it had to be resized."""
    import cv2

    image = read_grey(path)
    if image.shape == (SIZE, SIZE):
        return image, False
    return cv2.resize(image, (SIZE, SIZE), interpolation=cv2.INTER_AREA), True


def read_grey(path) -> np.ndarray:
    """One image file, grey, at its own size.

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
    return image


def _declared_pixels(buffer: np.ndarray) -> int:
    """Width x height from the image header (Pillow reads only the header), 0 when it cannot tell."""
    import io
    import warnings

    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # cnntree applies its own bound, with its own message
    try:
        with warnings.catch_warnings(), Image.open(io.BytesIO(buffer.tobytes())) as image:
            warnings.simplefilter("ignore")
            return image.width * image.height
    except Exception:  # noqa: BLE001 - not a format Pillow knows: OpenCV decides
        return 0


def read_folder(root: Path, skip_bad: bool) -> FaceData:
    """An image folder (``<class>/*`` or ``<split>/<class>/*``) as FaceData; bad files are errors unless ``skip_bad``."""
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
