"""File bodies (``http.response.pathsend`` and ``http.response.zerocopysend``), shared by both
drivers.

The core never touches a file. A file message makes it emit ``OpenFile``; the driver resolves
the file here (``FileBody.open``: a descriptor, an offset and the exact count of bytes there
are to send) and hands that to ``core.file_opened``. The core answers with the head and a
``SendFile``; the driver writes those bytes of the descriptor (``os.sendfile`` where the socket
allows it, else bounded reads of ``FILE_CHUNK_BYTES``), calls ``core.file_sent`` and lets
``FileBody.close`` put the descriptor back as the spec wants it:

* pathsend: the driver opened the file, so it closes it, whatever happened.
* zerocopysend: "ASGI servers are not responsible for closing descriptors": the app's file
  stays open. With ``offset`` None the file's position is used and then moved past the bytes
  sent, as ``os.sendfile(out, fd, None, n)`` or a read would; with an explicit offset the
  position is left where the app had it, as ``os.sendfile`` with an offset does.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Any

from ..core.events import OpenFile

# What one read of a file may hold in memory where the file cannot go to the socket without
# passing through Python (TLS, uvloop): the write high-water mark's default, so that a chunk
# never holds more than the output buffer is allowed to.
FILE_CHUNK_BYTES = 64 * 1024

# O_NONBLOCK: opening a FIFO read-only would wait for a writer; with it the open returns, and
# the fstat below refuses what is not a regular file (it changes nothing for a regular file).
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)


class FileBody:
    """A file resolved for one file message: what to send, and whose descriptor it is."""

    __slots__ = ("count", "fd", "offset", "owned", "position", "sent")

    def __init__(self, fd: int, offset: int, count: int, *, owned: bool, position: int) -> None:
        self.fd = fd
        self.offset = offset
        self.count = count
        self.owned = owned  # pathsend: ours to close
        self.position = position  # zerocopysend: where the position goes back to (-1: moves)
        self.sent = 0  # bytes written so far, kept by the driver

    @classmethod
    def open(cls, event: OpenFile) -> FileBody:
        """Resolve ``event``; raises what the app should see (``FileNotFoundError``,
        ``IsADirectoryError``, ``PermissionError``, a file without a descriptor...)."""
        if event.path is not None:
            fd = os.open(event.path, _OPEN_FLAGS)
            try:
                size = _regular_size(fd, event.path)
            except BaseException:
                os.close(fd)
                raise
            return cls(fd, 0, size, owned=True, position=0)
        file: Any = event.file
        fd = file.fileno()
        size = _regular_size(fd, getattr(file, "name", fd))
        current = os.lseek(fd, 0, os.SEEK_CUR)
        offset = current if event.offset is None else event.offset
        if offset < 0:
            raise ValueError(f"zerocopysend: offset {offset} is negative")
        available = max(0, size - offset)
        # A count past the end is capped at what the file holds: the core's Content-Length
        # check then decides whether that is an error.
        count = available if event.count is None else min(event.count, available)
        return cls(fd, offset, count, owned=False, position=-1 if event.offset is None else current)

    def close(self) -> None:
        """The transfer is over: done, failed, or never started."""
        if self.owned:
            os.close(self.fd)
        elif self.position < 0:
            os.lseek(self.fd, self.offset + self.sent, os.SEEK_SET)
        else:
            os.lseek(self.fd, self.position, os.SEEK_SET)


def _regular_size(fd: int, name: object) -> int:
    """The size of the regular file ``fd``; anything else cannot be a body of a known length."""
    mode = os.fstat(fd)
    if stat.S_ISDIR(mode.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), name)
    if not stat.S_ISREG(mode.st_mode):
        raise OSError(errno.EINVAL, "not a regular file", name)
    return mode.st_size


def file_ended_early(fd: int, missing: int) -> OSError:
    """The file shrank after it was resolved: the response its length was promised to is cut."""
    return OSError(errno.EIO, f"the file (fd {fd}) ended {missing} bytes before its announced end")
