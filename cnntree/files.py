"""Files: bounded reads of regular files, atomic writes, folders cnntree owns, and locks.

The guarantees of ``docs/errors.md`` live here: input is read only from regular files and only up
to a size limit (a FIFO, a device or ``/dev/zero`` is refused at once); a file or folder appears
under its final name only once complete, and replacing a folder is one atomic exchange; cnntree
deletes or replaces only folders that carry its marker file, so no name a user writes can make it
delete anything it did not create.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path

from .errors import CnnTreeError

MARKER = ".cnntree"  # {"cnntree": kind} in every folder cnntree creates and may later replace or delete


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024


# ---------------------------------------------------------------------------- bounded reads


def open_regular(path, what: str, limit: int | None = None):
    """``path`` opened for binary reading, refused unless it is a regular file of at most ``limit`` bytes.

    It is opened non-blocking and checked on the open descriptor, so a FIFO or device is refused
    without waiting for a writer and without a race between the check and the read.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise CnnTreeError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise CnnTreeError(f"{path}: is a folder, not a {what}") from None
    except OSError as error:
        raise CnnTreeError(f"{path}: cannot read {what} ({error.strerror or error})") from None
    info = os.fstat(fd)
    problem = ("is a folder, not a " + what if stat.S_ISDIR(info.st_mode) else
               f"not a regular file (a FIFO, device or socket); give a {what}" if not stat.S_ISREG(info.st_mode) else
               f"{_size(info.st_size)}, more than the {_size(limit)} a {what} may have" if limit and info.st_size > limit
               else None)
    if problem:
        os.close(fd)
        raise CnnTreeError(f"{path}: {problem}")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_limited(stream, limit: int, where: str, what: str) -> bytes:
    """At most ``limit`` bytes from ``stream`` (a decompressing one too); more is an error, not a hang."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise CnnTreeError(f"{where}: more than {_size(limit)} of {what}; cnntree reads at most that")
    return data


def check_regular_input(path, what: str) -> Path:
    """For readers that need a path (OpenCV's video decoder): an existing regular file, else one line."""
    with open_regular(path, what):
        return Path(path)


# ---------------------------------------------------------------------------- atomic writes


def _share(path: Path, folder: bool = False) -> None:
    """Temporary files are private (0600/0700); what is published gets the user's umask like any file."""
    os.chmod(path, (0o777 if folder else 0o666) & ~_UMASK)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path`` (same suffix); rename it to ``path`` if the block succeeds.

    On any exception (an interrupt included) the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    check_output_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix="".join(path.suffixes))
    os.close(fd)
    try:
        yield Path(tmp)
        _share(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_atomically(path, write) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it to ``path``."""
    with atomic_path(path) as tmp:
        write(str(tmp))
    return Path(path)


def write_text_atomically(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_atomically(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def check_output_file(path, option: str = "") -> Path:
    """Fail before any work when ``path`` cannot become a file: a folder or a special file stands
    there, or a file stands where a parent folder must be."""
    path = Path(path)
    name = f"{option} {path}" if option else str(path)
    if path.is_dir():
        raise CnnTreeError(f"{name}: is a folder; give a file name")
    if path.exists() and not path.is_file():
        raise CnnTreeError(f"{name}: not a regular file; give a file name")
    missing = []
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise CnnTreeError(f"{name}: {parent} is a file, not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise CnnTreeError(f"{name}: cannot write in {parent} (permission denied)")
            break
        missing.append(parent)
    _probe_folders(missing[::-1], name)
    return path


def _probe_folders(folders: list[Path], name: str) -> None:
    """Fail now if the missing ``folders`` (outermost first) cannot be created (under ``/proc``, on a
    read-only file system), by creating them and removing them again."""
    made = []
    try:
        for folder in folders:
            folder.mkdir()
            made.append(folder)
    except OSError as error:
        raise CnnTreeError(f"{name}: cannot create the folder {folder} ({error.strerror or error})") from None
    finally:
        for folder in reversed(made):
            with contextlib.suppress(OSError):
                folder.rmdir()


# ---------------------------------------------------------------------------- folders cnntree owns


def mark(folder, kind: str) -> None:
    """Claim ``folder`` as one cnntree made (a work folder, a model, an export)."""
    Path(folder, MARKER).write_text(json.dumps({"cnntree": kind}) + "\n", encoding="utf-8")


def marked(folder) -> str | None:
    """The kind a cnntree marker in ``folder`` names, or None (no marker, a symlink, unreadable)."""
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        return None
    try:
        with open_regular(folder / MARKER, "marker", 4096) as f:
            return str(json.loads(f.read())["cnntree"])
    except (CnnTreeError, ValueError, KeyError, TypeError):
        return None


def check_output_folder(folder, kinds: tuple[str, ...], option: str = "--out") -> Path:
    """Fail before any work unless ``folder`` may be written: new, empty, or a cnntree folder of
    one of ``kinds``. Never the current folder or one of its parents."""
    folder = Path(folder)
    name = f"{option} {folder}"
    here = Path.cwd().resolve()
    if folder.exists() or folder.is_symlink():
        if folder.is_symlink() or not folder.is_dir():
            raise CnnTreeError(f"{name}: exists and is not a folder; cnntree writes a new folder there")
        if folder.resolve() == here or folder.resolve() in here.parents:
            raise CnnTreeError(f"{name}: is the current folder or one of its parents; give a new folder name")
        if any(folder.iterdir()) and marked(folder) not in kinds:
            raise CnnTreeError(f"{name}: exists and is not a cnntree {' or '.join(kinds)} folder (no {MARKER} "
                               "marker); cnntree replaces only folders it wrote: give a new folder name")
    check_output_file(folder / MARKER, option)
    return folder


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_cwd, exchange = -100, 2
    return renameat2(at_cwd, os.fsencode(a), at_cwd, os.fsencode(b), exchange) == 0


def replace_folder(tmp: Path, target: Path) -> Path:
    """Publish the complete folder ``tmp`` as ``target``. An existing ``target`` is exchanged with it
    atomically, so a kill at any instant leaves the old or the new folder under the name; where the
    filesystem cannot exchange, the old folder is set aside first and :func:`recover_folder` puts
    it back if a kill came between the two renames."""
    _share(tmp, folder=True)
    if not target.exists():
        os.replace(tmp, target)
    elif _exchange(tmp, target):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old folder
    else:
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    return target


def recover_folder(target) -> None:
    """Put back a folder that :func:`replace_folder` had set aside when it was killed mid-way."""
    target = Path(target)
    if target.exists() or not target.parent.is_dir():
        return
    prefix = f".{target.name}.old-"  # compared as text: a name may hold glob characters
    aside = [p for p in target.parent.iterdir() if p.name.startswith(prefix) and marked(p)]
    aside.sort(key=lambda p: p.stat().st_mtime)
    if aside:
        os.replace(aside[-1], target)


@contextlib.contextmanager
def new_folder_beside(target: Path, kind: str):
    """A temporary marked folder beside ``target`` that :func:`replace_folder` can publish; removed
    if the block fails."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        mark(tmp, kind)
        yield tmp
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def remove_marked(folder, kinds: tuple[str, ...], what: str) -> None:
    """Delete ``folder`` if cnntree made it (a marker of one of ``kinds``); an empty folder is
    simply reused; anything else is refused with one line and left as it is."""
    folder = Path(folder)
    if not folder.exists() and not folder.is_symlink():
        return
    if marked(folder) in kinds:
        shutil.rmtree(folder)
    elif folder.is_symlink() or not folder.is_dir() or any(folder.iterdir()):
        raise CnnTreeError(f"{folder}: not a cnntree {what} (no {MARKER} marker); cnntree deletes only folders "
                           "it made: give another folder")


# ---------------------------------------------------------------------------- locks


def lock_file(path, wait: bool):
    """An exclusive lock on the file ``path``, held while the returned handle lives; None when
    another process holds it and ``wait`` is False. The operating system drops it when the process
    dies, so a killed run never leaves a stale lock."""
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        handle.close()
        return None
    return handle


def try_lock(folder) -> object | None:
    """The lock of ``folder`` (a lock file beside it), or None when another process holds it."""
    folder = Path(folder)
    return lock_file(folder.parent / f".{folder.name}.lock", wait=False)
