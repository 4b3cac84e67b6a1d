"""Text from GitHub, before it reaches the model: what GitHub does not show its readers goes.

Issues, comments, reviews, pull request titles and descriptions are written by anyone who can
comment. `strip_hidden` removes what GitHub does not show its readers: HTML comments, image
alt text, link titles, and invisible, bidirectional, tag and variation-selector characters.
The model then acts only on words that the people who asked for the work could see.

The text is read once as GitHub renders it (`bot.sanitize.markdown`); each finder below
returns the spans of one kind of hidden text in its prose, and they all go at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from bot.sanitize.markdown import (
    ATTRIBUTE,
    CELL_PIPE,
    CODE,
    COMMENT,
    CONTAINER,
    HIDDEN,
    HTML_TAG,
    INVISIBLE,
    TABLE_DELIMITER,
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
    pipes = [m.start() for m in CELL_PIPE.finditer(row)]
    prefix = len(row) - len(row.lstrip(" \t>"))
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
        # GitHub may open a fence where a comment is read
        backtick_fence_with_backtick_info = line.group("fence")[0] == "`" and "`" in line.group("info")
        if (kind[start] != CODE or opens_code) and not backtick_fence_with_backtick_info:
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
