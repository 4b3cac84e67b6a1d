"""Scrub credentials out of text bound for logs, comments, check runs or pull requests.

Two nets. Patterns catch anything shaped like a credential: GitHub tokens, Anthropic keys,
JWTs, PEM private keys (to their END line, or through the base64 lines after a BEGIN line
that lost its END), credentials in URLs and headers. Known values catch the secrets the bot
holds, whatever their shape: the App's private key, the webhook secret and the model key
(registered when the settings are loaded, kept for the life of the process) and minted
installation tokens (the newest TOKENS_KEPT), each with its encoded forms: base64, standard
and URL-safe, at each of the three byte alignments a value can have inside a longer blob;
hex; percent-encoding; a private key's base64 body and its lines.

`redact` runs on every log line and every comment, so known values are not searched with one
alternation of them all: with thousands of tokens, compiling that takes seconds and each
search scans every alternative at every position. They are found instead through a table of
their first characters, which keeps `redact` linear in the length of the text.
"""

from __future__ import annotations

import base64
import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator
from urllib.parse import quote, quote_plus

REDACTED = "[REDACTED]"
# Shorter forms would match ordinary words.
MIN_SECRET_LENGTH = 8
PEM_LINE_MIN_LENGTH = 16
TOKENS_KEPT = 5_000

_NEWLINE = r"(?:\r?\n|(?:\\r)?\\n)"  # a line break, or one escaped in JSON or a log line
# A line of the body: base64, a header, or a line already redacted as a known secret.
_PEM_LINE = rf"(?:[A-Za-z0-9+/=]{{4,}}|{re.escape(REDACTED)}|(?:Proc-Type|DEK-Info):[^\r\n\\]*)"
_PATTERNS = [
    re.compile(
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:.*?-----END [A-Z0-9 ]*PRIVATE KEY-----"
        rf"|(?:[ \t]*{_NEWLINE})?[ \t]*{_PEM_LINE}(?:[ \t]*{_NEWLINE}[ \t]*{_PEM_LINE})*)?",
        re.S,
    ),
    re.compile(r"\bgh[opusr]_[A-Za-z0-9_]{20,}"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"),
    re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{10,}"),
    # Google's OAuth access tokens (Vertex AI), minted by Google's library, never registered.
    re.compile(r"\bya29\.[A-Za-z0-9_\-]{16,}"),
    # AWS access key ids (Bedrock), from whichever source boto3's chain found them in.
    re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
    re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
    re.compile(r"(?i)(authorization:\s*(?:bearer|token|basic)\s+)[^\s\"']+"),
    re.compile(r"(?i)(x-access-token:)[^@\s\"']+"),
    re.compile(r"(https?://)[^/@\s:]+:[^/@\s]+@"),
]
_PEM_BODY = re.compile(r"-----BEGIN [^-]*-----(.*?)-----END [^-]*-----", re.S)
# Tokens and every encoding of them are made of these; a form made only of them lies within
# one run of them in any text, which is where the table of first characters is consulted.
_TOKEN_CHARACTERS = "A-Za-z0-9+/=_%.~-"
_TOKEN_FORM = re.compile(f"[{_TOKEN_CHARACTERS}]+")
_TOKEN_RUN = re.compile(f"[{_TOKEN_CHARACTERS}]{{{MIN_SECRET_LENGTH},}}")


def register_secret(value: str | None, *, configured: bool = False) -> None:
    """Redact `value` and its encoded forms from now on.

    `configured` secrets (the App's key, the webhook secret, the model key) are kept for the
    life of the process; others (minted tokens) until TOKENS_KEPT newer ones are registered.
    """
    if value and len(value) >= MIN_SECRET_LENGTH:
        _known.add(value, configured=configured)


def redact(text: str) -> str:
    if not text:
        return text
    text = _replace_spans(text, _known.spans(text))
    for pattern in _PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        else:
            text = pattern.sub(REDACTED, text)
    return text


def _encoded_forms(value: str) -> set[str]:
    """`value` as it may appear in a text: itself, escaped, in base64 (standard and URL-safe,
    alone or at any of the three alignments inside a longer blob), hex and percent-encoded;
    a private key also as its base64 body and each long line of it."""
    raw = value.encode()
    forms = {value, value.replace("\n", "\\n"), raw.hex(), raw.hex().upper(),
             quote(value, safe=""), quote(value), quote_plus(value)}
    forms |= {re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), form) for form in forms}
    for offset in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(bytes(offset) + raw).decode()
            if offset == 0:
                forms.add(encoded)
            # Leave out the characters that also carry bits of the filler before the value,
            # or of whatever follows it in a longer blob.
            forms.add(encoded[-(-offset * 8 // 6):(offset + len(raw)) * 8 // 6])
    for body in _PEM_BODY.findall(value):
        lines = [line.strip() for line in body.splitlines() if line.strip() and ":" not in line]
        forms.add("".join(lines))
        forms.update(line for line in lines if len(line) >= PEM_LINE_MIN_LENGTH)
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


class _KnownSecrets:
    """The known values and their forms, updated in place as values come and go.

    Forms made of token characters sit in a table by their first MIN_SECRET_LENGTH characters;
    the few others (a PEM, a secret with spaces) in one alternation, longest first, compiled
    again when one of them comes or goes. Readers use whatever table and alternation are
    there; writers replace, never mutate, what a reader may hold.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._configured: dict[str, tuple[str, ...]] = {}
        self._tokens: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        self._uses: Counter[str] = Counter()  # a form may belong to several values
        self.by_start: dict[str, tuple[str, ...]] = {}
        self.others: re.Pattern | None = None

    def add(self, value: str, *, configured: bool) -> None:
        with self._lock:
            if value in self._configured:
                return
            if value in self._tokens:
                if configured:
                    self._configured[value] = self._tokens.pop(value)
                else:
                    self._tokens.move_to_end(value)  # seen again (each git command)
                return
            forms = tuple(_encoded_forms(value))
            (self._configured if configured else self._tokens)[value] = forms
            self._count(forms, +1)
            while len(self._tokens) > TOKENS_KEPT:
                self._count(self._tokens.popitem(last=False)[1], -1)

    def spans(self, text: str) -> Iterator[tuple[int, int]]:
        by_start, others = self.by_start, self.others
        if by_start:
            for run in _TOKEN_RUN.finditer(text):
                word, offset = run.group(), run.start()
                for index in range(len(word) - MIN_SECRET_LENGTH + 1):
                    for form in by_start.get(word[index:index + MIN_SECRET_LENGTH], ()):
                        if word.startswith(form, index):
                            yield offset + index, offset + index + len(form)
                            break
        if others:
            for match in others.finditer(text):
                yield match.span()

    def _count(self, forms: tuple[str, ...], step: int) -> None:
        others_changed = False
        for form in forms:
            present = self._uses[form] > 0
            self._uses[form] += step
            if self._uses[form] <= 0:
                del self._uses[form]
            if present == (form in self._uses):
                continue
            if not _TOKEN_FORM.fullmatch(form):
                others_changed = True
                continue
            start = form[:MIN_SECRET_LENGTH]
            same_start = [f for f in self.by_start.get(start, ()) if f != form]
            if form in self._uses:
                same_start.append(form)
            if same_start:
                self.by_start[start] = tuple(sorted(same_start, key=len, reverse=True))
            else:
                self.by_start.pop(start, None)
        if others_changed:
            others = sorted((f for f in self._uses if not _TOKEN_FORM.fullmatch(f)),
                            key=len, reverse=True)
            self.others = re.compile("|".join(map(re.escape, others))) if others else None


_known = _KnownSecrets()


def _replace_spans(text: str, spans: Iterable[tuple[int, int]]) -> str:
    out, position = [], 0
    for start, end in sorted(spans):
        if start < position:  # overlaps the one before: one REDACTED for both
            position = max(position, end)
            continue
        out += [text[position:start], REDACTED]
        position = end
    if not out:
        return text
    out.append(text[position:])
    return "".join(out)
