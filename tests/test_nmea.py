"""Line parsing: every kind of line real feeds send, and every way one breaks."""

from __future__ import annotations

from functools import reduce
from operator import xor

from hypothesis import given
from hypothesis import strategies as st

from ingest.nmea import FILTERED, MALFORMED, GatehouseTime, Sentence, Skip, parse_line, xor_checksum
from tests.helpers import position, sentence, tag_block

LINE = b"!AIVDM,1,1,,A,13HOI:0P0000VOHLCnHQKwvL05Ip,0*23"


def skip_reason(line: bytes) -> tuple[str, str]:
    result = parse_line(line)
    assert isinstance(result, Skip), result
    return result.outcome, result.reason


def test_a_real_sentence_parses_with_its_fields() -> None:
    result = parse_line(LINE)
    assert isinstance(result, Sentence)
    assert (result.frag_count, result.frag_num, result.channel, result.fill_bits) == (1, 1, b"A", 0)
    assert result.payload == b"13HOI:0P0000VOHLCnHQKwvL05Ip"
    assert result.time is None and result.station is None and result.group is None


def test_any_talker_and_vdo_are_accepted() -> None:
    for talker in ("AB", "BS", "SA", "AN", "=I"):
        for kind in ("VDM", "VDO"):
            line = sentence(f"{talker}{kind},1,1,,B,13HOI:0P0000VOHLCnHQKwvL05Ip,0")
            assert isinstance(parse_line(line), Sentence), line


def test_line_endings_and_whitespace_are_ignored() -> None:
    assert isinstance(parse_line(LINE + b"\r"), Sentence)
    assert isinstance(parse_line(b"  " + LINE + b" \r"), Sentence)


def test_tag_block_time_in_seconds_and_milliseconds() -> None:
    seconds = parse_line(tag_block(s="rx7", c=1635731889) + LINE)
    millis = parse_line(tag_block(c=1635731889123) + LINE)
    assert isinstance(seconds, Sentence) and isinstance(millis, Sentence)
    assert seconds.time == 1635731889.0 and seconds.station == "rx7"
    assert millis.time == 1635731889.123


def test_tag_block_group_is_kept_for_reassembly() -> None:
    result = parse_line(tag_block(g="1-2-4242", c=1635731889) + LINE)
    assert isinstance(result, Sentence) and result.group == b"4242"


def test_broken_tag_blocks_are_malformed() -> None:
    good = tag_block(c=1635731889)
    assert skip_reason(good[:-3] + b"00\\" + LINE) == (MALFORMED, "tag_block")  # bad checksum
    assert skip_reason(b"\\c:1635731889" + LINE) == (MALFORMED, "tag_block")  # not closed
    assert skip_reason(tag_block(c="yesterday") + LINE) == (MALFORMED, "timestamp")
    assert skip_reason(tag_block(c=12) + LINE) == (MALFORMED, "timestamp")  # 1970
    assert skip_reason(tag_block(g="1-2") + LINE) == (MALFORMED, "tag_block")
    assert skip_reason(tag_block(c=1635731889)) == (MALFORMED, "truncated")


def test_receiver_epoch_after_the_checksum() -> None:
    amsa = parse_line(LINE + b",1327664830")
    uscg = parse_line(LINE + b",b003669713,1241544035")
    assert isinstance(amsa, Sentence) and amsa.time == 1327664830.0
    assert isinstance(uscg, Sentence) and uscg.time == 1241544035.0
    assert isinstance(parse_line(LINE + b",rxname"), Sentence)  # not numeric: no time


def test_gatehouse_line_gives_a_time() -> None:
    result = parse_line(b"$PGHP,1,2010,6,11,11,46,11,390,231,45,992190934,1,2B*5B")
    assert result == GatehouseTime(1276256771.39)
    bad_date = "PGHP,1,2010,13,11,11,46,11,390,231,45,992190934,1,2B"
    assert skip_reason(f"${bad_date}*{reduce(xor, bad_date.encode(), 0):02X}".encode()) == (
        MALFORMED,
        "timestamp",
    )


def test_checksum_errors_and_truncation() -> None:
    assert skip_reason(LINE[:-2] + b"24") == (MALFORMED, "checksum")
    assert skip_reason(LINE[:-2] + b"ZZ") == (MALFORMED, "checksum")
    assert skip_reason(LINE[:30]) == (MALFORMED, "truncated")
    assert skip_reason(LINE.replace(b"13HOI", b"13hOI")) == (MALFORMED, "checksum")


def test_field_errors_are_named() -> None:
    assert skip_reason(sentence("AIVDM,1,1,,A,13HOI:0P0000VOHLCnHQKwvL05Ip,0,9")) == (MALFORMED, "fields")
    assert skip_reason(sentence("AIVDM,1,2,,A,13HOI:0P0000VOHLCnHQKwvL05Ip,0")) == (
        MALFORMED,
        "fragment_number",
    )
    assert skip_reason(sentence("AIVDM,1,1,,A,13HOI:0P0000VOHLCnHQKwvL05Ip,6")) == (MALFORMED, "fill_bits")
    assert skip_reason(sentence("AIVDM,1,1,,A,13HOI:0P0000VOHL{nHQKwvL05Ip,0")) == (MALFORMED, "payload")
    assert skip_reason(sentence("AIVDM,1,1,,A,,0")) == (MALFORMED, "payload")


def test_other_lines_are_filtered_or_malformed() -> None:
    assert skip_reason(b"") == (FILTERED, "blank")
    assert skip_reason(b"   \r") == (FILTERED, "blank")
    assert skip_reason(b"# a comment") == (FILTERED, "comment")
    assert skip_reason(b"$GPRMC,114705.00,A,1228.30801,S,13050.74933,E,0.006,,270112,,,D*7C") == (
        FILTERED,
        "other_sentence",
    )
    assert skip_reason(sentence("GPGSV,1,1,,A,xx,0")) == (FILTERED, "other_sentence")
    assert skip_reason(b"\xff\xfe\x00binary") == (MALFORMED, "not_ascii")
    assert skip_reason("!AIVDM,1,1,,A,é,0*00".encode()) == (MALFORMED, "not_ascii")
    assert skip_reason(b"hello world") == (MALFORMED, "unrecognised")
    assert skip_reason(b"!" + b"A" * 5000) == (MALFORMED, "line_too_long")


def test_pyais_encoded_positions_parse() -> None:
    assert isinstance(parse_line(position()), Sentence)


@given(st.binary(max_size=200))
def test_xor_checksum_is_the_xor_of_all_bytes(data: bytes) -> None:
    assert xor_checksum(data) == reduce(xor, data, 0)


@given(st.binary(max_size=300))
def test_parse_line_never_raises_on_any_bytes(data: bytes) -> None:
    assert isinstance(parse_line(data), Sentence | GatehouseTime | Skip)


def test_junk_after_the_checksum_is_malformed() -> None:
    assert skip_reason(LINE + b"\x00") == (MALFORMED, "trailer")
    assert skip_reason(LINE + b"garbage") == (MALFORMED, "trailer")
    assert skip_reason(LINE + b",1327664830\x01") == (MALFORMED, "trailer")
    broken = sentence("AIVDM,1,1,,A,13HOI:0P0000VOHLCnHQKwvL05Ip,0,extra")
    assert skip_reason(broken + b",1327664830") == (MALFORMED, "fields")  # diagnosed past a valid trailer


def test_odd_sequence_ids_and_channels_are_malformed() -> None:
    assert skip_reason(sentence("AIVDM,1,1,12,A,13HOI:0P0000VOHLCnHQKwvL05Ip,0")) == (MALFORMED, "fields")
    assert skip_reason(sentence("AIVDM,1,1,,AB,13HOI:0P0000VOHLCnHQKwvL05Ip,0")) == (MALFORMED, "fields")
    assert skip_reason(sentence("AIVDM,2,0,,A,13HOI:0P0000VOHLCnHQKwvL05Ip,0")) == (
        MALFORMED,
        "fragment_number",
    )


def test_a_checksum_in_mixed_case_is_still_hex() -> None:
    """Found by hypothesis on a mutated real line: a checksum such as 'aC' is
    valid hex and is checked, never a crash."""
    body = next(
        b
        for b in (
            f"AIVDM,1,1,,A,13HOI:0P0000VOHLCnHQKwvL05I{c},0"
            for c in "0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVW`abcdefghijklmnopqrstuvw"
        )
        if f"{reduce(xor, b.encode(), 0):02X}"[1] in "ABCDEF"  # ASCII: the first digit is 0-7
    )
    good = f"{reduce(xor, body.encode(), 0):02X}"
    mixed = good[0] + good[1].lower()
    assert isinstance(parse_line(f"!{body}*{mixed}".encode()), Sentence)
    wrong = f"{(int(good, 16) ^ 0x10):02X}"  # another first digit, the same (letter) second
    result = parse_line(f"!{body}*{wrong[0]}{wrong[1].lower()}".encode())
    assert isinstance(result, Skip) and result.reason == "checksum"
