"""One writer per run directory: an exclusive OS lock (``flock``) on ``RUN/.lock``.

``fewcast train`` (with or without ``--resume``), ``evaluate`` and ``demo`` hold the lock for as long as they
write; a second writer fails at once with the process that holds it. The kernel drops the lock when its
process ends, however it ends (``kill -9`` included), so a crash never leaves a directory locked. The lock
file holds the holder's process id and command, for that message only. Readers (``forecast``,
``FewShotForecaster.load``) take no lock: they ask :func:`holder` whether a writer is at work.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
import time
from pathlib import Path

from fewcast.errors import InputError, StorageError

LOCK = ".lock"


class RunLock:
    """``with RunLock(directory):`` the exclusive right to write ``directory`` (created when missing)."""

    def __init__(self, directory: str | Path, command: str = ""):
        self.dir = Path(directory)
        self.command = command or " ".join(["fewcast", *sys.argv[1:2]])
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:  # a read-only or full file system, no permission: one line naming the file
            raise StorageError(f"cannot write {self.dir / LOCK}: {exc.strerror or exc}") from None
        for attempt in range(5):  # a reader's look (holder) holds a shared lock for a moment
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == 4:
                    os.close(fd)
                    raise InputError(f"{self.dir} is being written by {holder(self.dir) or 'another process'}; "
                                     f"wait for it to finish, or choose another --out") from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {self.command}\n".encode())
        self._fd = fd
        _remove_temporaries(self.dir)
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def holder(directory: str | Path) -> str | None:
    """``"process 1234 (fewcast train)"`` while a writer holds ``directory``'s lock; None when none does."""
    path = Path(directory) / LOCK
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 4096).decode(errors="replace").strip()
            pid, _, command = text.partition(" ")
            if pid == str(os.getpid()):  # this process is the writer
                return None
            return f"process {pid} ({command})" if pid else "another process"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _remove_temporaries(directory: Path) -> None:
    """Temporary files and checkpoint directories that a killed writer left behind (``.NAME.*.tmp*``)."""
    for path in directory.glob(".*.tmp*"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def remove_if_unused(directory: str | Path) -> None:
    """Remove ``directory`` where it holds nothing but its lock (held by this process, which refused to write
    anything there); leave it where anything else is in it."""
    directory = Path(directory)
    try:
        if {p.name for p in directory.iterdir()} <= {LOCK}:
            (directory / LOCK).unlink(missing_ok=True)
            directory.rmdir()  # fails, leaving it, if anything else appeared in it meanwhile
    except OSError:
        pass
