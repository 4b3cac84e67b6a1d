"""BACKEND_WORK_LOG.md merged entry by entry, for a bot branch the default branch moved under.

Both branches append to the end of one file, so git sees two insertions at one place and stops
with a conflict; GitHub's merge button then refuses the pull request, whatever a
`.gitattributes` merge driver says. The answer is always the same: the default branch's file
as it is, then the entries the branch added, oldest first.

Entries are the raw text of their blocks (`bot.worklog.split_blocks`), never re-rendered, so
hand edits on either side survive byte for byte; blocks are compared normalised
(`normalise_block`), so an entry both sides carry is kept once.

A branch that changed or removed an entry the merge base had did more than append: keeping
the default branch's version would lose that edit, keeping both would double the entry. So
would an entry of the branch's that the default branch carries reworded (same heading, other
text). Such logs are not merged here (`WorklogConflict`); a person decides.
"""

from __future__ import annotations

from bot.errors import BotError
from bot.worklog import WORKLOG_HEADER, block_timestamp, normalise_block, split_blocks


class WorklogConflict(BotError):
    """The two logs differ in a way that appending entries cannot settle."""


def merge_worklog(base: str | None, theirs: str | None, ours: str | None) -> str | None:
    """The work log once the default branch (`theirs`) is merged into a bot branch (`ours`),
    `base` being their merge base's; None stands for no file, on input and output."""
    _, base_blocks = split_blocks(base or "")
    _, their_blocks = split_blocks(theirs or "")
    _, our_blocks = split_blocks(ours or "")

    ours_normalised = {normalise_block(block) for block in our_blocks}
    if any(normalise_block(block) not in ours_normalised for block in base_blocks):
        raise WorklogConflict("the branch changed or removed entries that were already in the "
                              "work log before it; only added entries are merged by the bot")

    seen = {normalise_block(block) for block in base_blocks + their_blocks}
    their_headings = {_heading(block) for block in their_blocks}
    added = []
    for block in our_blocks:
        normalised = normalise_block(block)
        if normalised in seen:
            continue
        seen.add(normalised)
        if _heading(block) in their_headings:
            raise WorklogConflict("an entry this branch added differs from the default "
                                  "branch's copy of it")
        added.append(block)
    if not added:
        return theirs

    existing = theirs or ""
    eol = _line_ending(existing) or _line_ending(ours or "") or "\n"
    pieces = [_trimmed(block, eol) for block in _oldest_first(added)]
    if not existing.strip():
        # As `append_entry` starts a log: the header, then the entries.
        return WORKLOG_HEADER.replace("\n", eol) + eol.join(pieces)
    if not existing.endswith(("\n", "\r")):
        existing += eol
    return existing + "".join(eol + piece for piece in pieces)


def _heading(block: str) -> str:
    lines = block.splitlines()
    return " ".join(lines[0].split()) if lines else ""


def _oldest_first(blocks: list[str]) -> list[str]:
    """The dated blocks sorted by their headings' timestamps, in the places dated blocks held;
    a block without a timestamp (made by hand) keeps its place."""
    times = {i: time for i, block in enumerate(blocks) if (time := block_timestamp(block))}
    dated = iter(sorted(times, key=times.__getitem__))
    return [blocks[next(dated)] if i in times else block for i, block in enumerate(blocks)]


def _line_ending(text: str) -> str | None:
    """The line ending of the text's first line (None for text of one line without one)."""
    first = text.splitlines(keepends=True)[:1]
    if not first:
        return None
    for ending in ("\r\n", "\n", "\r"):
        if first[0].endswith(ending):
            return ending
    return None


def _trimmed(block: str, eol: str) -> str:
    """The block without its trailing blank lines, ending with a line ending."""
    lines = block.splitlines(keepends=True)
    while lines and not lines[-1].strip():
        lines.pop()
    text = "".join(lines)
    return text if text.endswith(("\n", "\r")) else text + eol
