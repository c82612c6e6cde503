"""Writers of one SQLite file queue in the kernel instead of polling SQLite's write lock.

SQLite has no blocking wait for its write lock: a writer that finds it taken can only try
again later (`_begin_immediate` retries every 0.05-1 ms). Two worker processes on one file
take turns at that lock all the time, and the waiting one woke, tried and slept again many
times per transaction: CPU taken from the process holding the lock, and a late start once
it was free. So each store's writer first takes an exclusive `flock` on a file beside the
database (`<database>-jobglass.lock`): a waiting writer sleeps in the kernel and wakes when
the lock is released, then begins its transaction at once.

The lock only orders jobglass's own writers; SQLite's lock still guards the data. A writer
that does not take it (the sqlite3 shell, another program) is waited for as before, by
`_begin_immediate`, while holding this lock, for up to the busy timeout. Another jobglass
writer is waited for without a limit (`flock` has none): its transaction is a few of
jobglass's own statements, so a long wait means that process is stopped (a debugger,
SIGSTOP), and polling would only have turned the same standstill into errors. The kernel
drops the lock of a process that dies, SIGKILL included. Where `flock` does not exist
(Windows), the file cannot be opened or the file system refuses the lock, writers poll as
before.
"""

from __future__ import annotations

import logging
import os
import sys

if sys.platform != "win32":
    import fcntl

log = logging.getLogger("jobglass.stores.sqlite")

SUFFIX = "-jobglass.lock"


def lock_path(database: str) -> str:
    """The lock file of a database file."""
    return database + SUFFIX


class WriterLock:
    """An exclusive `flock` on the database's lock file, held around each write transaction.

    Used from the store's one writer thread. The file is opened on first use in each process
    (a forked child opens its own: a `flock` belongs to the open file, which fork shares).
    """

    def __init__(self, database: str) -> None:
        unshared = database in ("", ":memory:") or database.startswith("file:")  # URI: no file
        self.path = None if unshared else lock_path(database)
        self._fd: int | None = None
        self._pid = 0

    def acquire(self) -> bool:
        """Wait for the lock; False when there is none to take (the caller polls instead)."""
        if sys.platform == "win32" or self.path is None:
            return False
        if self._pid != os.getpid():
            self._open()
        if self._fd is None:
            return False
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except OSError as err:  # a file system without flock (ENOLCK, EOPNOTSUPP)
            log.warning("no writer lock on %s (%s): writers poll the database", self.path, err)
            os.close(self._fd)
            self._fd = None  # for this process: polling is correct, only slower
            return False
        return True

    def release(self) -> None:
        if sys.platform == "win32" or self._fd is None:
            return
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None and self._pid == os.getpid():
            os.close(fd)  # closing the file drops a lock still held
        self._pid = 0

    def _open(self) -> None:
        self._pid = os.getpid()
        self._fd = None
        assert self.path is not None
        try:  # read-only: a flock needs no write access (processes of other users share it)
            self._fd = os.open(self.path, os.O_RDONLY | os.O_CREAT, 0o644)
        except OSError as err:
            log.warning("no writer lock file %s (%s): writers poll the database", self.path, err)
