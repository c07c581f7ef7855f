"""The outputs of a command: files and folders written atomically, so a crash never leaves a
truncated file or a half-written folder; run folders locked while a process trains in them;
outputs checked before the work that makes them, so none replaces an input or an earlier result
by surprise."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator


class OutputError(ValueError):
    """An output path is refused before any work: it is a folder, an input of the same command,
    an existing file (without ``overwrite``), or a run folder in use or holding another run."""


# The temporary file of an atomic write is ``.<name>.<pid>.<random>.tmp`` beside its target: a
# process killed mid-write (SIGKILL, power loss) leaves one, and the next write of the same
# target removes it once its process is gone.
_TMP_PATTERN = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[^.]+\.tmp$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temporaries(folder: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Delete the temporary files and folders (see :func:`atomic_folder`) that killed processes
    left in ``folder`` (of target ``name`` only, if given); returns them."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for tmp in folder.glob(".*.tmp"):
        match = _TMP_PATTERN.match(tmp.name)
        if match and (name is None or match["name"] == name) and not _pid_alive(int(match["pid"])):
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _debug_kill_during_write(path: Path) -> None:
    """Fault injection for the tests: ``SEMI3_DEBUG_KILL_IN_WRITE=<file name>[:<n>]`` SIGKILLs this
    process during the n-th (default first) atomic write of that file, after the temporary file
    is written and before it replaces the target (for a folder, :func:`atomic_folder`: after the
    earlier folder is renamed aside, before the new one is renamed in)."""
    spec = os.environ.get("SEMI3_DEBUG_KILL_IN_WRITE")
    if not spec:
        return
    name, _, nth = spec.partition(":")
    if name != path.name:
        return
    _WRITES[name] = _WRITES.get(name, 0) + 1
    if _WRITES[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


_WRITES: dict[str, int] = {}
_UMASK = os.umask(0)
os.umask(_UMASK)


def _write_error(err: BaseException, path: Path) -> OSError:
    """An OSError naming ``path`` for a failed write (torch's writer raises RuntimeError, and
    a full disk's OSError carries no file name)."""
    free = shutil.disk_usage(path.parent).free
    if isinstance(err, OSError) and err.strerror:
        number, reason = err.errno, err.strerror
    elif free < 2**20:
        number, reason = errno.ENOSPC, os.strerror(errno.ENOSPC)
    else:
        number, reason = errno.EIO, f"write failed ({str(err).splitlines()[0] if str(err) else type(err).__name__})"
    return OSError(number, f"{reason} ({free} bytes free) writing", str(path))


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], *, durable: bool = True) -> Path:
    """Call ``write(handle)`` on a temporary file beside ``path``, fsync, then rename it over
    ``path``.

    ``os.replace`` is atomic on POSIX within one file system, so readers see either the old
    complete file or the new complete file, never a partial one. On any failure (disk full,
    an exception in ``write``) the temporary file is removed and ``path`` is left as it was; a
    failure inside ``write`` that is not an OSError (torch's writer raises RuntimeError on a
    full disk) is raised as an OSError naming ``path``.

    ``durable=False`` skips the fsync: for a cache, whose entries a power loss may lose (they
    are recomputed) as long as no reader ever sees half of one; an fsync per small file would
    cost more than computing it.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(21, "Is a directory (give a file name)", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent, path.name)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp's 0600 would hide results from the other users
        with os.fdopen(fd, "wb") as handle:
            try:
                write(handle)
                handle.flush()
                if durable:
                    os.fsync(handle.fileno())
            except (OSError, RuntimeError) as err:
                if isinstance(err, OSError) and err.filename:
                    raise
                raise _write_error(err, path) from err
        _debug_kill_during_write(path)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode())


# --------------------------------------------------------------------------- folders written as a whole

# While :func:`atomic_folder` swaps a new folder in, the earlier one is renamed aside to
# ``.<name>.<pid>.old``. Not ``.tmp``: a kill between the two renames leaves it the only whole
# copy, which :func:`recover_folder` puts back; :func:`remove_stale_temporaries` never sees it.
_ASIDE_PATTERN = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.old$")


def _is_empty_folder(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


def recover_folder(target: str | os.PathLike) -> list[Path]:
    """Repair what a killed :func:`atomic_folder` left beside ``target``; returns what it restored
    or removed.

    An earlier ``target`` renamed aside is put back if ``target`` is missing (or an empty
    folder), and deleted if a new ``target`` is in place; half-built temporary folders are
    deleted. What a live process left is its own and is left alone.
    """
    target = Path(target)
    touched: list[Path] = []
    if not target.parent.is_dir():
        return touched
    for aside in sorted(target.parent.glob(".*.old")):
        match = _ASIDE_PATTERN.match(aside.name)
        if not match or match["name"] != target.name or _pid_alive(int(match["pid"])):
            continue
        if os.path.lexists(target) and not _is_empty_folder(target):
            shutil.rmtree(aside, ignore_errors=True)  # the swap had finished: this is the replaced folder
        else:
            if target.is_dir():
                target.rmdir()
            os.rename(aside, target)
        touched.append(aside)
    return touched + remove_stale_temporaries(target.parent, target.name)


def _fsync_path(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(folder: Path) -> None:
    """fsync every file and folder under ``folder``: their data is on disk before the rename
    that publishes them (files written by libraries, e.g. Pillow, are not fsynced)."""
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            _fsync_path(os.path.join(dirpath, name))
        _fsync_path(dirpath)


def _swap_in(build: Path, target: Path) -> None:
    """Rename the finished ``build`` to ``target``; an earlier non-empty ``target`` is renamed
    aside first and deleted after (two renames: POSIX cannot swap folders in one)."""
    aside = None
    if os.path.lexists(target) and not _is_empty_folder(target):
        aside = target.parent / f".{target.name}.{os.getpid()}.old"
        os.rename(target, aside)
    _debug_kill_during_write(target)
    try:
        os.replace(build, target)  # onto nothing, or onto an empty folder
    except BaseException:
        if aside is not None:
            os.rename(aside, target)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)  # what is left is the next recover_folder's
    _fsync_path(target.parent)


def _as_target(err: OSError, build: Path, target: Path) -> OSError:
    """``err`` naming the file of ``target`` it was writing, not the temporary folder's (which
    is gone when the user reads the message)."""
    if not err.filename or not Path(os.fsdecode(err.filename)).is_relative_to(build):
        return err
    named = target / Path(os.fsdecode(err.filename)).relative_to(build)
    return OSError(err.errno, err.strerror, str(named))


@contextlib.contextmanager
def atomic_folder(target: str | os.PathLike, *, durable: bool = True) -> Iterator[Path]:
    """Write the folder ``target`` as a whole: yield an empty temporary folder beside it
    (``.<name>.<pid>.<random>.tmp``) to write into; when the block ends without an error, it
    replaces ``target`` (an earlier folder there is deleted).

    Readers see the earlier folder whole or the new one whole, never a mix. An error in the block
    (a full disk's included) removes the temporary folder and leaves ``target`` as it was; a
    full disk's OSError, which names no file, is raised naming ``target``. A process killed
    mid-way leaves its temporary folder, or, between the two renames of the swap, the earlier
    folder renamed aside: the next ``atomic_folder`` (or :func:`recover_folder`) of ``target``
    deletes the one and puts the other back. ``durable`` fsyncs every file before the swap.
    """
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "Not a directory (give a folder)", str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_folder(target)
    build = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent))
    try:
        os.chmod(build, 0o777 & ~_UMASK)  # mkdtemp's 0700 would hide the folder from the other users
        try:
            yield build
            if durable:
                _fsync_tree(build)
        except OSError as err:
            if err.filename is None and err.errno in (errno.ENOSPC, errno.EDQUOT):
                raise _write_error(err, target) from err
            named = _as_target(err, build, target)
            if named is err:
                raise
            raise named from err
        _swap_in(build, target)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise


# --------------------------------------------------------------------------- outputs and run folders

LOCK_FILE = ".semi3.lock"
# What a training run writes to its folder; any of them makes the folder "a run".
RUN_FILES = ("config.yaml", "split.json", "metrics.jsonl", "metrics.csv", "steps.jsonl", "last.pt", "best.pt",
             "embeddings")


def check_output_file(path: str | os.PathLike, *, inputs: Iterable[str | os.PathLike] = (),
                      overwrite: bool = False, what: str = "output") -> Path:
    """Refuse, before any work, an output file that is a folder, is one of the command's
    ``inputs`` (even with ``overwrite``), or already exists (unless ``overwrite``)."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{what} {path} is a directory; give a file name")
    for item in inputs:
        if path.resolve() == Path(item).resolve():
            raise OutputError(f"{what} {path} is an input of this command ({item}); refusing to replace it")
    if path.exists() and not overwrite:
        raise OutputError(f"{what} {path} already exists; pass --overwrite to replace it")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"{what} {path}: {parent} is a file, not a folder")
            break
    return path


def run_files(folder: str | os.PathLike) -> list[str]:
    """The run files (:data:`RUN_FILES`) present in ``folder``."""
    folder = Path(folder)
    return [name for name in RUN_FILES if (folder / name).exists()]


def clear_run_folder(folder: str | os.PathLike) -> None:
    """Delete a run's files from ``folder`` (for ``--overwrite``); other files are kept."""
    folder = Path(folder)
    for name in run_files(folder):
        target = folder / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    remove_stale_temporaries(folder)


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, what: str = "run folder", busy: str = "process {holder} is training in it",
                advice: str = "wait for it to finish or use another train.out_dir") -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` (created if missing) for the block.

    The lock is an OS file lock (``flock``) on ``<folder>/.semi3.lock``: it dies with the
    process, however it ends, so it is never stale. A second process gets an
    :class:`OutputError` naming the holder's PID (``busy`` and ``advice`` word it).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{what} {folder} is a file, not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise OutputError(f"{what} {folder} is in use: {busy.format(holder=holder)} (lock {path}); {advice}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def run_lock(folder: str | os.PathLike) -> contextlib.AbstractContextManager[Path]:
    """:func:`folder_lock` on a training run's folder."""
    return folder_lock(folder)


