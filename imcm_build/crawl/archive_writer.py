"""The archive writer: a :class:`WarcArchive` in its own process, fed through a pipe.

Building a page's WARC records, hashing and compressing them costs about as much CPU as fetching the page
from a local server. In the crawler's process that work would hold the GIL while the next request waits;
in its own process it runs beside the next request. Protocol, one pickled message at a time:

    crawler → writer   ("write", exchange, outcome, requested_url) | ("sync",) | ("close",)
    writer → crawler   ("ready", error or None) once, then (positions, error) for every sync/close,
                       each prefixed with its length (so the crawler can poll for replies without blocking)

``positions`` are (file name, offset just past the records) of the writes since the previous sync, in
order, all fsynced; ``error`` is the first write error, after which nothing more is written. The crawler
marks pages done only for positions it got back, so the archive still comes first.

If the crawler dies, the writer writes everything it was sent, closes the file and exits. It holds a lock
file in the archive folder meanwhile, and a new writer (and its crawler's repair of torn records) waits
for that lock, so a resumed crawl never reads a file that is still being written.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO, Any, NamedTuple

from imcm_build.crawl.archive import DEFAULT_COMPRESS_LEVEL, ArchiveError, Exchange, WarcArchive

try:
    import fcntl
except ImportError:  # Windows: no lock; do not run two crawls on one folder there
    fcntl = None

WRITER_LOCK = ".writer.lock"
LOCK_WAIT = 10.0  # seconds to wait for an earlier writer of the same folder to finish
PIPE_BYTES = 1 << 20  # pipe buffer asked of Linux, so a burst of pages does not wait for the writer

Position = tuple[str, int]
_LENGTH_BYTES = 8


class Synced(NamedTuple):
    """What the writer confirmed: positions (file, offset just past the records) of the writes numbered
    below `upto` that are on disk and fsynced, and the error that stopped the others (None if all were)."""

    written: dict[int, Position]
    error: BaseException | None
    upto: int


class ArchiveWriterDied(OSError):
    """The writer process ended before it was told to."""


def _open_lock(folder: Path) -> IO[bytes]:
    return open(folder / WRITER_LOCK, "a+b")  # noqa: SIM115 - the caller keeps or closes it


def hold_folder_lock(folder: Path, wait: float | None = None) -> IO[bytes]:
    """Lock ``folder`` for this process (released when the returned file is closed or the process ends),
    waiting up to ``wait`` (default LOCK_WAIT) seconds for another holder."""
    handle = _open_lock(folder)
    if fcntl is None:
        return handle
    deadline = time.monotonic() + (LOCK_WAIT if wait is None else wait)
    while True:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if time.monotonic() > deadline:
                handle.close()
                raise ArchiveError(f"{folder}: another crawl is still writing to this archive folder") from None
            time.sleep(0.05)


class ArchiveWriter:
    """Sends exchanges to a writer process; :meth:`sync` returns where they landed, once on disk."""

    def __init__(self, folder: str | Path, max_bytes: int = 100 * 1024 * 1024,
                 compress_level: int = DEFAULT_COMPRESS_LEVEL) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        hold_folder_lock(folder).close()  # a writer left by a killed crawl finishes first
        self._process = subprocess.Popen(
            [sys.executable, "-m", __name__, str(folder), str(max_bytes), str(compress_level)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            start_new_session=True,  # a Ctrl-C reaches the crawler, which then closes the writer in order
        )
        if hasattr(fcntl, "F_SETPIPE_SZ"):
            # above /proc/sys/fs/pipe-max-size the default buffer stays: that only means earlier waits
            with contextlib.suppress(OSError):
                fcntl.fcntl(self._process.stdin.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        self._outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._feeder = threading.Thread(target=self._feed, name="archive-feeder", daemon=True)
        self._feeder.start()
        self._sent = self._synced = 0
        self._sync_requests: deque[int] = deque()  # per sync sent and not yet answered: writes sent before it
        self._ready = self._closed = False

    def _feed(self) -> None:
        """Move pickled messages to the pipe, so the crawler never waits for a slow or starting writer."""
        stdin = self._process.stdin
        assert stdin is not None
        while (message := self._outbox.get()) is not None:
            try:
                stdin.write(message)
                stdin.flush()
            except OSError:
                break  # the writer died; the next sync says so
        with contextlib.suppress(OSError):
            stdin.close()

    def _put(self, message: tuple) -> None:
        self._outbox.put(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))

    def _read_exactly(self, size: int) -> bytes:
        chunks, fd = [], self._process.stdout.fileno()
        while size:
            chunk = os.read(fd, size)
            if not chunk:
                code = self._process.wait()
                raise ArchiveWriterDied(f"the archive writer process ended unexpectedly (exit status {code})")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def _read(self) -> Any:  # noqa: ANN401 - one unpickled protocol message
        # read from the raw pipe, never through a buffer, so that `_replies_waiting` sees what is left
        size = int.from_bytes(self._read_exactly(_LENGTH_BYTES), "big")
        return pickle.loads(self._read_exactly(size))

    def _replies_waiting(self) -> bool:
        if os.name != "posix":
            return False  # no select() on pipes: replies are only read by a blocking `sync`
        return bool(select.select([self._process.stdout], [], [], 0)[0])

    def _await_ready(self) -> None:
        if self._ready:
            return
        _, error = self._read()
        self._ready = True
        if error is not None:
            raise error

    @property
    def ready(self) -> bool:
        """Whether the writer process has started (it takes ~0.2 s); a :meth:`sync` before that waits for it."""
        if not self._ready and self._replies_waiting():
            self._await_ready()
        return self._ready or os.name != "posix"

    @property
    def sync_pending(self) -> bool:
        """Whether a :meth:`request_sync` is still unanswered."""
        return bool(self._sync_requests)

    def write(self, exchange: Exchange, outcome: str, requested_url: str | None = None) -> int:
        """Queue an exchange for the archive; return its number (a key of :meth:`sync`'s positions)."""
        self._put(("write", exchange, outcome, requested_url))
        self._sent += 1
        return self._sent - 1

    def request_sync(self) -> None:
        """Ask the writer to fsync everything queued so far; its answer is collected by :meth:`poll`."""
        self._put(("sync",))
        self._sync_requests.append(self._sent)

    def poll(self) -> Synced:
        """The answers to :meth:`request_sync` that have arrived, without waiting."""
        return self._collect(wait=False)

    def sync(self) -> Synced:
        """Wait until every write queued so far is handled and fsynced, and return what was confirmed since
        the last answer collected."""
        self.request_sync()
        return self._collect(wait=True)

    def _collect(self, wait: bool) -> Synced:
        written: dict[int, Position] = {}
        error: BaseException | None = None
        while self._sync_requests and (wait or self._replies_waiting()):
            if not self._ready:
                self._await_ready()
                continue
            positions, failure = self._read()
            written.update((self._synced + index, position) for index, position in enumerate(positions))
            self._synced = self._sync_requests.popleft()
            error = error or failure
        return Synced(written, error, self._synced)

    def close(self) -> None:
        """Write what was queued, fsync, close the file and end the process; raise a write error that no
        :meth:`sync` has reported yet."""
        if self._closed:
            return
        self._closed = True
        failure = None
        try:
            failure = self._collect(wait=True).error  # answers nobody collected
            self._await_ready()
            self._put(("close",))
            _, closing_failure = self._read()
            failure = failure or closing_failure
        except ArchiveWriterDied:
            pass  # nothing left to close; a sync has reported (or will never know) what was lost
        finally:
            self._outbox.put(None)
            self._feeder.join()
            if self._process.stdout is not None:
                self._process.stdout.close()
            self._process.wait()
        if failure is not None:
            raise failure

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(folder: Path, max_bytes: int, compress_level: int, inbox: IO[bytes], outbox: IO[bytes]) -> None:
    """The writer process: write what arrives, in order; answer sync and close with positions and error."""

    def send(message: tuple) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        outbox.write(len(data).to_bytes(_LENGTH_BYTES, "big") + data)
        outbox.flush()

    try:
        lock = hold_folder_lock(folder)
        archive = WarcArchive(folder, max_bytes=max_bytes, compress_level=compress_level)
    except Exception as error:  # noqa: BLE001 - the crawler raises it
        send(("ready", error))
        return
    send(("ready", None))
    positions: list[Position] = []
    failure: BaseException | None = None
    try:
        while True:
            try:
                kind, *arguments = pickle.load(inbox)
            except EOFError:
                return  # the crawler died or closed the pipe: all it sent is written
            if kind == "write":
                if failure is None:
                    exchange, outcome, requested_url = arguments
                    try:
                        positions.append(archive.write(exchange, outcome, requested_url=requested_url))
                    except Exception as error:  # noqa: BLE001 - reported at the next sync
                        failure = error
                continue
            try:
                archive.sync()
            except Exception as error:  # noqa: BLE001 - reported below
                if failure is None:  # a flush refused: no write since the last sync is known to be on disk
                    failure, positions = error, []
            send((positions, failure))
            positions = []
            if kind == "close":
                return
    finally:
        try:
            if failure is None:
                archive.close()
            else:  # the buffer still holds the refused bytes; the crawler knows of the failure
                with contextlib.suppress(OSError):
                    archive.close()
        finally:
            lock.close()


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the crawler handles Ctrl-C and then closes us
    folder, max_bytes, compress_level = Path(argv[0]), int(argv[1]), int(argv[2])
    outbox = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a stray print must not corrupt the protocol
    serve(folder, max_bytes, compress_level, sys.stdin.buffer, outbox)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
