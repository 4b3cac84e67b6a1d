"""Markdown that crosses the trust boundary, in both directions.

Inbound, text written on GitHub (issues, comments, reviews, pull request titles and
descriptions) goes to the model. `strip_hidden` removes what GitHub does not show its readers:
HTML comments, image alt text, link titles, and invisible, bidirectional, tag and
variation-selector characters. The model then acts only on words that the people who asked
for the work could see.

Outbound, text the agent composed goes to GitHub. `neutralise` keeps it from acting there:
mentions become inline code (no notification), so does the reference after a closing keyword
(nothing closes but what the bot adds itself), HTML comments go (no hidden text, no fake
`<!-- backend-bot:… -->` markers), images become links (nothing loads from a host the agent
chose) and raw HTML is escaped (it could hide text or load images too).

Both directions need to know what GitHub renders as code, where all of that is visible, inert
text. Where Markdown is ambiguous the reading errs towards prose: a code span whose ends
depend on how GitHub resolves a link, raw HTML, a table cell or a line break is not taken for
code. Prose taken for code could hide words or ping people; code taken for prose only loses a
little formatting.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from urllib.parse import quote

from bot.sanitize.fences import code_fence, code_span
from bot.sanitize.markdown import (
    ATTRIBUTE,
    CODE,
    COMMENT,
    CONTAINER,
    ESCAPE,
    HIDDEN,
    HTML_TAG,
    INVISIBLE,
    TABLE_DELIMITER,
    URL_START,
    Reading,
    replace,
    runs,
    unix_newlines,
)

_FENCE_LINE = re.compile(
    rf"^{CONTAINER}(?P<fence>`{{3,}}|~{{3,}})(?P<info>[ \t]*(?P<language>[A-Za-z0-9_+#.-]{{0,20}})[^\n]*)$",
    re.M,
)
_HTML_MARKUP = re.compile(
    r"(?P<open><[A-Za-z])|</(?P<close>[A-Za-z][A-Za-z0-9-]*)\s*>"
    r"|(?P<other><![A-Za-z][^>]*>|<\?.*?\?>|<!\[CDATA\[.*?\]\]>)",
    re.S,
)
# The elements GitHub keeps (its sanitizer drops the others), and the attributes of theirs
# a reader can see the effect of.
_HTML_ELEMENTS = frozenset(
    "a abbr b bdo blockquote br caption cite code dd del details dfn div dl dt em figcaption "
    "figure h1 h2 h3 h4 h5 h6 hr i img ins kbd li mark ol p picture pre q rp rt ruby s samp "
    "small source span strike strong sub summary sup table tbody td tfoot th thead time tr tt "
    "ul var video wbr".split()
)
_SHOWN_ATTRIBUTES = frozenset({"href", "src"})
_DEFINITION_LINE = re.compile(
    CONTAINER + r"(?P<definition>\[(?P<label>(?:[^\[\]\\]|\\.)+)\]:[ \t]*\n?[ \t]*(?:<[^<>\n]*>|\S+)"
    r"(?P<title>(?:[ \t]+\n?|[ \t]*\n)[ \t]*"
    r"(?:\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|\((?:[^()\\]|\\.)*\)))?)[ \t]*$",
    re.M,
)
_BRACKETED = re.compile(r"\[((?:[^\[\]\\]|\\.)*)\]")

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


def strip_hidden(text: str, *, markdown: bool = True) -> str:
    """Text written on GitHub without what GitHub does not show its readers.

    Outside code: HTML comments, image alt text, link titles, link reference definitions that
    no link uses, raw HTML markup (tags that are not HTML elements, attributes but `href` and
    `src`, a tag that never ends and all after it), what follows the language on a code
    fence's first line, and table cells past the columns of their table. Everywhere:
    invisible characters.

    `markdown=False` is for text that GitHub shows as it is (diff hunks, code, titles): only
    its invisible characters are removed.
    """
    text = unix_newlines(text or "")
    if markdown:
        text = _without_hidden_markdown(text)
    return INVISIBLE.sub("", text)


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
    """Neutralised text quoted line by line, so the quote keeps the structure that was read."""
    return "\n".join(f"> {line}" if line.strip() else ">" for line in text.splitlines())


# ---------------------------------------------------------------------------------------
# Inbound: what GitHub does not show


def _without_hidden_markdown(text: str) -> str:
    reading = Reading(text, raw_html=True, wrapped=None)
    view = reading.prose_view()
    hidden = [*runs(reading.kind, COMMENT), *reading.titles, *_image_texts(view, reading),
              *_definitions(view), *_hidden_markup(view, reading.raw_html_blocks),
              *_fence_info_tails(reading), *_excess_table_cells(reading)]
    return replace(text, [(start, end, "") for start, end in hidden])


def _excess_table_cells(reading: Reading) -> Iterator[tuple[int, int]]:
    """The cells of a table's row past the number its delimiter row sets: GitHub drops them."""
    text = reading.text
    for start, end in reading.tables:
        rows = list(re.finditer(r"[^\n]+", text[start:end]))
        delimiter = next((i for i, row in enumerate(rows)
                          if "|" in row.group() and TABLE_DELIMITER.fullmatch(row.group())), None)
        if delimiter is None:
            continue
        columns = len(_cell_separators(rows[delimiter].group())) + 1
        for row in rows[delimiter + 1:]:
            separators = _cell_separators(row.group())
            if len(separators) >= columns and reading.kind[start + row.start()] != CODE:
                yield start + row.start() + separators[columns - 1], start + row.end()


def _cell_separators(row: str) -> list[int]:
    """Where the pipes between a table row's cells are (not its leading or trailing pipe)."""
    pipes = [m.start() for m in re.finditer(r"(?<!\\)\|", row)]
    prefix = re.match(r"[ \t>]*", row).end()
    if pipes and pipes[0] == prefix:
        pipes = pipes[1:]
    if pipes and not row[pipes[-1] + 1:].strip():
        pipes = pipes[:-1]
    return pipes


def _fence_info_tails(reading: Reading) -> Iterator[tuple[int, int]]:
    """What follows the language on a fence's opening line: GitHub shows none of it."""
    text, kind = reading.text, reading.kind
    for line in _FENCE_LINE.finditer(text):
        start = line.start("fence")
        opens_code = kind[start] == CODE and (line.start() == 0 or kind[line.start() - 1] != CODE)
        if kind[start] != CODE or opens_code:  # GitHub may open a fence where a comment is read
            if not (line.group("fence")[0] == "`" and "`" in line.group("info")):
                yield line.end("language"), line.end()


def _image_texts(view: str, reading: Reading) -> Iterator[tuple[int, int]]:
    """The alt text of each image: from just after `![` to its `]`."""
    for match in re.finditer(r"\\.|!\[", view, re.S):
        if match.group() == "![":
            end = _image_text_end(view, match.end(), reading.chunk_end(match.end()))
            if end is not None:
                yield match.end(), end


def _image_text_end(view: str, start: int, chunk_end: int) -> int | None:
    depth = 1
    index = start
    while index < chunk_end:
        char = view[index]
        if char == "`":
            # A code span GitHub may see here could hold the `]`: hide the rest of the chunk.
            return chunk_end
        if char == "<" and re.match(r"<[A-Za-z/]", view[index:index + 2]):
            close = view.find(">", index, chunk_end)  # a tag's brackets are not the text's
            index = max(index, close)
        elif char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth == 0:
                return index
        index += 2 if char == "\\" else 1
    # GitHub may end the text inside what is read here as code or a comment.
    return chunk_end if HIDDEN in view[start:chunk_end] else None


def _definitions(view: str) -> Iterator[tuple[int, int]]:
    """Link reference definitions show nothing: titles go from all of them, and those that no
    link uses go whole (their label and address would only be hidden words)."""
    found = list(_DEFINITION_LINE.finditer(view))
    elsewhere = replace(view, [(*match.span("definition"), "") for match in found])
    used = {_label_key(match.group(1)) for match in _BRACKETED.finditer(elsewhere)}
    for match in found:
        if _label_key(match.group("label")) not in used:
            yield match.span("definition")
        elif match.group("title"):
            yield match.span("title")


def _label_key(label: str) -> str:
    return " ".join(label.split()).casefold()


def _hidden_markup(view: str, raw_html_blocks: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """What no reader sees of raw HTML: declarations and processing instructions, tags that
    are not HTML elements, and every attribute but the link or image a tag points to.

    In a raw HTML block a tag that never ends takes in everything after it."""
    for match in _HTML_MARKUP.finditer(view):
        tag = HTML_TAG.match(view, match.start()) if match.group("open") else None
        if match.group("open") and tag is None:
            if any(start <= match.start() < end for start, end in raw_html_blocks):
                yield match.start(), len(view)
                return
            continue
        name = (tag.group("name") if tag else match.group("close") or "").lower()
        if name not in _HTML_ELEMENTS:
            if tag or match.group("close") or match.group("other"):
                yield match.start(), tag.end() if tag else match.end()
            continue
        if tag:
            for attribute in ATTRIBUTE.finditer(view, tag.end("name"), tag.end() - 1):
                if attribute.group("name").lower() not in _SHOWN_ATTRIBUTES:
                    yield attribute.span()


# ---------------------------------------------------------------------------------------
# Outbound: what must not act on GitHub


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


# ---------------------------------------------------------------------------------------
# Helpers


def _gap(text: str, start: int, end: int) -> str:
    """What stands in for text removed from between `start` and `end`: a space where the two
    sides would otherwise join into something new (`!` and `[`, `@` and a name, backticks)."""
    if 0 < start and end < len(text) and not text[start - 1].isspace() and not text[end].isspace():
        return " "
    return ""


