"""Any text put inside Markdown code that nothing in the text can end early.

Both directions use these. Text from GitHub goes to the model inside a code block, so that
where it ends is never in doubt; the bot shows test output, diff hunks, paths and branch
names on GitHub as code, where GitHub renders every character as it is. In code the only way
out is a run of backticks as long as the fence, so the fence is made longer than any run
inside.
"""

from __future__ import annotations

from bot.sanitize.markdown import BACKTICKS


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


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in BACKTICKS.findall(text)), default=0)
