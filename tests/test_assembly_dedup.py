"""Multi-part reassembly and the duplicate window."""

from __future__ import annotations

import pytest

from ingest.assembly import FragmentAssembler
from ingest.dedup import DuplicateWindow
from ingest.nmea import Sentence


def fragment(
    num: int, count: int = 2, seq: bytes = b"3", channel: bytes = b"A", group: bytes | None = None
) -> Sentence:
    return Sentence(
        count, num, seq, channel, f"P{num}".encode(), 2 if num == count else 0, 0, None, None, group
    )


def test_fragments_in_order_make_one_message() -> None:
    assembler = FragmentAssembler()
    assert assembler.add(fragment(1), 0.0) is None
    message = assembler.add(fragment(2), 0.1)
    assert message is not None
    assert (message.payload, message.fill_bits, message.fragments) == (b"P1P2", 2, 2)
    assert assembler.take_orphans() == 0


def test_fragments_out_of_order_make_one_message() -> None:
    assembler = FragmentAssembler()
    assert assembler.add(fragment(2), 0.0) is None
    message = assembler.add(fragment(1), 0.1)
    assert message is not None and message.payload == b"P1P2"


def test_channels_and_sequence_ids_keep_messages_apart() -> None:
    assembler = FragmentAssembler()
    assembler.add(fragment(1, channel=b"A"), 0.0)
    assembler.add(fragment(1, channel=b"B"), 0.0)
    assembler.add(fragment(1, seq=b"4"), 0.0)
    message = assembler.add(fragment(2, channel=b"B"), 0.0)
    assert message is not None and message.first.channel == b"B"
    assert assembler.flush() == 2


def test_tag_block_groups_key_the_message() -> None:
    assembler = FragmentAssembler()
    assembler.add(fragment(1, seq=b"", group=b"77"), 0.0)
    assert assembler.add(fragment(2, seq=b"", group=b"78"), 0.0) is None
    assert assembler.add(fragment(2, seq=b"", group=b"77"), 0.0) is not None


def test_a_reused_sequence_id_orphans_the_old_fragment() -> None:
    assembler = FragmentAssembler()
    assembler.add(fragment(1), 0.0)
    assembler.add(fragment(1), 1.0)  # the sequence id came round again
    assert assembler.take_orphans() == 1
    assert assembler.add(fragment(2), 1.1) is not None


def test_old_fragments_expire() -> None:
    assembler = FragmentAssembler(timeout_s=5.0)
    assembler.add(fragment(1), 0.0)
    assembler.add(fragment(1, seq=b"9"), 10.0)  # any new group sweeps the old ones
    assert assembler.take_orphans() == 1
    assert assembler.add(fragment(2), 10.5) is None  # its first half is gone
    assert assembler.flush() == 2


def test_the_open_groups_are_bounded() -> None:
    assembler = FragmentAssembler(max_open=3)
    for i in range(10):
        assembler.add(fragment(1, seq=str(i).encode()), 0.0)
    assert len(list(assembler)) <= 3
    assert assembler.take_orphans() == 7


def test_duplicates_within_the_window() -> None:
    window = DuplicateWindow(window_s=30)
    assert not window.is_duplicate(b"X", 100.0)
    assert window.is_duplicate(b"X", 110.0)
    assert window.is_duplicate(b"X", 95.0)  # late copies within the window too
    assert not window.is_duplicate(b"Y", 110.0)
    assert not window.is_duplicate(b"X", 200.0)  # outside the window: a new message


def test_the_window_forgets_old_payloads() -> None:
    window = DuplicateWindow(window_s=10)
    for i in range(1000):
        window.is_duplicate(str(i).encode(), float(i))
    assert len(window) <= 2 * 10 + 2  # two generations of a window at most


def test_a_payload_is_remembered_for_a_whole_window_across_generations() -> None:
    window = DuplicateWindow(window_s=10)
    for i in range(100):  # one payload a second, each seen again 9.5 s later
        assert not window.is_duplicate(str(i).encode(), float(i))
        if i >= 10:
            assert window.is_duplicate(str(i - 10).encode(), i - 0.5)
    assert not window.is_duplicate(b"0", 100.0)  # long gone


def test_the_window_is_bounded_by_max_entries() -> None:
    window = DuplicateWindow(window_s=10, max_entries=100)
    for i in range(10_000):  # all in one second
        window.is_duplicate(str(i).encode(), 1.0)
    assert len(window) <= 200


def test_a_zero_window_turns_deduplication_off() -> None:
    window = DuplicateWindow(window_s=0)
    assert not window.is_duplicate(b"X", 1.0)
    assert not window.is_duplicate(b"X", 1.0)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        FragmentAssembler(timeout_s=0)
    with pytest.raises(ValueError, match="window_s"):
        DuplicateWindow(window_s=-1)
