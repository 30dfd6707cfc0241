"""One writer per output: a run folder, a comparison folder or a map prefix is claimed by an exclusive lock before
anything is written into it, so a second ``hsi train / compare / predict --out SAME`` started meanwhile stops with
one error instead of replacing the first one's files.

The lock is an operating-system lock (``flock``, ``msvcrt.locking`` on Windows) on a lock file: the system drops it
when its process ends, however it ends, so a killed run never leaves its folder locked. The lock file is removed
when the claim ends; a claimer checks that the file it locked is still the one at the path (another claimer may
have removed it in between).
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import ConfigError

try:
    import fcntl
except ImportError:             # Windows
    fcntl = None  # type: ignore[assignment]
    import msvcrt

LOCK_NAME = ".hsi.lock"


def lock_path(target: Path, folder: bool = True) -> Path:
    """The lock file of an output: ``FOLDER/.hsi.lock`` for a folder, ``.NAME.lock`` beside a file prefix."""
    return target / LOCK_NAME if folder else target.parent / f".{target.name}.lock"


@contextmanager
def claim(target: Path | str, *, folder: bool = True) -> Iterator[Path]:
    """Hold ``target`` (a folder, created if missing, or a file prefix) for this process until the block ends;
    another holder is one :class:`~hsi.errors.ConfigError`."""
    target = Path(target)
    (target if folder else target.parent).mkdir(parents=True, exist_ok=True)
    path = lock_path(target, folder)
    while True:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
        if not _try_lock(fd):
            os.close(fd)
            raise ConfigError(f"{target} is being written by another hsi process (it holds {path}); wait for it "
                              f"to end or choose another --out")
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)            # the previous holder removed the file after we opened it: lock the new one
    try:
        yield target
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def remove_leftovers(folder: Path, pattern: str) -> list[Path]:
    """Remove what killed writers left in ``folder`` under names matching ``pattern`` (temporary files and
    folders, see :mod:`hsi.atomic`); call it only while holding the claim on what writes them. Returns them."""
    found = sorted(Path(folder).glob(pattern))
    for path in found:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return found


def _try_lock(fd: int) -> bool:
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True
