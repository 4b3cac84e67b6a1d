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
from functools import cache
from urllib.parse import quote

# Characters that render as nothing or reorder what is around them: zero-width and format
# characters, bidirectional controls ("Trojan Source"), Unicode tags and variation selectors
# (text smuggled inside an emoji), fillers, and control characters.
INVISIBLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u2069\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb"
    "\U000e0000-\U000e007f\U000e0100-\U000e01ef]"
)

PROSE, CODE, COMMENT = 0, 1, 2
# Stands for code and comments in a view of the prose alone (INVISIBLE keeps it out of texts).
_HIDDEN = "\x00"

_BACKTICKS = re.compile(r"`+")
_BLANK_LINE = re.compile(r"\n[ \t]*(?:\n|$)")
_ASCII_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
# Blockquote and list markers in front of a block.
_CONTAINER = r"(?:[ \t]*(?:>|[-+*](?=[ \t])|\d{1,9}[.)](?=[ \t])))*[ \t]*"
_FENCE_OPENING = re.compile(r"( {0,3})(`{3,}|~{3,})([^\n]*)(?:\n|$)")
_HTML_BLOCK = re.compile(
    _CONTAINER + r"<(?:(?P<raw>pre|script|style|textarea)(?=[\s>]|$)|(?P<pi>\?)"
    r"|(?P<cdata>!\[CDATA\[)|(?P<decl>![A-Za-z])|!--|[A-Za-z/])",
    re.I,
)
_HTML_BLOCK_ENDS = {"raw": ("</pre>", "</script>", "</style>", "</textarea>"), "pi": ("?>",),
                    "cdata": ("]]>",), "decl": (">",)}
_FENCE_LINE = re.compile(
    rf"^{_CONTAINER}(?P<fence>`{{3,}}|~{{3,}})(?P<info>[ \t]*(?P<language>[A-Za-z0-9_+#.-]{{0,20}})[^\n]*)$",
    re.M,
)
_DEFINITION = re.compile(_CONTAINER + r"!?\[(?:[^\[\]\\\n]|\\.)+\]:")
_TABLE_DELIMITER = re.compile(r"^[ \t>]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$", re.M)
_INLINE_EVENT = re.compile(r"[\\<\]`\n]")
# A tag read the lenient way browsers read it, and its attributes.
_HTML_TAG = re.compile(
    r"""<(?P<name>[A-Za-z][^\s/>]*+)(?>[\s/]++(?>[^\s/>=][^\s/>=]*+|=[^\s/>=]*+)"""
    r"""(?>\s*+=\s*+(?>"[^"]*+"|'[^']*+'|[^\s>]*+))?+)*+[\s/]*+>"""
)
_ATTRIBUTE = re.compile(
    r"""(?P<name>[^\s/>=][^\s/>=]*|=[^\s/>=]*)(?:\s*=\s*(?P<value>"[^"]*"|'[^']*'|[^\s>]*))?"""
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
    _CONTAINER + r"(?P<definition>\[(?P<label>(?:[^\[\]\\]|\\.)+)\]:[ \t]*\n?[ \t]*(?:<[^<>\n]*>|\S+)"
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
_ESCAPE = re.compile(r"\\[!-/:-@\[-`{-~]")
_OUTBOUND = re.compile(
    rf"{_ESCAPE.pattern}|`+|!\[|<(?=\S)|(?P<mention>{_MENTION})"
    rf"|(?P<keyword>{_CLOSING_KEYWORD})(?P<reference>{_REFERENCE})"
)
# In a URL, `@name` is better spelled `%40name` than broken by backticks: the same address,
# and never a mention, whether GitHub makes the URL a link or not.
_URL = re.compile(r"(?:https?://|www\.)\S*", re.I)
_URL_START = re.compile(r"https?://|www\.", re.I)
# The bot's own markers go even from code: the bot finds its comments by them.
_BOT_MARKER = re.compile(r"<!--\s*backend-bot:.*?-->", re.S)
_CHARACTER_REFERENCE = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|commat|num);")
_URL_UNSAFE = re.compile(r"[\s()<>`\\\[\]\"'@]")


def code_fence(text: str) -> str:
    """The backticks that open and close a code block around `text`: more than any run of
    backticks inside it (and at least three), so nothing in the text can end the block."""
    return "`" * max(3, _longest_backtick_run(text) + 1)


def code_span(text: str) -> str:
    """`text` on one line as inline code that no backtick inside it can end early."""
    text = " ".join(text.split())
    ticks = "`" * (_longest_backtick_run(text) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


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
    text = _unix_newlines(text or "")
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
    text = INVISIBLE.sub("", _unix_newlines(text or ""))
    text = _replace(text, [(m.start(), m.end(), _gap(text, m.start(), m.end()))
                           for m in _BOT_MARKER.finditer(text)])
    if not markdown:
        return _ACTIVE_TEXT.sub(lambda match: _wrap_plain(text, match), text)
    text = _without_comments(text)
    text = _with_references_decoded(text)
    return _inert(text, _Reading(text, raw_html=False, wrapped=True))


def neutralise_line(text: str) -> str:
    """Agent text for one line of a bot message (a title, a plan item, a summary): flattened
    first, since flattening a neutralised text could turn a code block back into prose."""
    return neutralise(" ".join((text or "").split()))


def blockquote(text: str) -> str:
    """Neutralised text quoted line by line, so the quote keeps the structure that was read."""
    return "\n".join(f"> {line}" if line.strip() else ">" for line in text.splitlines())


# ---------------------------------------------------------------------------------------
# Reading Markdown as GitHub would


class _Reading:
    """Which characters of a Markdown text GitHub surely renders as code, which are HTML
    comments, and where the link titles are.

    `raw_html`: read raw HTML as GitHub does (inbound). Outbound every `<` ends up escaped,
    so there is no raw HTML to read.
    `wrapped`: a mention or reference in single backticks is code (what `neutralise` made).
    Only outbound, where every other backtick outside code ends up escaped, is that sure.
    """

    def __init__(self, text: str, *, raw_html: bool, wrapped: bool) -> None:
        self.text = text
        self.raw_html = raw_html
        self.wrapped = wrapped
        self.kind = bytearray(len(text))
        self.titles: list[tuple[int, int]] = []  # each with the space before it
        self.raw_html_blocks: list[tuple[int, int]] = []
        # What ends a word that GitHub may make a link; outbound every `<` becomes `&lt;`.
        self._word_ends = " \t\n<" if raw_html else " \t\n"
        self.tables = list(_table_chunks(text))
        self._read()

    def prose_view(self) -> str:
        """The text with code and comments blanked out; positions do not move."""
        parts, position = [], 0
        for kind in (CODE, COMMENT):
            for start, end in _runs(self.kind, kind):
                parts.append((start, end))
        out = []
        for start, end in sorted(parts):
            out += [self.text[position:start], _HIDDEN * (end - start)]
            position = end
        out.append(self.text[position:])
        return "".join(out)

    def chunk_end(self, index: int) -> int:
        """Where the run of non-blank lines holding `index` ends; a paragraph ends there or
        before."""
        blank = _BLANK_LINE.search(self.text, index)
        return blank.start() if blank else len(self.text)

    def _mark(self, start: int, end: int, kind: int) -> None:
        self.kind[start:end] = bytes([kind]) * (end - start)

    def _read(self) -> None:
        text = self.text
        index = 0
        unsure = False  # from here to the end of the chunk, no code span is trusted
        html_ends: tuple[str, ...] | None = None  # in a raw HTML block, until one of these
        html_start = 0
        while index < len(text):
            if index == 0 or text[index - 1] == "\n":
                line_end = text.find("\n", index)
                line_end = len(text) if line_end < 0 else line_end + 1
                line = text[index:line_end]
                if not line.strip():
                    if html_ends == ():
                        html_ends = None
                        self.raw_html_blocks.append((html_start, index))
                    unsure = unsure and html_ends is not None
                    index = line_end
                    continue
                if html_ends is None:
                    fence_end = _fence_end(text, index)
                    if fence_end is not None:
                        self._mark(index, fence_end, CODE)
                        index = fence_end
                        continue
                    block = _HTML_BLOCK.match(line) if self.raw_html else None
                    if block:
                        # Raw HTML holds no Markdown code; it ends at a blank line, or after
                        # its closing text (then at the next blank line, to be safe).
                        unsure = True
                        kind = next((k for k in _HTML_BLOCK_ENDS if block.group(k)), None)
                        html_ends = _HTML_BLOCK_ENDS[kind] if kind else ()
                        html_start = index
                    if _DEFINITION.match(line):
                        unsure = True  # a definition's title may hold backticks
                elif html_ends and any(end in line.lower() for end in html_ends):
                    html_ends = ()
            event = _INLINE_EVENT.search(text, index)
            if event is None:
                break
            index = event.start()
            char = text[index]
            if char == "\n":
                index += 1
            elif char == "\\":
                # Raw HTML and bare URLs take a backslash as it is.
                escapes = text[index + 1:index + 2] in _ASCII_PUNCTUATION and html_ends is None
                index += 2 if escapes and not self._in_url_word(index) else 1
            elif char == "<":
                index, unsure = self._angle(index, unsure)
            elif char == "]":
                unsure = self._link_tail(index) or unsure
                index += 1
            else:
                index, unsure = self._backticks(index, unsure)
        if html_ends is not None:
            self.raw_html_blocks.append((html_start, len(text)))

    def _in_url_word(self, index: int) -> bool:
        """Whether `index` may lie in a bare URL that GitHub makes a link. Such a link takes
        everything up to a space or `<` as it is: backslashes escape nothing there, and
        backticks open no code span."""
        word_start = max(self.text.rfind(char, 0, index) for char in self._word_ends) + 1
        word_start = max(word_start, self.kind.rfind(CODE, 0, index) + 1)
        return _URL_START.search(self.text, word_start, index) is not None

    def _angle(self, index: int, unsure: bool) -> tuple[int, bool]:
        text = self.text
        if text.startswith("<!--", index):
            close = text.find("-->", index + 4)
            before = text[text.rfind("\n", 0, index) + 1:index]
            opens_block = re.fullmatch(_CONTAINER, before) is not None
            if text.startswith(("<!-->", "<!--->"), index):
                # Closed at once for some HTML parsers, open to some later `-->` for others.
                close = -1
            elif close >= self.chunk_end(index) and not opens_block:
                # Inline, or in an HTML block, a comment ends within its paragraph or block;
                # past it GitHub reads on in a way not followed here: hide the rest.
                close = -1
            end = len(text) if close < 0 else close + 3
            self._mark(index, end, COMMENT)
            # A comment opening a line is an HTML block: the rest of its last line is raw HTML.
            return end, unsure or (self.raw_html and opens_block)
        if self.raw_html and not text[index + 1:index + 2].isspace():
            # A tag or an autolink takes the backticks inside it away from code spans.
            close = text.find(">", index, self.chunk_end(index))
            if close > 0 and "`" in text[index:close]:
                unsure = True
        return index + 1, unsure

    def _link_tail(self, index: int) -> bool:
        """Look at what follows a `]`. True when GitHub may take backticks there away from code
        spans: in a link's destination, title or reference label."""
        text = self.text
        following = text[index + 1:index + 2]
        if following == "(":
            tail = _inline_link_tail(text, index + 1, angle=self.raw_html)
            if tail is None:
                return False
            end, title = tail
            if title:
                self.titles.append(title)
            return self._has_loose_backtick(index + 1, end)
        if following == "[" or (self.wrapped and text.startswith("![", index + 1)):
            # Outbound an image's `![` becomes a link's `[`: read it as it will be.
            label = text.index("[", index + 1)
            end = _label_end(text, label)
            return end is not None and self._has_loose_backtick(label, end)
        return False

    def _has_loose_backtick(self, start: int, end: int) -> bool:
        part = _ESCAPE.sub("", self.text[start:end])
        if self.wrapped:
            part = _WRAPPED.sub("", part)  # a wrapper pairs with itself, taken away or not
        return "`" in part

    def _backticks(self, index: int, unsure: bool) -> tuple[int, bool]:
        text = self.text
        run = len(_BACKTICKS.match(text, index).group())
        if self.wrapped and run == 1:
            wrapper = _WRAPPED.match(text, index)
            if wrapper:
                self._mark(index, wrapper.end(), CODE)
                return wrapper.end(), unsure
        if self._in_url_word(index):
            return index + run, True  # GitHub's autolinks run on over backticks
        if unsure:
            return index + run, unsure
        closing = _closing_run(run).search(text, index + run, self.chunk_end(index))
        if closing is None:
            return index + run, unsure  # literal backticks
        if "\n" in text[index:closing.start()] or self._splits_table_cell(index, closing.start()):
            # GitHub pairs these only if no block or table cell ends between them.
            return index + run, True
        self._mark(index, closing.end(), CODE)
        return closing.end(), unsure

    def _splits_table_cell(self, start: int, end: int) -> bool:
        if not any(low <= start < high for low, high in self.tables):
            return False
        return re.search(r"(?<!\\)\|", self.text[start:end]) is not None


@cache
def _closing_run(length: int) -> re.Pattern:
    return re.compile(rf"(?<!`)`{{{length}}}(?!`)")


def _table_chunks(text: str) -> Iterator[tuple[int, int]]:
    """The runs of non-blank lines holding something like a table's delimiter row."""
    start = 0
    for blank in [*_BLANK_LINE.finditer(text), None]:
        end = blank.start() if blank else len(text)
        chunk = text[start:end]
        if "|" in chunk and _TABLE_DELIMITER.search(chunk):
            yield start, end
        if blank:
            start = blank.end()


def _indent(line: str) -> int:
    width = 0
    for char in line:
        if char == " ":
            width += 1
        elif char == "\t":
            width += 4 - width % 4
        else:
            break
    return width


def _fence_end(text: str, start: int) -> int | None:
    """The end of a fenced code block opening at `start`, when GitHub surely reads one.

    Surely: the block is closed; no line in it is indented less than its opening fence (that
    would end a list item holding the block, and the block with it); and no line in it looks
    like a closing fence that is not accepted here (GitHub might end the block there).
    """
    opening = _FENCE_OPENING.match(text, start)
    if opening is None:
        return None
    indent, fence, info = len(opening.group(1)), opening.group(2), opening.group(3)
    if fence[0] == "`" and "`" in info:
        return None
    closing = re.compile(rf"[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*")
    position = opening.end()
    while position < len(text):
        line_end = text.find("\n", position)
        line_end = len(text) if line_end < 0 else line_end + 1
        line = text[position:line_end].rstrip("\n")
        if closing.fullmatch(line):
            return line_end if indent <= _indent(line) <= 3 else None
        if line.strip() and _indent(line) < indent:
            return None
        position = line_end
    return None


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t\n":
        index += 1
    return index


def _inline_link_tail(text: str, index: int, *, angle: bool) -> tuple[int, tuple[int, int] | None] | None:
    """Read `(destination "title")` at `index`: where it ends and the title's span, or None.
    Without `angle`, a `<` is read as the `&lt;` it will become, not as `<destination>`."""
    size = len(text)
    position = _skip_space(text, index + 1)
    if angle and text[position:position + 1] == "<":
        position += 1
        while position < size and text[position] not in "<>\n":
            position += 2 if text[position] == "\\" else 1
        if position >= size or text[position] != ">":
            return None
        position += 1
    else:
        depth = 0
        while position < size:
            char = text[position]
            if char == "\\":
                position += 2
                continue
            if char.isspace() or ord(char) < 32 or (char == ")" and depth == 0):
                break
            depth += {"(": 1, ")": -1}.get(char, 0)
            position += 1
        if depth or position > size:
            return None
    destination_end = position
    position = _skip_space(text, position)
    title = None
    if position > destination_end and text[position:position + 1] in ('"', "'", "("):
        close = ")" if text[position] == "(" else text[position]
        position += 1
        while position < size and text[position] != close:
            if close == ")" and text[position] == "(":
                return None
            position += 2 if text[position] == "\\" else 1
        if position >= size:
            return None
        title = (destination_end, position + 1)
        position = _skip_space(text, position + 1)
    if text[position:position + 1] != ")":
        return None
    return position + 1, title


def _label_end(text: str, index: int) -> int | None:
    """The end of a reference label `[label]` opening at `index`, or None."""
    position = index + 1
    while position < len(text) and position - index <= 1000:
        char = text[position]
        if char == "[":
            return None
        if char == "]":
            return position + 1
        position += 2 if char == "\\" else 1
    return None


def _runs(kind: bytearray, wanted: int) -> Iterator[tuple[int, int]]:
    start = kind.find(wanted)
    while start >= 0:
        end = start
        while end < len(kind) and kind[end] == wanted:
            end += 1
        yield start, end
        start = kind.find(wanted, end)


# ---------------------------------------------------------------------------------------
# Inbound: what GitHub does not show


def _without_hidden_markdown(text: str) -> str:
    reading = _Reading(text, raw_html=True, wrapped=False)
    view = reading.prose_view()
    hidden = [*_runs(reading.kind, COMMENT), *reading.titles, *_image_texts(view, reading),
              *_definitions(view), *_hidden_markup(view, reading.raw_html_blocks),
              *_fence_info_tails(reading), *_excess_table_cells(reading)]
    return _replace(text, [(start, end, "") for start, end in hidden])


def _excess_table_cells(reading: _Reading) -> Iterator[tuple[int, int]]:
    """The cells of a table's row past the number its delimiter row sets: GitHub drops them."""
    text = reading.text
    for start, end in reading.tables:
        rows = list(re.finditer(r"[^\n]+", text[start:end]))
        delimiter = next((i for i, row in enumerate(rows)
                          if "|" in row.group() and _TABLE_DELIMITER.fullmatch(row.group())), None)
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


def _fence_info_tails(reading: _Reading) -> Iterator[tuple[int, int]]:
    """What follows the language on a fence's opening line: GitHub shows none of it."""
    text, kind = reading.text, reading.kind
    for line in _FENCE_LINE.finditer(text):
        start = line.start("fence")
        opens_code = kind[start] == CODE and (line.start() == 0 or kind[line.start() - 1] != CODE)
        if kind[start] != CODE or opens_code:  # GitHub may open a fence where a comment is read
            if not (line.group("fence")[0] == "`" and "`" in line.group("info")):
                yield line.end("language"), line.end()


def _image_texts(view: str, reading: _Reading) -> Iterator[tuple[int, int]]:
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
    return chunk_end if _HIDDEN in view[start:chunk_end] else None


def _definitions(view: str) -> Iterator[tuple[int, int]]:
    """Link reference definitions show nothing: titles go from all of them, and those that no
    link uses go whole (their label and address would only be hidden words)."""
    found = list(_DEFINITION_LINE.finditer(view))
    elsewhere = _replace(view, [(*match.span("definition"), "") for match in found])
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
        tag = _HTML_TAG.match(view, match.start()) if match.group("open") else None
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
            for attribute in _ATTRIBUTE.finditer(view, tag.end("name"), tag.end() - 1):
                if attribute.group("name").lower() not in _SHOWN_ATTRIBUTES:
                    yield attribute.span()


# ---------------------------------------------------------------------------------------
# Outbound: what must not act on GitHub


def _without_comments(text: str) -> str:
    reading = _Reading(text, raw_html=False, wrapped=True)
    return _replace(text, [(start, end, _gap(text, start, end))
                           for start, end in _runs(reading.kind, COMMENT)])


def _with_references_decoded(text: str) -> str:
    """Character references in prose that spell letters, digits, `@` or `#`, decoded, so that
    `&#64;login` is seen for the mention it is. None of them changes what is code."""
    edits = []
    for match in _CHARACTER_REFERENCE.finditer(_Reading(text, raw_html=False, wrapped=True).prose_view()):
        char = html.unescape(match.group())
        if len(char) == 1 and char.isascii() and (char.isalnum() or char in "@#"):
            edits.append((match.start(), match.end(), char))
    return _replace(text, edits)


def _inert(text: str, reading: _Reading) -> str:
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
            tag = _HTML_TAG.match(text, match.start(), end)
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
    for attribute in _ATTRIBUTE.finditer(tag.string, tag.end("name"), tag.end() - 1):
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


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in _BACKTICKS.findall(text)), default=0)


def _unix_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _gap(text: str, start: int, end: int) -> str:
    """What stands in for text removed from between `start` and `end`: a space where the two
    sides would otherwise join into something new (`!` and `[`, `@` and a name, backticks)."""
    if 0 < start and end < len(text) and not text[start - 1].isspace() and not text[end].isspace():
        return " "
    return ""


def _replace(text: str, edits: list[tuple[int, int, str]]) -> str:
    """Apply (start, end, replacement) edits; overlapping ones merge, the first replacement
    standing for them all."""
    merged: list[list] = []
    for start, end, replacement in sorted(edits):
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end, replacement])
    out, position = [], 0
    for start, end, replacement in merged:
        out += [text[position:start], replacement]
        position = end
    out.append(text[position:])
    return "".join(out)
