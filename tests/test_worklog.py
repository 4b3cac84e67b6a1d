from datetime import UTC, datetime

from bot.worklog import (
    NONE_TEXT,
    SECTIONS,
    WORKLOG_FILE,
    WorkLogEntry,
    append_entry,
    parse_worklog,
    read_worklog,
    recent_entries,
    render_entry,
    render_entry_body,
)


def entry(**overrides) -> WorkLogEntry:
    fields = dict(
        title="Add profile endpoints",
        timestamp=datetime(2026, 11, 26, 14, 3, tzinfo=UTC),
        trigger="#42",
        task_summary="Added GET and PUT /profile.",
        files_modified=["`app/profile.py`: new endpoints", "`tests/test_profile.py`: tests"],
        key_decisions="Reused the existing auth dependency.\n\n```python\n## not a heading\n```",
        database_changes="",
        api_changes="- `GET /profile`\n- `PUT /profile`",
        dependencies="None.",
        testing_performed="pytest: 12 passed.",
        next_steps="Frontend can call the endpoints.",
        potential_issues="### Sub heading the model wrote\nRate limiting not done.\n---\nMore.",
    )
    fields.update(overrides)
    return WorkLogEntry(**fields)


def test_render_follows_the_design_format():
    text = render_entry(entry())
    lines = text.splitlines()
    assert lines[0] == "## 2026-11-26T14:03:00Z — Add profile endpoints (#42)"
    headings = [line[4:] for line in lines if line.startswith("### ")]
    assert headings == [heading for _, heading in SECTIONS]
    assert lines[-1] == "---"
    # Empty sections say None.; list input becomes bullets.
    db = text.split("### Database Changes\n", 1)[1].split("\n", 1)[0]
    assert db == NONE_TEXT
    assert "- `app/profile.py`: new endpoints" in text
    # A heading inside a section is demoted so it cannot split the entry.
    assert "#### Sub heading the model wrote" in text
    assert "## not a heading" in text  # inside a code fence: untouched
    assert "\n---\nMore." not in text  # a rule inside a section cannot close the entry


def test_render_parse_render_is_stable():
    original = entry()
    first = render_entry(original)
    parsed = parse_worklog(first)
    assert len(parsed) == 1
    assert parsed[0].title == "Add profile endpoints"
    assert parsed[0].trigger == "#42"
    assert parsed[0].timestamp == original.timestamp
    assert parsed[0].database_changes == ""
    assert render_entry(parsed[0]) == first
    # Twice over, several entries in one file.
    two = first + "\n" + render_entry(entry(title="Second", trigger=None, timestamp=None))
    assert "".join(render_entry(e) + "\n" for e in parse_worklog(two)).rstrip("\n") == two.rstrip("\n")


def test_a_heading_without_a_space_in_a_section_cannot_split_the_entry():
    # Markdown reads a bare `##` as a heading, the parser reads `##text` as one too.
    text = render_entry(entry(potential_issues="##\n##text\n###also\n#### kept"))
    [parsed] = parse_worklog(text)
    assert parsed.potential_issues == "####\n####text\n####also\n#### kept"


def test_the_parser_sees_the_code_fences_the_renderer_sees():
    # "```x`" opens no fence (a backtick in a backtick fence's info string); "```python"
    # inside a fence closes nothing. Either way the next entry is still an entry.
    first = render_entry(entry(title="First", potential_issues="```x` is inline code"))
    second = render_entry(entry(title="Second", key_decisions="```\n```python\n## text\n```"))
    third = render_entry(entry(title="Third"))
    assert [e.title for e in parse_worklog(first + "\n" + second + "\n" + third)] == [
        "First", "Second", "Third"]


def test_secrets_are_redacted_in_rendered_text():
    token = "ghs_" + "a" * 36
    text = render_entry(entry(testing_performed=f"used token {token}"))
    assert token not in text
    assert "[REDACTED]" in text


def test_append_creates_file_with_header_and_keeps_order(tmp_path):
    append_entry(tmp_path, entry(title="First"))
    append_entry(tmp_path, entry(title="Second", trigger="owner/repo#7"))
    text = (tmp_path / WORKLOG_FILE).read_text()
    assert text.startswith("# Backend work log")
    assert text.index("First") < text.index("Second")
    entries = read_worklog(tmp_path)
    assert [e.title for e in entries] == ["First", "Second"]
    assert entries[1].trigger == "owner/repo#7"
    assert [e.title for e in recent_entries(tmp_path, 1)] == ["Second"]
    assert recent_entries(tmp_path / "nowhere", 3) == []


def test_parses_a_hand_edited_file():
    text = """# Our log

Some intro text someone wrote.

## 2026-01-05 09:30 - Fix login bug (#12)

### 1. Task Summary:
Fixed the refresh-token check.

### Files Modified
- auth.py

### Testing
Manual.

### Notes from Ana
Check again next week.

## Manual entry without timestamp

**Task Summary**: Cleaned up migrations.
**Database Changes**
Dropped the old `tmp_users` table.

---

Trailing text after a rule.

## 2026-02-01T10:00:00+01:00 – Upgrade deps (#99)
### Dependencies Added/Updated
- fastapi 0.115
### Potential Issues
None.
"""
    entries = parse_worklog(text)
    assert [e.title for e in entries] == ["Fix login bug", "Manual entry without timestamp", "Upgrade deps"]
    first, second, third = entries
    assert first.timestamp == datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    assert first.trigger == "#12"
    assert first.task_summary == "Fixed the refresh-token check."
    assert first.files_modified == "- auth.py"
    assert first.testing_performed == "Manual."
    assert first.extra == {"Notes from Ana": "Check again next week."}
    assert second.timestamp is None and second.trigger is None
    assert second.task_summary == "Cleaned up migrations."
    assert second.database_changes.startswith("Dropped the old")
    assert "Trailing text" not in render_entry(second)
    assert third.timestamp == datetime(2026, 2, 1, 9, 0, tzinfo=UTC)
    assert third.dependencies == "- fastapi 0.115"
    assert third.potential_issues == ""
    # Whatever was parsed renders and re-parses to the same thing.
    for e in entries:
        assert render_entry(parse_worklog(render_entry(e))[0]) == render_entry(e)


def test_unknown_trailing_parenthesis_stays_in_title():
    [parsed] = parse_worklog("## 2026-01-01T00:00:00Z — Support UTF-8 (emoji) in names\n")
    assert parsed.title == "Support UTF-8 (emoji) in names"
    assert parsed.trigger is None


def test_body_for_pull_request_has_no_heading_or_rule():
    body = render_entry_body(entry())
    assert body.startswith("### Task Summary")
    assert not body.rstrip().endswith("---")
