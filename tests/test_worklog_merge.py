"""BACKEND_WORK_LOG.md merged entry by entry (bot.worklog_merge): the default branch's file as
it is, then the branch's own entries oldest first, none lost, none doubled."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.worklog import (
    WORKLOG_HEADER,
    WorkLogEntry,
    block_timestamp,
    normalise_block,
    parse_worklog,
    render_entry,
    split_blocks,
)
from bot.worklog_merge import WorklogConflict, merge_worklog


def entry(title: str, day: int | None, summary: str = "Did it.") -> str:
    timestamp = datetime(2026, 3, day, 12, 0, tzinfo=UTC) if day else None
    return render_entry(WorkLogEntry(title=title, timestamp=timestamp, trigger="#1",
                                     task_summary=summary))


def log(*entries: str, header: str = WORKLOG_HEADER) -> str:
    """A log as `append_entry` writes it."""
    return header + "\n".join(entries)


def titles(text: str) -> list[str]:
    return [e.title for e in parse_worklog(text)]


FIRST, MAIN, MINE = entry("First", 1), entry("Merged first", 5), entry("Mine", 3)


def test_the_default_branchs_log_as_it_is_then_the_branchs_entries():
    base = log(FIRST)
    theirs = log(FIRST, MAIN)
    merged = merge_worklog(base, theirs, log(FIRST, MINE))
    assert merged == theirs + "\n" + MINE
    assert titles(merged) == ["First", "Merged first", "Mine"]


def test_the_branchs_entries_are_ordered_by_time():
    later, earlier = entry("Later", 9), entry("Earlier", 2)
    merged = merge_worklog(log(FIRST), log(FIRST, MAIN), log(FIRST, later, earlier))
    assert titles(merged) == ["First", "Merged first", "Earlier", "Later"]


def test_entries_without_a_timestamp_keep_their_places():
    late, hand, early = entry("Late", 9), entry("By hand", None), entry("Early", 2)
    first_hand = entry("Hand first", None)
    merged = merge_worklog(log(FIRST), log(FIRST, MAIN), log(FIRST, first_hand, late, hand, early))
    assert titles(merged)[2:] == ["Hand first", "Early", "By hand", "Late"]


def test_no_merge_base_both_sides_created_the_file():
    # Two branches that each started the log: git has no stage 1 for it.
    merged = merge_worklog(None, log(MAIN), log(MINE))
    assert merged == log(MAIN, MINE)


def test_a_header_only_merge_base():
    merged = merge_worklog(WORKLOG_HEADER, log(MAIN), log(MINE))
    assert merged == log(MAIN, MINE)


def test_logs_without_a_header():
    merged = merge_worklog(FIRST, FIRST + "\n" + MAIN, FIRST + "\n" + MINE)
    assert merged == FIRST + "\n" + MAIN + "\n" + MINE


def test_an_entry_both_sides_added_is_kept_once():
    # The default branch carries it with an editor's touch: CRLF, trailing spaces, no `---`.
    touched = MINE.replace("Did it.", "Did it.   ").removesuffix("---\n").replace("\n", "\r\n")
    other = entry("Other", 4)
    merged = merge_worklog(log(FIRST), log(FIRST, touched), log(FIRST, MINE, other))
    assert merged == log(FIRST, touched) + "\n" + other
    assert titles(merged) == ["First", "Mine", "Other"]


def test_the_branch_merged_again_changes_nothing():
    theirs = log(FIRST, MAIN)
    merged = merge_worklog(log(FIRST), theirs, log(FIRST, MINE))
    assert merge_worklog(theirs, theirs, merged) == merged


def test_crlf_files_stay_crlf():
    def crlf(text: str) -> str:
        return text.replace("\n", "\r\n")

    theirs = crlf(log(FIRST, MAIN))
    merged = merge_worklog(crlf(log(FIRST)), theirs, crlf(log(FIRST, MINE)))
    assert merged == theirs + "\r\n" + crlf(MINE)
    assert "\n" not in merged.replace("\r\n", "")


def test_an_lf_entry_appended_to_a_crlf_log_is_separated_in_crlf():
    theirs = log(FIRST, MAIN).replace("\n", "\r\n").removesuffix("\r\n")  # no final newline
    merged = merge_worklog(log(FIRST), theirs, log(FIRST, MINE))
    assert merged == theirs + "\r\n\r\n" + MINE


def test_hand_edits_survive_byte_for_byte():
    theirs = ("# Our log\n\nIntro   \n\n## 2026-01-05 09:30 - Fix login (#12)\n"
              "**Task Summary**: fixed it\n\n## Manual entry\n* * *\ntrailing\n")
    # Hand-edited entry the branch added, with bytes that are not UTF-8 (read with
    # surrogateescape, as the flow reads git's blobs).
    mine = ("## 2026-03-03T12:00:00Z —  Mine, edited (#1)  \n\n### Task Summary\n"
            + b"caf\xe9 \xff".decode("utf-8", "surrogateescape") + "\n```\n## not an entry\n```\n")
    merged = merge_worklog("", theirs, mine)
    assert merged == theirs + "\n" + mine
    assert merged.encode("utf-8", "surrogateescape").endswith(b"caf\xe9 \xff\n```\n## not an entry\n```\n")


def test_the_file_missing_on_the_default_branch():
    assert merge_worklog(log(FIRST), None, log(FIRST, MINE)) == log(MINE)
    assert merge_worklog(log(FIRST), None, log(FIRST)) is None


def test_the_file_missing_on_the_branch():
    assert merge_worklog(WORKLOG_HEADER, log(MAIN), None) == log(MAIN)
    with pytest.raises(WorklogConflict):
        merge_worklog(log(FIRST), log(FIRST, MAIN), None)


def test_an_entry_the_branch_changed_is_not_merged():
    edited = FIRST.replace("Did it.", "Did it, and more.")
    with pytest.raises(WorklogConflict, match="changed or removed"):
        merge_worklog(log(FIRST), log(FIRST, MAIN), log(edited, MINE))


def test_two_versions_of_one_new_entry_are_not_merged():
    theirs_copy = MINE.replace("Did it.", "Did it (squashed and reworded).")
    with pytest.raises(WorklogConflict, match="differs from the default branch"):
        merge_worklog(log(FIRST), log(FIRST, theirs_copy), log(FIRST, MINE))


def test_a_heading_in_a_code_fence_does_not_start_an_entry():
    text = "intro\n## 2026-01-01T00:00:00Z — A\n```\n## 2026-01-02T00:00:00Z — B\n```\n---\n"
    preamble, blocks = split_blocks(text)
    assert preamble == "intro\n" and len(blocks) == 1
    assert block_timestamp(blocks[0]) == datetime(2026, 1, 1, tzinfo=UTC)


# -- properties ------------------------------------------------------------------------------

_words = st.text(alphabet="abc XYZ#`~-*_.=>|\t\n", max_size=60)


@st.composite
def entries(draw, count: int, first_number: int) -> list[str]:
    """`count` distinct entries as `render_entry` writes them, some without a timestamp."""
    out = []
    for number in range(first_number, first_number + count):
        timestamp = draw(st.none() | st.datetimes(
            min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)))
        out.append(render_entry(WorkLogEntry(
            title=f"Entry {number}", timestamp=timestamp, task_summary=draw(_words),
            potential_issues=draw(_words))))
    return out


def _hand_touched(block: str, how: str) -> str:
    if how == "crlf":
        return block.replace("\n", "\r\n")
    if how == "no rule":
        return block.removesuffix("---\n")
    if how == "spaces":
        return block.replace("\n", "  \n", 1)
    return block


@st.composite
def three_logs(draw):
    shared = draw(entries(draw(st.integers(0, 4)), 0))
    mine = draw(entries(draw(st.integers(0, 4)), 100))
    main = draw(entries(draw(st.integers(0, 4)), 200))
    # Some of the branch's entries reached the default branch too (a squash merge, say).
    both = [e for e in mine if draw(st.booleans())]
    touch = st.sampled_from(["as is", "crlf", "no rule", "spaces"])
    theirs_entries = shared + main + [_hand_touched(e, draw(touch)) for e in both]
    theirs_entries = draw(st.permutations(theirs_entries))
    header = draw(st.sampled_from([WORKLOG_HEADER, "", "# Log\n\n"]))
    base = header + "\n".join(shared)
    theirs = header + "\n".join(theirs_entries)
    ours = header + "\n".join(shared + draw(st.permutations(mine)))
    return base, theirs, ours, mine, both


@settings(max_examples=300, deadline=None)
@given(three_logs())
def test_no_entry_is_lost_or_doubled(logs):
    base, theirs, ours, mine, both = logs
    merged = merge_worklog(base, theirs, ours)
    assert merged is not None
    if theirs.strip():
        assert merged.startswith(theirs)  # the default branch's file, byte for byte

    def counted(text: str) -> Counter:
        return Counter(normalise_block(block) for block in split_blocks(text)[1])

    new = {normalise_block(e) for e in mine if e not in both}
    assert counted(merged) == counted(theirs) + Counter(new)
    assert len(parse_worklog(merged)) == len(split_blocks(merged)[1])

    # The branch's new entries come last: the dated ones oldest first, the others where the
    # branch had them.
    tail = split_blocks(merged)[1][-len(new):] if new else []
    dated = [block_timestamp(b) for b in tail if block_timestamp(b)]
    assert dated == sorted(dated)
    added = [b for b in split_blocks(ours)[1] if normalise_block(b) in new]
    assert [normalise_block(b) for b in tail if not block_timestamp(b)] == [
        normalise_block(b) for b in added if not block_timestamp(b)]
    assert [bool(block_timestamp(b)) for b in tail] == [bool(block_timestamp(b)) for b in added]

    # Merging the default branch again, once nothing moved, changes nothing.
    assert merge_worklog(theirs, theirs, merged) == merged


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab#`~ -\r\n\u2028", max_size=200))
def test_blocks_put_back_together_are_the_text(text):
    preamble, blocks = split_blocks(text)
    assert preamble + "".join(blocks) == text
    assert len(blocks) == len(parse_worklog(text))
