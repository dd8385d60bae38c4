"""One driver per job: ``OUT/ROW/seedN.lock`` beside each job folder it is about to run, held (``flock``) while it
runs. The kernel lets go of a lock when its holder dies, SIGKILL included, so a lock file nobody holds is a stale one
from a dead run: it is taken over with a line saying so. A held one is refused with one line naming its pid. Two
drivers may share an ``--out`` as long as their jobs differ.
"""

import fcntl
import os
import socket
from typing import List, Tuple

from .stages import log
from .validate import TableError

Held = List[Tuple[str, int]]  # (lock file, its open descriptor)


def lock_path(work: str) -> str:
    """The lock of the job folder ``work`` (``OUT/ROW/seedN`` → ``OUT/ROW/seedN.lock``)."""
    return os.path.normpath(work) + ".lock"


def take(path: str) -> int:
    """Hold the lock file ``path`` (made if missing) and write this process's pid into it; a :class:`TableError` if a
    live process holds it."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").split()
            os.close(fd)
            pid = holder[0] if holder else "unknown"
            where = f" on {holder[1]}" if len(holder) > 1 and holder[1] != socket.gethostname() else ""
            raise TableError(f"{path}: its job is being run by another driver (pid {pid}{where}); wait for it to "
                             "end or stop it") from None  # fmt: skip
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # its holder removed it between our open and our lock: take the new one
            os.close(fd)
            continue
        before = os.read(fd, 200).decode(errors="replace").split()
        if before:
            log(f"{path}: cleared a stale lock: its driver (pid {before[0]}) {ended(before[0])}")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        return fd


def ended(pid: str) -> str:
    """How a lock's holder let go of it, in words."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return "is no longer running"
    except (ValueError, OverflowError, PermissionError):
        pass
    return "holds it no longer"


def lock_jobs(works: List[str]) -> Held:
    """Hold the lock of every job folder of ``works``; if one is held by another driver, let go of those taken and
    raise its :class:`TableError`."""
    held: Held = []
    try:
        for work in works:
            path = lock_path(work)
            held.append((path, take(path)))
    except BaseException:
        release(held)
        raise
    return held


def release(held: Held) -> None:
    """Remove and let go of the locks of :func:`lock_jobs`."""
    for path, fd in reversed(held):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        os.close(fd)
