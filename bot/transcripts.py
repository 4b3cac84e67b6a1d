"""Each agent run's transcript, kept with its job: what the model said, each tool call with its
result (cut to a readable size), and the usage of every turn.

`backend-bot jobs --show ID` prints it. The text is the agent's and the repository's, so it
is redacted before it is stored and stripped of terminal control sequences before it is
printed: a file the agent read must not be able to drive the operator's terminal.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.database import Database
from bot.redact import redact

# A tool result is cut to its head and tail: enough to follow what the agent saw.
RESULT_CHARS = 2_000
# One run's transcript never outgrows this, however long the run (the newest turns are kept).
MAX_TRANSCRIPT_CHARS = 2_000_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bot_transcripts (
    id {id_column},
    job_id BIGINT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    outcome TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS bot_transcripts_job ON bot_transcripts (job_id, id)
"""

# Everything a terminal acts on but a tab and a newline: escape sequences (CSI, OSC…), other
# C0 and C1 controls, DEL.
_CONTROL = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|.)?|[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def cut(text: str, limit: int = RESULT_CHARS) -> str:
    if len(text) <= limit:
        return text
    head, tail = text[: limit * 3 // 4], text[-(limit // 4):]
    return f"{head}\n[… {len(text) - len(head) - len(tail):,} characters cut …]\n{tail}"


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(_text_of(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content)


def turns_of(messages: Sequence[dict], turn_usage: Sequence[dict]) -> list[dict]:
    """The conversation as turns: each assistant message with the tool results that answered
    it and that turn's usage. The first user message (the task) is the run's prompt, which
    the job's spec already holds: it is not repeated."""
    turns: list[dict] = []
    usage = iter(turn_usage)
    for message in messages[1:]:
        content = message.get("content")
        blocks = content if isinstance(content, list) else [{"type": "text", "text": _text_of(content)}]
        if message.get("role") == "assistant":
            turn: dict[str, Any] = {"text": [], "calls": [], "usage": next(usage, None)}
            for block in blocks:
                if block.get("type") == "text" and block.get("text"):
                    turn["text"].append(block["text"])
                elif block.get("type") == "tool_use":
                    turn["calls"].append({"id": block.get("id"), "name": block.get("name"),
                                          "input": block.get("input"), "result": None})
            turns.append(turn)
            continue
        if not turns:
            continue
        calls = {call["id"]: call for call in turns[-1]["calls"]}
        for block in blocks:
            if block.get("type") == "tool_result" and block.get("tool_use_id") in calls:
                call = calls[block["tool_use_id"]]
                call["result"] = cut(_text_of(block.get("content")))
                call["error"] = bool(block.get("is_error"))
            elif block.get("type") == "text" and block.get("text"):
                turns[-1].setdefault("notes", []).append(cut(block["text"]))
    return turns


@dataclass(frozen=True)
class Transcript:
    job_id: int
    created_at: float
    outcome: str
    turns: list[dict]


class TranscriptStore:
    """The transcripts table, in the jobs' database (so every machine of a scale-out sees it)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def create_table(self) -> None:
        self.database.create_schema(_SCHEMA.format(id_column=self.database.id_column))

    def save(self, job_id: int, outcome: str, messages: Sequence[dict],
             turn_usage: Sequence[dict]) -> None:
        turns = turns_of(messages, turn_usage)
        body = redact(json.dumps(turns, ensure_ascii=False, default=str))
        while len(body) > MAX_TRANSCRIPT_CHARS and len(turns) > 1:
            turns = turns[len(turns) // 4 or 1:]
            body = redact(json.dumps([{"text": ["[earlier turns cut: the transcript was too long]"],
                                       "calls": [], "usage": None}, *turns],
                                     ensure_ascii=False, default=str))
        self.database.execute(
            "INSERT INTO bot_transcripts (job_id, created_at, outcome, body) VALUES (?, ?, ?, ?)",
            (job_id, time.time(), outcome, body),
        )

    def of_job(self, job_id: int) -> list[Transcript]:
        rows = self.database.execute(
            "SELECT job_id, created_at, outcome, body FROM bot_transcripts WHERE job_id = ? ORDER BY id",
            (job_id,),
        )
        return [Transcript(row[0], row[1], row[2], json.loads(row[3])) for row in rows]


def printable(text: str) -> str:
    """`text` with nothing a terminal would act on."""
    return _CONTROL.sub("", text)


def render(transcript: Transcript) -> str:
    """A transcript for a terminal: turn by turn, the model's words, each call and its result."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(transcript.created_at))
    lines = [f"run recorded {stamp}, ended: {transcript.outcome}, {len(transcript.turns)} turns"]
    for number, turn in enumerate(transcript.turns, 1):
        usage = turn.get("usage") or {}
        figures = ", ".join(f"{key} {value:,}" if isinstance(value, int) else f"{key} ${value:.4f}"
                            for key, value in usage.items())
        lines.append(f"\n── turn {number}" + (f" ({figures})" if figures else ""))
        lines.extend(f"  {line}" for text in turn.get("text", []) for line in text.splitlines())
        for call in turn.get("calls", []):
            shown = json.dumps(call.get("input"), ensure_ascii=False)
            lines.append(f"  → {call.get('name')} {cut(shown, 300)}")
            mark = "✗" if call.get("error") else "←"
            result = call.get("result")
            lines.extend(f"    {mark} {line}" for line in (result or "(no result)").splitlines())
        lines.extend(f"  note: {line}" for note in turn.get("notes", []) for line in note.splitlines())
    return printable("\n".join(lines)) + "\n"
