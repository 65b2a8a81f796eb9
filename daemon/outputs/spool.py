"""A durable, size-capped, append-only FIFO of event records on local disk.

Layout: ``<directory>/seg-<number>.log`` segment files plus a ``cursor`` file. Each segment starts with
the header line ``#argusd-spool 1`` followed by one record per line::

    <crc32 of payload, 8 hex digits> <payload: one JSON document, no newline>\\n

Why this shape:
- Append-only lines survive a SIGKILL at any point: a torn last line (no newline or a bad checksum) is
  cut off when the spool is opened; a corrupt line in the middle is skipped and counted, and reading
  resynchronises at the next newline (a length prefix could not).
- Dropping the oldest records when the cap is reached is deleting the oldest segment: no rewrite.
- The cursor (segment number and byte offset of the first undelivered record) is replaced atomically
  (write, fsync, rename) after Redis acknowledged a batch; a crash in between re-sends that batch,
  which is why delivery is at-least-once and consumers (or XADD IDMP) de-duplicate on ``event_id``.

A full or failing disk is not fatal: an append that cannot be written completely is cut back to the end
of its last whole record (so no record is ever written twice), the caller keeps what was not stored, and
``error`` says why until a write succeeds again. A failed cursor write only makes the next start re-send
records that were delivered (at-least-once), so it is logged, never raised. A segment whose header is
damaged is renamed to ``<name>.damaged`` (kept for inspection, never replayed) and its records counted.

One thread owns a Spool (the publisher's); it is not thread-safe.
"""

from __future__ import annotations

import builtins
import errno
import fcntl
import json
import logging
import os
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

HEADER = b"#argusd-spool 1\n"
SEGMENT_GLOB = "seg-*.log"
DAMAGED_SUFFIX = ".damaged"  # seg-N.log.damaged: set aside, not matched by SEGMENT_GLOB
MAX_SEGMENT_BYTES = 64 * 1024 * 1024


@dataclass(slots=True)
class _Segment:
    number: int
    path: Path
    size: int  # bytes on disk, header included
    records: int  # good records in the file


@dataclass(frozen=True, slots=True)
class SpoolBatch:
    """Records read from the spool and not yet committed; ``end`` is where the cursor goes on commit."""

    records: list[bytes]
    end: tuple[int, int]


def encode_line(payload: bytes) -> bytes:
    return b"%08x %s\n" % (zlib.crc32(payload), payload)


def decode_line(line: bytes) -> bytes | None:
    """The payload of a complete line, or None when the line is torn or corrupt."""
    if len(line) < 10 or not line.endswith(b"\n") or line[8:9] != b" ":
        return None
    payload = line[9:-1]
    try:
        crc = int(line[:8], 16)
    except ValueError:
        return None
    return payload if zlib.crc32(payload) == crc else None


class Spool:
    def __init__(self, directory: str | Path, max_bytes: int, fsync: str = "batch", fsync_interval_s: float = 1.0,
                 on_drop: Callable[[str, int], None] | None = None) -> None:
        """Open (creating if needed) the spool in ``directory``; recover from a crash if there was one.

        ``on_drop(reason, count)`` is called for every record lost: ``spool_full`` (cap reached) or
        ``spool_corrupt`` (a line failed its checksum, a segment's header is damaged, or the publisher
        found a record it cannot parse)."""
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = max(512, min(max_bytes // 8, MAX_SEGMENT_BYTES))
        self.fsync = fsync
        self.fsync_interval_s = fsync_interval_s
        self._on_drop = on_drop or (lambda reason, count: None)
        self._segments: deque[_Segment] = deque()
        self._writer: BinaryIO | None = None  # unbuffered: nothing written is held back to be re-written later
        self._last_fsync = time.monotonic()
        self._unsynced = False  # bytes written to the active segment since its last fsync
        self.syncs = 0  # fsyncs of segment data (for tests and the curious)
        self.error: str | None = None  # why the last append (or fsync) failed; None once one succeeds
        self._cursor_error_logged = False
        self._cursor: tuple[int, int] = (0, 0)  # (segment number, byte offset) of the next record to read
        self._head_consumed = 0  # records before the cursor in the head segment
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.directory / "lock", "a")  # noqa: SIM115 (held, locked, for the spool's life)
        try:
            # Two daemons sharing a spool would interleave and replay each other's events.
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise OSError(errno.EBUSY, "in use by another argusd process") from None
        self._recover()

    # -- public --------------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Records not yet delivered."""
        return sum(segment.records for segment in self._segments) - self._head_consumed

    @property
    def bytes(self) -> int:
        return sum(segment.size for segment in self._segments)

    def append(self, payloads: list[builtins.bytes]) -> int:
        """Append records durably (per the fsync policy); drop the oldest when the cap is reached.

        Returns how many of ``payloads``, from the first, the spool took (stored, or dropped as larger than
        the cap); fewer than all when the disk refused a write (``error`` says why). Nothing of a record
        that was not taken stays in the file, so the caller can offer it again without duplicating it."""
        taken = 0
        lines: list[builtins.bytes] = []  # encoded, for the active segment, not yet written
        size = 0  # their bytes
        try:
            for payload in payloads:
                line = encode_line(payload)
                if len(line) + len(HEADER) > self.max_bytes:
                    taken += self._write(lines, sync=False)
                    lines, size = [], 0
                    self._drop("spool_full", 1)
                    taken += 1
                    continue
                active = self._segments[-1] if self._segments else None
                if active is None or self._writer is None or active.size + size + len(line) > self.segment_bytes:
                    taken += self._write(lines, sync=False)
                    lines, size = [], 0
                    self._roll()
                while self.bytes + size + len(line) > self.max_bytes and len(self._segments) > 1:
                    self._drop_oldest_segment()
                lines.append(line)
                size += len(line)
                if self.fsync == "always":
                    taken += self._write(lines, sync=True)
                    lines, size = [], 0
            sync = self.fsync == "batch" or (
                self.fsync == "interval" and time.monotonic() - self._last_fsync >= self.fsync_interval_s)
            taken += self._write(lines, sync=sync)
        except OSError as error:
            self._failed(error)
            return taken + getattr(error, "partial", 0)
        if self.error is not None:
            log.info("spool: writing to %s works again", self.directory)
        self.error = None
        return taken

    def sync_if_due(self) -> bool:
        """For ``fsync: interval``: fsync what was written more than ``fsync_interval_s`` ago, also when no
        further append comes. The publisher thread calls this on every turn. True when it synced."""
        if self.fsync != "interval" or not self._unsynced or self.sync_due_in() > 0:
            return False
        try:
            self._sync_writer()
        except OSError as error:
            self._last_fsync = time.monotonic()  # try again an interval later, not in a loop
            self._failed(error)
            return False
        return True

    def sync_due_in(self) -> float:
        """Seconds until sync_if_due() has work (a large number when nothing waits to be synced)."""
        if self.fsync != "interval" or not self._unsynced:
            return 3600.0
        return max(0.0, self._last_fsync + self.fsync_interval_s - time.monotonic())

    def read(self, limit: int) -> SpoolBatch:
        """Up to ``limit`` of the oldest undelivered records, in order, without consuming them.
        A batch never spans two segments, so a commit moves the cursor within one file."""
        while self._segments:
            records: list[builtins.bytes] = []
            number, offset = self._cursor
            with open(self._segments[0].path, "rb") as handle:
                handle.seek(offset)
                while len(records) < limit:
                    line = handle.readline()
                    if not line.endswith(b"\n"):
                        break  # end of file: the writer only ever flushes whole lines
                    offset += len(line)
                    payload = decode_line(line)
                    if payload is not None:
                        records.append(payload)
            if records or len(self._segments) == 1:
                return SpoolBatch(records, (number, offset))
            self._advance_past_head()  # only corrupt lines were left in it
        return SpoolBatch([], self._cursor)

    def commit(self, batch: SpoolBatch) -> None:
        """Mark a read batch delivered: move the cursor past it, delete a fully delivered segment."""
        if batch.end[0] != self._cursor[0] or batch.end[1] <= self._cursor[1]:
            return  # nothing read, or its segment was dropped meanwhile (then it was counted as dropped)
        self._cursor = batch.end
        self._head_consumed += len(batch.records)
        head = self._segments[0]
        if self._head_consumed >= head.records:
            if len(self._segments) == 1:
                self._reset()
            else:
                self._advance_past_head()
            return
        self._write_cursor()

    def _advance_past_head(self) -> None:
        """Move the cursor to the next segment (persisted first), then delete the head segment."""
        head = self._segments.popleft()
        self._cursor = (self._segments[0].number, len(HEADER))
        self._head_consumed = 0
        self._write_cursor()
        head.path.unlink(missing_ok=True)

    def close(self) -> None:
        if self._writer is not None:
            try:
                self._sync_writer()
            except OSError as error:  # what was written is in the page cache; a power cut may lose it
                log.error("spool: fsync of %s at close failed (%s)", self._segments[-1].path.name
                          if self._segments else self.directory, error.strerror or error)
            self._writer.close()
            self._writer = None
        self._lock.close()

    # -- internals -----------------------------------------------------------------------------------

    def _recover(self) -> None:
        cursor = self._read_cursor()
        paths = sorted(self.directory.glob(SEGMENT_GLOB), key=lambda p: _segment_number(p) or 0)
        for index, path in enumerate(paths):
            number = _segment_number(path)
            if number is None:
                continue
            if cursor is not None and number < cursor[0]:
                path.unlink(missing_ok=True)  # delivered; its deletion was interrupted
                continue
            segment = self._scan(path, number, is_last=index == len(paths) - 1)
            if segment is not None:
                self._segments.append(segment)
        if not self._segments:
            self._reset()
            return
        head = self._segments[0]
        if cursor is not None and cursor[0] == head.number:
            self._cursor = (head.number, min(cursor[1], head.size))
        else:
            self._cursor = (head.number, len(HEADER))
        self._recount_head()
        if self.pending:
            log.info("spool: %d undelivered event(s) in %s will be replayed", self.pending, self.directory)
        else:
            self._reset()

    def _scan(self, path: Path, number: int, is_last: bool) -> _Segment | None:
        data = path.read_bytes()
        if not data.startswith(HEADER):
            if HEADER.startswith(data):
                path.unlink()  # a segment torn while its header was being written
                return None
            self._set_aside(path, data)
            return None
        records = corrupt = 0
        good_end = offset = len(HEADER)
        for line in data[len(HEADER):].splitlines(keepends=True):
            offset += len(line)
            if decode_line(line) is not None:
                records += 1
                good_end = offset
            elif line.endswith(b"\n") or not is_last:
                corrupt += 1  # a torn last line of the last segment is an interrupted write, not a loss
        if is_last and good_end < len(data):
            with open(path, "r+b") as handle:
                handle.truncate(good_end)  # so appends continue after the last good record
            data = data[:good_end]
            log.warning("spool: cut a torn record off the end of %s", path.name)
        if corrupt:
            log.error("spool: %d corrupt record(s) in %s skipped", corrupt, path.name)
            self._drop("spool_corrupt", corrupt)
        return _Segment(number, path, len(data), records)

    def _set_aside(self, path: Path, data: builtins.bytes) -> None:
        """A segment with a damaged header: rename it out of the spool (kept for inspection) and count its
        records as lost. Its lines are not trusted to be events of this spool, so they are not replayed."""
        records = sum(1 for line in data.splitlines(keepends=True) if decode_line(line) is not None)
        aside = path.with_name(path.name + DAMAGED_SUFFIX)
        try:
            os.replace(path, aside)
        except OSError as error:
            log.error("spool: %s has a damaged header and cannot be moved aside (%s); it is not replayed",
                      path.name, error.strerror or error)
        else:
            log.error("spool: %s has a damaged header; moved aside to %s, its %d record(s) are not replayed "
                      "(counted as spool_corrupt)", path.name, aside.name, records)
        self._drop("spool_corrupt", records)

    def _recount_head(self) -> None:
        """Count the good records before the cursor in the head segment (they are delivered)."""
        if not self._segments:
            self._head_consumed = 0
            return
        head = self._segments[0]
        if self._cursor[0] != head.number:
            self._cursor = (head.number, len(HEADER))
        with open(head.path, "rb") as handle:
            data = handle.read(self._cursor[1])
        self._head_consumed = sum(1 for line in data[len(HEADER):].splitlines(keepends=True)
                                  if decode_line(line) is not None)

    def _roll(self) -> None:
        """Start a new active segment (its header written); on failure nothing of it is left."""
        if self._writer is not None:
            self._sync_writer()
            self._writer.close()
            self._writer = None
        number = self._segments[-1].number + 1 if self._segments else self._cursor[0] + 1
        path = self.directory / f"seg-{number:012d}.log"
        writer = open(path, "ab", buffering=0)  # noqa: SIM115 (the open segment, closed when it rolls)
        try:
            _write_all(writer, HEADER)
        except OSError:
            writer.close()
            path.unlink(missing_ok=True)
            raise
        self._writer = writer
        segment = _Segment(number, path, len(HEADER), 0)
        if not self._segments:
            self._cursor = (number, len(HEADER))
            self._head_consumed = 0
            self._write_cursor()
        self._segments.append(segment)
        _fsync_directory(self.directory)

    def _write(self, lines: list[builtins.bytes], sync: bool) -> int:
        """Write whole lines to the active segment (fsync'ed if ``sync``); how many were written. On an
        error the file is cut back to the end of the last whole line that reached it (all of them when the
        fsync failed: what it did not sync cannot be trusted) and the error is raised, ``partial`` telling
        how many were kept."""
        if not lines:
            if sync:
                self._sync_writer()
            return 0
        active, writer = self._segments[-1], self._writer
        if writer is None:  # append() rolls before it queues a line, so a writer is open here
            raise OSError(errno.EBADF, "spool: no open segment")
        data = b"".join(lines)
        start = active.size
        written = 0
        try:
            written = _write_all(writer, data)
            if sync:
                self._sync_writer()
        except OSError as error:
            kept = 0
            if written < len(data):  # the write failed (a failed fsync keeps nothing)
                end = 0
                for line in lines:
                    if end + len(line) > getattr(error, "written", 0):
                        break
                    end += len(line)
                    kept += 1
            good = start + sum(len(line) for line in lines[:kept])
            try:
                os.ftruncate(writer.fileno(), good)
            except OSError:
                # Cannot cut it back: leave this segment (readers stop at the torn line) and start a new one.
                writer.close()
                self._writer = None
            active.size = good
            active.records += kept
            error.partial = kept  # type: ignore[attr-defined]
            raise
        active.size += len(data)
        active.records += len(lines)
        self._unsynced = not sync
        return len(lines)

    def _failed(self, error: OSError) -> None:
        message = error.strerror or str(error)
        if self.error != message:
            log.error("spool: write to %s failed (%s); what did not fit was not stored, the publisher "
                      "keeps it until the spool can be written again", self.directory, message)
        self.error = message

    def _drop_oldest_segment(self) -> None:
        oldest = self._segments[0]
        lost = oldest.records - self._head_consumed
        self._advance_past_head()
        self._drop("spool_full", lost)

    def _drop(self, reason: str, count: int) -> None:
        if count <= 0:
            return
        self._on_drop(reason, count)

    def _reset(self) -> None:
        """Everything delivered: delete the segments; the next append starts a new one."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        last = self._segments[-1].number if self._segments else self._cursor[0]
        for path in self.directory.glob(SEGMENT_GLOB):
            path.unlink(missing_ok=True)
        self._segments.clear()
        self._cursor = (last, 0)
        self._head_consumed = 0
        self._write_cursor()

    def _read_cursor(self) -> tuple[int, int] | None:
        try:
            data = json.loads((self.directory / "cursor").read_text())
            return int(data["segment"]), int(data["offset"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _write_cursor(self) -> None:
        """Persist the cursor. A failure is logged, not raised: the cursor on disk then lags, which makes
        the next start re-send delivered records (at-least-once), never skip one, because it only moves
        forward and a cursor into a deleted segment means "start of the next one"."""
        temporary = self.directory / "cursor.tmp"
        try:
            with open(temporary, "w") as handle:
                json.dump({"segment": self._cursor[0], "offset": self._cursor[1]}, handle)
                handle.flush()
                if self.fsync != "never":
                    os.fsync(handle.fileno())
            os.replace(temporary, self.directory / "cursor")
        except OSError as error:
            temporary.unlink(missing_ok=True)
            if not self._cursor_error_logged:
                log.error("spool: cannot write the cursor in %s (%s); after a restart some delivered events "
                          "may be sent again", self.directory, error.strerror or error)
                self._cursor_error_logged = True
            return
        if self._cursor_error_logged:
            log.info("spool: cursor written again")
            self._cursor_error_logged = False

    def _sync_writer(self) -> None:
        if self._writer is None:
            return
        if self.fsync != "never":
            os.fsync(self._writer.fileno())
            self.syncs += 1
        self._last_fsync = time.monotonic()
        self._unsynced = False


def _segment_number(path: Path) -> int | None:
    try:
        return int(path.stem.removeprefix("seg-"))
    except ValueError:
        return None


def _write_all(writer: BinaryIO, data: builtins.bytes) -> int:
    """Write all of ``data`` to an unbuffered file, short writes continued; on an error the bytes that
    reached the file before it are in the error's ``written`` attribute."""
    view = memoryview(data)
    written = 0
    while written < len(data):
        try:
            count = writer.write(view[written:])
        except OSError as error:
            error.written = written  # type: ignore[attr-defined]
            raise
        if not count:
            short = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            short.written = written  # type: ignore[attr-defined]
            raise short
        written += count
    return written


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
