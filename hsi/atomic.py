"""Crash-safe writes: every file goes to a temporary name in its own directory, is flushed to the disk (``fsync``)
and renamed into place, and the directory is flushed too, so that after a crash or power loss the name holds the
old file or the whole new one. A writer killed before the rename leaves its temporary file (``.NAME.tmp-*``):
the next run that claims the folder removes it (:func:`hsi.claim.remove_leftovers`)."""
from __future__ import annotations

import errno
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success, remove it on failure."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{secrets.token_hex(4)}{path.suffix}")
    try:
        yield tmp
        replace_durably(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.filename is None:        # written through a file object: say which file failed
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def replace_durably(source: str | Path, target: str | Path) -> None:
    """``os.replace(source, target)`` once ``source`` is on the disk, then flush ``target``'s directory."""
    _fsync(source)
    os.replace(source, target)
    if os.name == "posix":          # a directory cannot be opened for fsync on Windows
        try:
            _fsync(Path(target).parent, os.O_DIRECTORY)
        except OSError as exc:
            if exc.errno != errno.EINVAL:       # a file system without directory fsync
                raise


def _fsync(path: str | Path, flags: int = 0) -> None:
    fd = os.open(path, os.O_RDONLY | flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def write_json_atomic(path: str | Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2) + "\n")
