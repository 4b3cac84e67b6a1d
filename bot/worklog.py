"""BACKEND_WORK_LOG.md: the typed entry, its Markdown form, and a tolerant parser.

The format is a contract (README.md, "`BACKEND_WORK_LOG.md`")::

    ## 2026-11-26T14:03:00Z — Add profile endpoints (#42)

    ### Task Summary
    Added GET/PUT /profile.

    ### Files Modified/Created
    ...
    (the nine sections, in order; an empty one says "None.")

    ---

Entries are appended newest last. `parse_worklog` reads the file back, accepting hand edits:
other heading levels for sections, numbered or bold section names, missing `---`, missing or
odd timestamps, unknown sections (kept in `extra`). Rendered text is passed through
`bot.redact.redact`, so a token that slipped into a section never reaches the file or a PR.
`split_blocks` cuts the file the way the parser does, into the raw text of each entry, for
`bot.worklog_merge`, which must not re-render what people wrote.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field, field_validator

from bot import confined
from bot.redact import redact

WORKLOG_FILE = "BACKEND_WORK_LOG.md"

WORKLOG_HEADER = """# Backend work log

What the backend-engineer agent did in this repository and why, newest entry last.
Each entry is written by backend-bot at the end of a run; the bot reads the recent ones
before starting new work, so keep the headings if you edit by hand.

"""

# (field name, heading) in the order the format fixes.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("task_summary", "Task Summary"),
    ("files_modified", "Files Modified/Created"),
    ("key_decisions", "Key Implementation Decisions"),
    ("database_changes", "Database Changes"),
    ("api_changes", "API Changes"),
    ("dependencies", "Dependencies Added/Updated"),
    ("testing_performed", "Testing Performed"),
    ("next_steps", "Next Steps/Dependencies"),
    ("potential_issues", "Potential Issues"),
)
SECTION_FIELDS = tuple(name for name, _ in SECTIONS)
NONE_TEXT = "None."


def _to_markdown_text(value: object) -> str:
    """Accept a string or a list of strings (rendered as bullets); strip the ends."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        lines = []
        for item in value:
            item = str(item).strip()
            if item:
                lines.append(item if item.startswith(("- ", "* ")) else f"- {item}")
        return "\n".join(lines)
    return str(value).strip()


class WorkLogEntry(BaseModel):
    """One run of the agent, in the nine sections of the seed's work log."""

    title: str
    timestamp: datetime | None = None
    trigger: str | None = None  # "#42", "owner/repo#42"; None for local runs
    task_summary: str = ""
    files_modified: str = ""
    key_decisions: str = ""
    database_changes: str = ""
    api_changes: str = ""
    dependencies: str = ""
    testing_performed: str = ""
    next_steps: str = ""
    potential_issues: str = ""
    # Sections a human added by hand, kept (heading -> text) so a rewrite loses nothing.
    extra: dict[str, str] = Field(default_factory=dict)

    @field_validator("title", mode="before")
    @classmethod
    def _one_line_title(cls, value: object) -> str:
        text = " ".join(str(value or "").split())
        return text or "Untitled change"

    @field_validator(*SECTION_FIELDS, mode="before")
    @classmethod
    def _section_text(cls, value: object) -> str:
        text = _to_markdown_text(value)
        return "" if text == NONE_TEXT else text

    @field_validator("timestamp", mode="after")
    @classmethod
    def _utc_seconds(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).replace(microsecond=0)

    def sections(self) -> list[tuple[str, str]]:
        """(heading, text) for the nine sections in order, then any extra ones."""
        out = [(heading, getattr(self, name)) for name, heading in SECTIONS]
        out.extend(self.extra.items())
        return out


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def format_timestamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_FENCE_RE = re.compile(r"^\s{0,3}(`{3,}|~{3,})(.*)$")
# A heading by Markdown's rules (`#` to `###` then a space or the end of the line), or by this
# parser's, which also reads `##text` and `###text` as headings.
_BODY_HEADING_RE = re.compile(r"^(\s{0,3})(?:#{2,3}(?!#)|#(?=\s|$))")


def _fence_after(fence: str | None, line: str) -> tuple[str | None, bool]:
    """The code fence open after `line` (None: none), and whether the line opens or closes
    one. As Markdown has it: a backtick fence's info string holds no backtick, and only a bare
    fence of the same character, at least as long, closes one ("````python" inside is text)."""
    marker = _FENCE_RE.match(line)
    if not marker:
        return fence, False
    token, rest = marker.groups()
    if fence is None:
        if token[0] == "`" and "`" in rest:
            return None, False
        return token, True
    if token[0] == fence[0] and len(token) >= len(fence) and not rest.strip():
        return None, True
    return fence, False


def _demote_headings(text: str) -> str:
    """Keep a section's own headings and rules from splitting or closing the entry."""
    out: list[str] = []
    fence: str | None = None
    for line in text.splitlines():
        inside = fence is not None
        fence, marker = _fence_after(fence, line)
        if not (inside or marker):
            line = _BODY_HEADING_RE.sub(lambda m: m.group(1) + "####", line)
            if _RULE_RE.match(line):
                line = "* * *"  # a bare rule would close the entry (or make a setext heading)
        out.append(line)
    if fence is not None:  # an unclosed fence would swallow the rest of the entry
        out.append(fence)
    return "\n".join(out)


def heading_line(entry: WorkLogEntry) -> str:
    parts = []
    if entry.timestamp is not None:
        parts.append(format_timestamp(entry.timestamp))
    title = entry.title
    if entry.trigger:
        title = f"{title} ({entry.trigger})"
    parts.append(title)
    return "## " + " — ".join(parts)


def render_entry(entry: WorkLogEntry) -> str:
    """The entry as Markdown, opened by its `##` heading and closed by `---`, secrets redacted."""
    lines = [heading_line(entry), ""]
    for heading, text in entry.sections():
        lines.append(f"### {heading}")
        lines.append(_demote_headings(text) if text.strip() else NONE_TEXT)
        lines.append("")
    lines.append("---")
    return redact("\n".join(lines) + "\n")


def render_entry_body(entry: WorkLogEntry) -> str:
    """The nine sections without the `##` heading and `---` (a pull request's description)."""
    text = render_entry(entry)
    body = text.split("\n", 2)[2]
    return body.rstrip().removesuffix("---").rstrip() + "\n"


# ----------------------------------------------------------------------------------------
# Parsing

_ENTRY_HEADING_RE = re.compile(r"^##(?!#)\s*(.*?)\s*#*\s*$")
_TIMESTAMP_RE = re.compile(
    r"^\[?(\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?\s*(?:Z|UTC|[+-]\d{2}:?\d{2})?)\]?"
)
_SEPARATOR_RE = re.compile(r"^\s*(?:—|–|-{1,2}|:|\|)\s*")
_TRIGGER_RE = re.compile(r"\s*\(((?:[\w.-]+/[\w.-]+)?#\d+)\)\s*$")
_H3_RE = re.compile(r"^\s{0,3}###(?!#)\s*(.+?)\s*#*\s*$")
_BOLD_RE = re.compile(r"^\s{0,3}(?:\d+[.)]\s*)?\*\*([^*]+?)\*\*:?\s*(.*)$")
_RULE_RE = re.compile(r"^\s{0,3}(?:-{3,}|\*{3,}|_{3,})\s*$")


def _section_key(name: str) -> str | None:
    """Map a heading as people write it to one of the nine fields."""
    text = re.sub(r"^\s*\d+[.)]\s*", "", name).strip().strip("*:_ ").lower()
    text = re.sub(r"\s+", " ", text)
    if text.startswith(("task summary", "summary")):
        return "task_summary"
    if text.startswith("files"):
        return "files_modified"
    if "decision" in text:
        return "key_decisions"
    if text.startswith(("database", "db ", "schema", "migration")):
        return "database_changes"
    if text.startswith("api"):
        return "api_changes"
    if text.startswith("next step"):
        return "next_steps"
    if text.startswith("dependenc"):
        return "dependencies"
    if text.startswith(("testing", "tests", "test ")):
        return "testing_performed"
    if text.startswith(("potential issue", "issues", "known issue", "risks")):
        return "potential_issues"
    return None


def _parse_timestamp(text: str) -> datetime | None:
    raw = text.strip().replace("UTC", "").strip()
    if raw.endswith("Z"):
        raw = raw[:-1] + "+00:00"
    raw = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", raw)
    try:
        value = datetime.fromisoformat(raw.replace(" ", "T", 1) if "T" not in raw else raw)
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def _parse_heading(text: str) -> tuple[datetime | None, str, str | None]:
    timestamp = None
    match = _TIMESTAMP_RE.match(text)
    if match:
        timestamp = _parse_timestamp(match.group(1))
        if timestamp is not None:
            text = _SEPARATOR_RE.sub("", text[match.end() :], count=1)
    trigger = None
    match = _TRIGGER_RE.search(text)
    if match:
        trigger = match.group(1)
        text = text[: match.start()]
    return timestamp, text.strip(), trigger


def _split_sections(lines: list[tuple[str, bool]]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Split an entry's lines into a preamble and (heading, lines) sections.

    `###` headings when the entry has any; otherwise lines opening with a bold section name
    (`**Task Summary**: ...`, `1. **Files Modified/Created**`), the seed's list style.
    """
    uses_h3 = any(not fenced and _H3_RE.match(line) for line, fenced in lines)
    preamble: list[str] = []
    sections: list[tuple[str, list[str]]] = []
    for line, fenced in lines:
        if not fenced and _RULE_RE.match(line):
            break  # the entry's closing `---`: what follows, up to the next entry, is not ours
        if not fenced:
            if uses_h3:
                match = _H3_RE.match(line)
                if match:
                    sections.append((match.group(1).rstrip(":").strip(), []))
                    continue
            else:
                match = _BOLD_RE.match(line)
                if match and _section_key(match.group(1)):
                    sections.append((match.group(1).rstrip(":").strip(), []))
                    if match.group(2).strip():
                        sections[-1][1].append(match.group(2).strip())
                    continue
        (sections[-1][1] if sections else preamble).append(line)
    return preamble, sections


def _finish(block: dict) -> WorkLogEntry:
    preamble_lines, sections = _split_sections(block["lines"])
    fields: dict[str, str] = {}
    extra: dict[str, str] = {}
    for heading, lines in sections:
        while lines and (not lines[-1].strip() or _RULE_RE.match(lines[-1])):
            lines.pop()
        text = "\n".join(lines).strip("\n").strip()
        if text == NONE_TEXT:
            text = ""
        key = _section_key(heading)
        if key is None:
            extra[heading] = text
        elif fields.get(key) and text:
            fields[key] = f"{fields[key]}\n\n{text}"
        elif not fields.get(key):
            fields[key] = text
    while preamble_lines and (not preamble_lines[-1].strip() or _RULE_RE.match(preamble_lines[-1])):
        preamble_lines.pop()
    preamble = "\n".join(preamble_lines).strip()
    if preamble and not fields.get("task_summary"):
        fields["task_summary"] = preamble
    return WorkLogEntry(
        title=block["title"],
        timestamp=block["timestamp"],
        trigger=block["trigger"],
        extra=extra,
        **fields,
    )


def _scan(lines: Iterable[str]) -> Iterator[tuple[str, bool]]:
    """Each line with whether it belongs to a code fence (the fence's own lines included):
    a `## ` inside a fence is text, not the start of an entry. The fences are the ones
    `render_entry` writes, so what it renders parses back as it was."""
    fence: str | None = None
    for line in lines:
        inside = fence is not None
        fence, marker = _fence_after(fence, line)
        yield line, inside or marker


def split_blocks(text: str) -> tuple[str, list[str]]:
    """The text before the first entry, and each entry's raw text from its `##` heading up to
    the next one (its `---` and blank lines included). Nothing is re-rendered: joined back,
    the pieces are the text byte for byte, line endings included."""
    preamble: list[str] = []
    blocks: list[list[str]] = []
    scanned = _scan(text.splitlines())
    for (line, in_fence), raw in zip(scanned, text.splitlines(keepends=True), strict=True):
        if not in_fence and _ENTRY_HEADING_RE.match(line):
            blocks.append([])
        (blocks[-1] if blocks else preamble).append(raw)
    return "".join(preamble), ["".join(block) for block in blocks]


def normalise_block(block: str) -> str:
    """A block as compared with others: what an editor or a merge changes without meaning to
    (line endings, trailing spaces, blank lines, the closing `---`) taken out."""
    lines = [line.rstrip() for line in block.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    if lines and _RULE_RE.match(lines[-1]):
        lines.pop()
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def block_timestamp(block: str) -> datetime | None:
    """The timestamp in an entry's `##` heading (the first line of a block), if it has one."""
    lines = block.splitlines()
    heading = _ENTRY_HEADING_RE.match(lines[0]) if lines else None
    return _parse_heading(heading.group(1))[0] if heading else None


def parse_worklog(text: str) -> list[WorkLogEntry]:
    """Every `##` entry in the text, oldest first; text before the first entry is ignored."""
    entries: list[WorkLogEntry] = []
    block: dict | None = None
    for line, in_fence in _scan(text.splitlines()):
        if not in_fence:
            heading = _ENTRY_HEADING_RE.match(line)
            if heading:
                if block is not None:
                    entries.append(_finish(block))
                timestamp, title, trigger = _parse_heading(heading.group(1))
                block = {"timestamp": timestamp, "title": title, "trigger": trigger, "lines": []}
                continue
        if block is not None:
            block["lines"].append((line, in_fence))
    if block is not None:
        entries.append(_finish(block))
    return entries


WORKLOG_MAX_BYTES = 20 * 1024 * 1024


def read_worklog(repo_root: Path) -> list[WorkLogEntry]:
    """The entries of the repository's work log; [] when it does not exist.

    The workspace is the attacker's: the file is read without following links and with a cap
    (`bot.confined`), and a link or special file in its place raises `UnsafePath`.
    """
    text = confined.read_text(Path(repo_root), WORKLOG_FILE, max_bytes=WORKLOG_MAX_BYTES)
    return parse_worklog(text) if text is not None else []


def recent_entries(repo_root: Path, count: int = 3) -> list[WorkLogEntry]:
    """The newest `count` entries of the repository's work log, oldest first."""
    if count <= 0:
        return []
    return read_worklog(repo_root)[-count:]


def append_entry(repo_root: Path, entry: WorkLogEntry) -> Path:
    """Add the entry at the end of BACKEND_WORK_LOG.md, creating the file with a header.

    Never writes through a link the agent may have left in the file's place (`UnsafePath`).
    """
    root = Path(repo_root)
    rendered = render_entry(entry)
    existing = confined.read_text(root, WORKLOG_FILE, max_bytes=WORKLOG_MAX_BYTES) or ""
    if existing.strip():
        if not existing.endswith("\n"):
            existing += "\n"
        text = existing + "\n" + rendered
    else:
        text = WORKLOG_HEADER + rendered
    confined.write_text(root, WORKLOG_FILE, text)
    return root / WORKLOG_FILE
