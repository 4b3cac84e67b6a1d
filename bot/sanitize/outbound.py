"""The agent's text, before it reaches GitHub: nothing in it may act there.

Whatever the agent read may have steered what it writes. `neutralise` keeps its text from
acting on GitHub: mentions become inline code (no notification), so does the reference after
a closing keyword (nothing closes but what the bot adds itself), HTML comments go (no hidden
text, no fake `<!-- backend-bot:… -->` markers), images become links (nothing loads from a
host the agent chose) and raw HTML is escaped (it could hide text or load images too).

Code, as GitHub renders it (`bot.sanitize.markdown`), is left as it is: there all of that is
visible, inert text.
"""

from __future__ import annotations

import html
import re
from urllib.parse import quote

from bot.sanitize.markdown import (
    ATTRIBUTE,
    CODE,
    COMMENT,
    ESCAPE,
    HTML_TAG,
    INVISIBLE,
    URL_START,
    Reading,
    replace,
    runs,
    unix_newlines,
)

# A token runs on over what would become active right after the wrapper made of it, where a
# word character used to hold it back (`@a@b`, `#2fixes #3`, `#2\@a`). Emphasis marks do not
# join words on GitHub, so `_` does not hold back a mention or keyword before it.
_RUN_ON = r"(?:[A-Za-z0-9_@-]|\\@)*"
_MENTION = rf"@[A-Za-z0-9][A-Za-z0-9_-]*(?:/[A-Za-z0-9][A-Za-z0-9_-]*)?{_RUN_ON}"
_REFERENCE = (
    r"(?:https?://[^\s/`<>()\[\]]+/[^\s/`<>()\[\]]+/[^\s/`<>()\[\]]+/(?:issues|pull)/\d+"
    rf"|(?:[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)?#\d+|GH-\d+){_RUN_ON}"
)
_CLOSING_KEYWORD = r"(?<![A-Za-z0-9])(?i:close[sd]?|fix(?:e[sd])?|resolve[sd]?)(?![A-Za-z0-9])[\s:*_~\[(]*"
_ACTIVE = rf"(?P<mention>(?<![A-Za-z0-9]){_MENTION})|(?P<keyword>{_CLOSING_KEYWORD})(?P<reference>{_REFERENCE})"
_ACTIVE_TEXT = re.compile(_ACTIVE)
_MENTION_TEXT = re.compile(_MENTION)
# What `neutralise` makes of a mention or closing reference (at the start of a run).
_WRAPPED = re.compile(rf"`(?:{_MENTION}|{_REFERENCE})`(?!`)")
_OUTBOUND = re.compile(
    rf"{ESCAPE.pattern}|`+|!\[|<(?=\S)|(?P<mention>{_MENTION})"
    rf"|(?P<keyword>{_CLOSING_KEYWORD})(?P<reference>{_REFERENCE})"
)
# In a URL, `@name` is better spelled `%40name` than broken by backticks: the same address,
# and never a mention, whether GitHub makes the URL a link or not.
_URL = re.compile(rf"(?:{URL_START.pattern})\S*", re.I)
# The bot's own markers go even from code: the bot finds its comments by them.
_BOT_MARKER = re.compile(r"<!--\s*backend-bot:.*?-->", re.S)
_CHARACTER_REFERENCE = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|commat|num);")
_URL_UNSAFE = re.compile(r"[\s()<>`\\\[\]\"'@]")


def neutralise(text: str, *, markdown: bool = True) -> str:
    """Text the agent wrote, made unable to act on GitHub; code is left as it is.

    Outside code, `@login` and `@org/team` become inline code, and so does the reference after
    a closing keyword (`fixes #2`, `Closes: o/r#7`, `resolves https://…/issues/3`); HTML
    comments are removed, images become links (`[image: alt](url)`) and raw HTML is escaped.
    Invisible characters and the bot's own markers go from everywhere. Idempotent.

    `markdown=False` is for text GitHub reads as plain text (a commit message, where a closing
    keyword closes whatever surrounds it): every mention and closing reference is made inert.
    """
    text = INVISIBLE.sub("", unix_newlines(text or ""))
    text = replace(text, [(m.start(), m.end(), _gap(text, m.start(), m.end()))
                          for m in _BOT_MARKER.finditer(text)])
    if not markdown:
        return _ACTIVE_TEXT.sub(lambda match: _wrap_plain(text, match), text)
    text = _without_comments(text)
    text = _with_references_decoded(text)
    return _inert(text, Reading(text, raw_html=False, wrapped=_WRAPPED))


def neutralise_line(text: str) -> str:
    """Agent text for one line of a bot message (a title, a plan item, a summary): flattened
    first, since flattening a neutralised text could turn a code block back into prose."""
    return neutralise(" ".join((text or "").split()))


def blockquote(text: str) -> str:
    """Text quoted line by line, so the quote keeps the structure that was read; neutralised
    as quoted, because quoting changes what is code (a fence inside a quote is read as prose
    here): GitHub gets the text that was judged, over-cautious inside code, never under."""
    return neutralise("\n".join(f"> {line}" if line.strip() else ">" for line in text.splitlines()))


def _without_comments(text: str) -> str:
    reading = Reading(text, raw_html=False, wrapped=_WRAPPED)
    return replace(text, [(start, end, _gap(text, start, end))
                          for start, end in runs(reading.kind, COMMENT)])


def _with_references_decoded(text: str) -> str:
    """Character references in prose that spell letters, digits, `@` or `#`, decoded, so that
    `&#64;login` is seen for the mention it is. None of them changes what is code."""
    edits = []
    for match in _CHARACTER_REFERENCE.finditer(Reading(text, raw_html=False, wrapped=_WRAPPED).prose_view()):
        char = html.unescape(match.group())
        if len(char) == 1 and char.isascii() and (char.isalnum() or char in "@#"):
            edits.append((match.start(), match.end(), char))
    return replace(text, edits)


def _inert(text: str, reading: Reading) -> str:
    out: list[str] = []
    index = 0
    while index < len(text):
        code_start = reading.kind.find(CODE, index)
        prose_end = len(text) if code_start < 0 else code_start
        _inert_prose(text, index, prose_end, out)
        if code_start < 0:
            break
        code_end = code_start
        while code_end < len(text) and reading.kind[code_end] == CODE:
            code_end += 1
        out.append(text[code_start:code_end])
        index = code_end
    return "".join(out)


def _inert_prose(text: str, start: int, end: int, out: list[str]) -> None:
    # Every backtick of prose is escaped, so the only code spans GitHub finds outside code
    # are the wrappers made here, and each of them pairs with itself.
    urls = [match.span() for match in _URL.finditer(text, start, end)]

    def wrap(token_start: int, token_end: int, token: str) -> str:
        # Inside prose a backtick beside the token is escaped; beside code it is not, and
        # would run into the wrapper's.
        before = " " if token_start == start and text[start - 1:start] == "`" else ""
        after = " " if token_end == end and text[end:end + 1] == "`" else ""
        return f"{before}`{token}`{after}"

    position = start
    while (match := _OUTBOUND.search(text, position, end)) is not None:
        out.append(text[position:match.start()])
        position = match.end()
        token = match.group()
        if match.group("mention"):
            if any(low < match.start() < high for low, high in urls):
                out.append("%40")
                position = match.start() + 1  # the rest of the URL is read on as prose
            elif _ends_in_word(out):  # `a@b`: an e-mail address, but what follows is read on
                out.append("@")
                position = match.start() + 1
            else:
                out.append(wrap(match.start(), position, token))
        elif match.group("reference"):
            out.append(match.group("keyword"))
            out.append(wrap(match.start("reference"), position, match.group("reference")))
        elif token == "\\@" and any(low < match.start() < high for low, high in urls):
            out.append("%40")
        elif token == "\\@" and not _ends_in_word(out):
            mention = _MENTION_TEXT.match(text, match.start() + 1, end)
            if mention:  # `\@login` shows `@login`, which notifies
                position = mention.end()
                out.append(wrap(match.start(), position, mention.group()))
            else:
                out.append(token)
        elif token == "\\<":
            out.append("&lt;")  # a URL before it could swallow the backslash
        elif token.startswith("\\"):
            out.append(token)
        elif token.startswith("`"):
            out.append("\\`" * len(token))
        elif token == "![":
            label = "[image" if text[position:position + 1] == "]" else "[image: "
            out.append(_unbanged(text, match.start(), label))
        else:
            tag = HTML_TAG.match(text, match.start(), end)
            if tag and tag.group("name").lower() == "img":
                out.append(_unbanged(text, match.start(), _image_link(tag)))
                position = tag.end()
            else:
                out.append("&lt;")
    out.append(text[position:end])


def _wrap_plain(text: str, match: re.Match) -> str:
    name = "mention" if match.group("mention") else "reference"
    start, end = match.start(name), match.end()
    before, after = text[start - 1:start] == "`", text[end:end + 1] == "`"
    if before and after:
        return match.group()  # already inert
    wrapped = f"{' ' if before else ''}`{match.group(name)}`{' ' if after else ''}"
    return (match.group("keyword") or "") + wrapped


def _ends_in_word(out: list[str]) -> bool:
    """Whether what was written so far ends in a letter or digit (which would hold a following
    `@` back from being a mention)."""
    last = next((part[-1] for part in reversed(out) if part), "")
    return last.isascii() and last.isalnum()


def _unbanged(text: str, start: int, replacement: str) -> str:
    """`replacement` for what starts at `start`, kept from making an image with a `!` before."""
    return (" " if text[start - 1:start] == "!" else "") + replacement


def _image_link(tag: re.Match) -> str:
    """An `<img>` tag as a link to its image, or nothing when it has no source."""
    values: dict[str, str] = {}
    for attribute in ATTRIBUTE.finditer(tag.string, tag.end("name"), tag.end() - 1):
        value = (attribute.group("value") or "").strip("\"'")
        values.setdefault(attribute.group("name").lower(), html.unescape(value))
    source = values.get("src") or (re.split(r"[\s,]+", values.get("srcset", "").strip()) or [""])[0]
    if not source:
        return ""
    alt = neutralise_line(re.sub(r"[\[\]\\`<>!]", "", values.get("alt", "")))
    label = f"image: {alt}" if alt else "image"
    return f"[{label}]({_URL_UNSAFE.sub(lambda m: quote(m.group()), source)})"


def _gap(text: str, start: int, end: int) -> str:
    """What stands in for text removed from between `start` and `end`: a space where the two
    sides would otherwise join into something new (`!` and `[`, `@` and a name, backticks)."""
    if start > 0 and end < len(text) and not text[start - 1].isspace() and not text[end].isspace():
        return " "
    return ""
