"""The agent's tools, named and shaped like Claude Code's.

Modules: `base` (ToolError, ToolContext, Tool, execute), `files` (Read, Write, Edit), `search`
(Glob, Grep), `shell` (Bash), `control` (TodoWrite, AskQuestion, FinishWork).
"""

from __future__ import annotations

from bot.agent.tools.base import TodosCallback, Tool, ToolContext, ToolError, execute
from bot.agent.tools.control import ASK_QUESTION, FINISH_WORK, TODO_WRITE
from bot.agent.tools.files import EDIT, READ, WRITE
from bot.agent.tools.search import GLOB, GREP
from bot.agent.tools.shell import BASH

__all__ = ["TodosCallback", "Tool", "ToolContext", "ToolError", "default_tools", "execute"]


def default_tools() -> list[Tool]:
    """The tools offered to the agent, in a fixed order (the order is part of the cache prefix)."""
    return [READ, WRITE, EDIT, GLOB, GREP, BASH, TODO_WRITE, ASK_QUESTION, FINISH_WORK]
