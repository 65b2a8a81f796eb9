"""The on-disk spool: order, commits that survive a reopen, torn tails, corrupt lines, the cap."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from daemon.outputs.spool import HEADER, Spool, decode_line, encode_line


def payloads(count: int, start: int = 0) -> list[bytes]:
    return [b'{"event_id":"e%d","pad":"%s"}' % (i, b"x" * 40) for i in range(start, start + count)]


def read_all(spool: Spool) -> list[bytes]:
    out = []
    while True:
        batch = spool.read(7)
        if not batch.records:
            return out
        out += batch.records
        spool.commit(batch)


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("seg-*.log"))


def test_records_come_back_in_order_and_commits_survive_a_reopen(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(payloads(10))
    batch = spool.read(4)
    assert batch.records == payloads(4)
    spool.commit(batch)
    spool.close()  # a SIGKILL would skip this; the data was flushed by append and the cursor by commit

    reopened = Spool(tmp_path, max_bytes=1 << 20)
    assert reopened.pending == 6
    reopened.append(payloads(2, start=10))
    assert read_all(reopened) == payloads(8, start=4)
    assert reopened.pending == 0
    assert segments(tmp_path) == []  # fully delivered spools leave no segment behind


def test_an_uncommitted_batch_is_read_again_after_a_crash(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(payloads(5))
    assert spool.read(3).records == payloads(3)  # sent, but the process died before the commit
    del spool  # what dying does to it: the lock goes with the process, nothing is synced or committed
    assert Spool(tmp_path, max_bytes=1 << 20).read(10).records == payloads(5)


def test_a_torn_tail_is_cut_off_and_appends_continue(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(payloads(3))
    spool.close()
    with open(segments(tmp_path)[-1], "ab") as handle:
        handle.write(encode_line(b'{"event_id":"torn"}')[:12])  # killed mid-write
    drops: list[tuple[str, int]] = []
    reopened = Spool(tmp_path, max_bytes=1 << 20, on_drop=lambda reason, n: drops.append((reason, n)))
    assert reopened.pending == 3
    assert drops == []  # a write that never completed was never spooled
    reopened.append(payloads(1, start=3))
    assert read_all(reopened) == payloads(4)


def test_a_corrupt_line_is_skipped_and_counted(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(payloads(3))
    spool.close()
    path = segments(tmp_path)[-1]
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b"e1", b"e9")  # bit rot in the second record: checksum no longer matches
    path.write_bytes(b"\n".join(lines))
    drops: list[tuple[str, int]] = []
    reopened = Spool(tmp_path, max_bytes=1 << 20, on_drop=lambda reason, n: drops.append((reason, n)))
    assert drops == [("spool_corrupt", 1)]
    assert read_all(reopened) == [payloads(3)[0], payloads(3)[2]]


def test_the_cap_drops_whole_oldest_segments_and_reports_exactly_how_many(tmp_path: Path) -> None:
    drops: list[tuple[str, int]] = []
    spool = Spool(tmp_path, max_bytes=4096, on_drop=lambda reason, n: drops.append((reason, n)))
    records = payloads(200)
    spool.append(records)
    lost = sum(n for reason, n in drops if reason == "spool_full")
    assert lost > 0 and spool.pending == 200 - lost
    assert spool.bytes <= 4096
    assert sum(p.stat().st_size for p in segments(tmp_path)) == spool.bytes
    assert read_all(spool) == records[lost:]


def test_line_format() -> None:
    line = encode_line(b'{"a":1}')
    assert line.endswith(b"\n") and line[8:9] == b" "
    assert decode_line(line) == b'{"a":1}'
    assert decode_line(line[:-1]) is None
    assert decode_line(b"00000000 " + b'{"a":1}\n') is None
    assert HEADER.startswith(b"#argusd-spool")


def test_a_spool_in_use_by_another_process_is_refused(tmp_path: Path) -> None:
    first = Spool(tmp_path, max_bytes=1 << 20)
    with pytest.raises(OSError, match="in use by another argusd process"):
        Spool(tmp_path, max_bytes=1 << 20)  # flock locks per open file, so this models a second process
    first.close()
    Spool(tmp_path, max_bytes=1 << 20)


def test_a_segment_with_a_damaged_header_is_set_aside_and_counted(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(payloads(10))
    spool.close()
    path = segments(tmp_path)[-1]
    path.write_bytes(b"#argusd-spXol 1\n" + path.read_bytes()[len(HEADER):])  # bit rot in the header
    drops: list[tuple[str, int]] = []
    reopened = Spool(tmp_path, max_bytes=1 << 20, on_drop=lambda reason, n: drops.append((reason, n)))
    assert drops == [("spool_corrupt", 10)]
    assert reopened.pending == 0
    aside = path.with_name(path.name + ".damaged")
    assert aside.is_file() and aside.read_bytes().count(b"\n") == 11  # kept, whole, for inspection
    reopened.append(payloads(1, start=10))
    assert read_all(reopened) == payloads(1, start=10)
    reopened.close()
    assert aside.is_file()
    Spool(tmp_path, max_bytes=1 << 20).close()
    assert aside.is_file()  # and not deleted by a later start either


def test_fsync_interval_is_due_without_a_further_append(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, fsync="interval", fsync_interval_s=0.2)
    spool.append(payloads(1))  # may sync: the interval since the spool opened may have passed
    spool.append(payloads(1, start=1))  # within the interval: not synced now
    syncs = spool.syncs
    assert not spool.sync_if_due() and spool.sync_due_in() > 0
    time.sleep(0.25)
    assert spool.sync_due_in() == 0 and spool.sync_if_due()
    assert spool.syncs == syncs + 1 and not spool.sync_if_due()  # once
