"""Fetch a file into the cache with a progress bar, a checksum check and an atomic rename."""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path

from ..errors import DataError
from ..progress import shows_bar


def cache_dir() -> Path:
    """Where downloaded scenes live: ``$HSI_CACHE_DIR`` or ``~/.cache/hsi``."""
    return Path(os.environ.get("HSI_CACHE_DIR") or Path.home() / ".cache" / "hsi")


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, dest: str | Path, sha256: str | None = None, *, progress: bool = True) -> Path:
    """Download ``url`` to ``dest``; nothing is left at ``dest`` unless the whole file arrived and matches, and a
    failed or interrupted download removes its partial file and the (still empty) folders it created."""
    from tqdm import tqdm

    dest = Path(dest)
    created = [folder for folder in (dest.parent, *dest.parent.parents) if not folder.exists()]
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name,
                      disable=not shows_bar(progress)) as bar:
                for block in iter(lambda: response.read(1 << 16), b""):
                    out.write(block)
                    bar.update(len(block))
        if sha256 and sha256_of(tmp) != sha256:
            raise DataError(f"{url}: downloaded file does not match its sha256 {sha256}")
        os.replace(tmp, dest)
    except BaseException as exc:         # Ctrl-C included
        os.unlink(tmp)
        for folder in created:           # deepest first
            try:
                folder.rmdir()
            except OSError:              # holds something else now
                break
        if isinstance(exc, OSError):
            raise DataError(f"{url}: download failed ({exc})") from None
        raise
    return dest
