"""Files that are whole or as they were: atomic writes through a temporary file renamed into place.

A write that fails (no space, a file size limit, a read-only directory) is a :class:`StorageError` that
names the file; the file keeps its previous content and no temporary file is left behind. A process killed
while writing may leave a hidden ``.NAME.*.tmp*`` file, which the next writer of a run directory removes.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from fewcast.errors import StorageError

_UMASK = os.umask(0)
os.umask(_UMASK)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | Path):
    """``with atomic_path(path) as tmp:`` write ``tmp`` (a hidden file beside ``path``, same extension);
    once the block succeeds it is fsync'ed and renamed over ``path``, so ``path`` is never half-written. A
    write that fails (no space, a file size limit, a read-only directory) is a :class:`StorageError` naming
    ``path``, and leaves ``path`` as it was."""
    path = Path(path)
    tmp = None
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
        os.fchmod(fd, 0o666 & ~_UMASK)  # as open() would create it (mkstemp makes it private)
        os.close(fd)
        tmp = Path(name)
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if isinstance(exc, StorageError):
            raise
        raise StorageError(f"could not write {path}: {exc.strerror or exc}") from exc
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
