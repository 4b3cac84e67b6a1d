"""Reading Markdown the way GitHub renders it, for both directions of `bot.sanitize`.

Inbound (`strip_hidden`) and outbound (`neutralise`) both need to know what GitHub renders as
code, where all of that is visible, inert text: neither has anything to remove or make inert
there. `Reading` marks, for each character of a text, whether GitHub surely renders it as code
(fenced blocks, code spans) or as an HTML comment, and notes where the link titles, tables and
raw HTML blocks are; each direction then works on the prose that is left.

Where Markdown is ambiguous the reading errs towards prose: a code span whose ends depend on
how GitHub resolves a link, raw HTML, a table cell or a line break is not taken for code.
Prose taken for code could hide words or ping people; code taken for prose only loses a
little formatting.

Both directions also take from here what else they read alike: INVISIBLE (characters that
render as nothing), HTML tags and attributes read the lenient way browsers read them, and
`replace`, which applies the edits each direction finds.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache

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
HIDDEN = "\x00"

BACKTICKS = re.compile(r"`+")
_BLANK_LINE = re.compile(r"\n[ \t]*(?:\n|$)")
_ASCII_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
# Blockquote and list markers in front of a block.
CONTAINER = r"(?:[ \t]*(?:>|[-+*](?=[ \t])|\d{1,9}[.)](?=[ \t])))*[ \t]*"
_FENCE_OPENING = re.compile(r"( {0,3})(`{3,}|~{3,})([^\n]*)(?:\n|$)")
_HTML_BLOCK = re.compile(
    CONTAINER + r"<(?:(?P<raw>pre|script|style|textarea)(?=[\s>]|$)|(?P<pi>\?)"
    r"|(?P<cdata>!\[CDATA\[)|(?P<decl>![A-Za-z])|!--|[A-Za-z/])",
    re.I,
)
_HTML_BLOCK_ENDS = {"raw": ("</pre>", "</script>", "</style>", "</textarea>"), "pi": ("?>",),
                    "cdata": ("]]>",), "decl": (">",)}
_DEFINITION = re.compile(CONTAINER + r"!?\[(?:[^\[\]\\\n]|\\.)+\]:")
TABLE_DELIMITER = re.compile(r"^[ \t>]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$", re.M)
# A pipe that parts a table row's cells: any but an escaped one.
CELL_PIPE = re.compile(r"(?<!\\)\|")
_INLINE_EVENT = re.compile(r"[\\<\]`\n]")
# A tag read the lenient way browsers read it, and its attributes.
HTML_TAG = re.compile(
    r"""<(?P<name>[A-Za-z][^\s/>]*+)(?>[\s/]++(?>[^\s/>=][^\s/>=]*+|=[^\s/>=]*+)"""
    r"""(?>\s*+=\s*+(?>"[^"]*+"|'[^']*+'|[^\s>]*+))?+)*+[\s/]*+>"""
)
ATTRIBUTE = re.compile(
    r"""(?P<name>[^\s/>=][^\s/>=]*|=[^\s/>=]*)(?:\s*=\s*(?P<value>"[^"]*"|'[^']*'|[^\s>]*))?"""
)
ESCAPE = re.compile(r"\\[!-/:-@\[-`{-~]")
# Where a bare URL starts, which GitHub makes a link (see `Reading._in_url_word`).
URL_START = re.compile(r"https?://|www\.", re.I)


class Reading:
    """Which characters of a Markdown text GitHub surely renders as code, which are HTML
    comments, and where the link titles are.

    `raw_html`: read raw HTML as GitHub does (inbound). Outbound every `<` ends up escaped,
    so there is no raw HTML to read.
    `wrapped`: what `neutralise` makes of a mention or reference (it, in single backticks),
    to be read as code; None to read no such wrapper. Only outbound, where every other
    backtick outside code ends up escaped, is that sure.
    """

    def __init__(self, text: str, *, raw_html: bool, wrapped: re.Pattern | None) -> None:
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
            for start, end in runs(self.kind, kind):
                parts.append((start, end))
        out = []
        for start, end in sorted(parts):
            out += [self.text[position:start], HIDDEN * (end - start)]
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
        return URL_START.search(self.text, word_start, index) is not None

    def _angle(self, index: int, unsure: bool) -> tuple[int, bool]:
        text = self.text
        if text.startswith("<!--", index):
            close = text.find("-->", index + 4)
            before = text[text.rfind("\n", 0, index) + 1:index]
            opens_block = re.fullmatch(CONTAINER, before) is not None
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
        if following == "[" or (self.wrapped is not None and text.startswith("![", index + 1)):
            # Outbound an image's `![` becomes a link's `[`: read it as it will be.
            label = text.index("[", index + 1)
            label_end = _label_end(text, label)
            return label_end is not None and self._has_loose_backtick(label, label_end)
        return False

    def _has_loose_backtick(self, start: int, end: int) -> bool:
        part = ESCAPE.sub("", self.text[start:end])
        if self.wrapped is not None:
            part = self.wrapped.sub("", part)  # a wrapper pairs with itself, taken away or not
        return "`" in part

    def _backticks(self, index: int, unsure: bool) -> tuple[int, bool]:
        text = self.text
        backticks = BACKTICKS.match(text, index)
        assert backticks is not None  # _read() sends only a backtick here
        run = len(backticks.group())
        if self.wrapped is not None and run == 1:
            wrapper = self.wrapped.match(text, index)
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
        return CELL_PIPE.search(self.text[start:end]) is not None


@cache
def _closing_run(length: int) -> re.Pattern:
    return re.compile(rf"(?<!`)`{{{length}}}(?!`)")


def _table_chunks(text: str) -> Iterator[tuple[int, int]]:
    """The runs of non-blank lines holding something like a table's delimiter row."""
    start = 0
    for blank in [*_BLANK_LINE.finditer(text), None]:
        end = blank.start() if blank else len(text)
        chunk = text[start:end]
        if "|" in chunk and TABLE_DELIMITER.search(chunk):
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


def runs(kind: bytearray, wanted: int) -> Iterator[tuple[int, int]]:
    """The (start, end) spans of a `Reading.kind` that hold `wanted` (CODE or COMMENT)."""
    start = kind.find(wanted)
    while start >= 0:
        end = start
        while end < len(kind) and kind[end] == wanted:
            end += 1
        yield start, end
        start = kind.find(wanted, end)


def unix_newlines(text: str) -> str:
    """Line ends as GitHub reads them: CRLF and a lone CR end a line too."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def replace(text: str, edits: list[tuple[int, int, str]]) -> str:
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
