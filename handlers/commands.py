"""Parsing `/backend …` commands out of comment text."""

from __future__ import annotations

from dataclasses import dataclass

COMMAND_WORD = "backend"
CONTROL_COMMANDS = frozenset({"help", "status", "cancel", "retry"})
# Command words that start a round of work with no instruction of their own.
ROUND_COMMANDS = frozenset({"update"})
# `/backend continue`: go on with the bot's branch after a limit stopped a run.
CONTINUE = "continue"
CONTINUE_INSTRUCTION = (
    "Continue the unfinished work on this branch: a limit stopped the last run. The latest "
    "entries of BACKEND_WORK_LOG.md say what was done and, under Next Steps, what is left. "
    "Finish it and test it."
)
# `/backend answer <text>`: the answer to the agent's waiting question, from anyone with access.
ANSWER = "answer"


@dataclass(frozen=True)
class Command:
    # "help", "status", "cancel", "retry", "update", "continue", "answer" (its text as the
    # instruction), or "work" for an instruction.
    name: str
    instruction: str


def parse_command(body: str | None, word: str = COMMAND_WORD) -> Command | None:
    """Find the first line that starts with `/<word>` and split it into a command."""
    prefix = f"/{word}"
    lines = (body or "").splitlines()
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped.startswith(prefix):
            continue
        rest = stripped[len(prefix):]
        if rest and not rest[0].isspace():
            continue  # "/backendish" is somebody else's command
        first, _, _ = rest.strip().partition(" ")
        if (first.lower() in CONTROL_COMMANDS | ROUND_COMMANDS | {CONTINUE}
                and rest.strip().lower() == first.lower()):
            return Command(first.lower(), "")
        if first.lower() == ANSWER:
            answer = "\n".join([rest.strip()[len(ANSWER):], *lines[index + 1:]]).strip()
            return Command(ANSWER, answer)
        # The instruction is the rest of the line plus the lines below it.
        instruction = "\n".join([rest.strip(), *lines[index + 1:]]).strip()
        return Command("work", instruction)
    return None
