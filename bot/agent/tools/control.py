"""TodoWrite, AskQuestion and FinishWork: what the agent tells the requester, and how a run ends.

Their text is shown on GitHub, so it is neutralised (`bot.sanitize`) before it is kept.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bot.agent.tools.base import Tool, ToolContext, ToolInput
from bot.logs import get_logger
from bot.sanitize import neutralise, neutralise_line
from bot.worklog import SECTIONS, WorkLogEntry

log = get_logger(__name__)


class Todo(ToolInput):
    content: str = Field(min_length=1, description="Imperative: 'Add tests'.")
    status: Literal["pending", "in_progress", "completed"]
    activeForm: str = Field(min_length=1, description="Present continuous: 'Adding tests'.")


class TodoWriteInput(ToolInput):
    todos: list[Todo]


_TODO_MARK = {"pending": "[ ]", "in_progress": "[~]", "completed": "[x]"}


async def todo_write_tool(ctx: ToolContext, args: TodoWriteInput) -> str:
    # The plan is shown on GitHub, one line per item of the status comment's checklist.
    ctx.todos = [
        {**todo.model_dump(), "content": neutralise_line(todo.content),
         "activeForm": neutralise_line(todo.activeForm)}
        for todo in args.todos
    ]
    if ctx.on_todos is not None:
        try:
            await ctx.on_todos(list(ctx.todos))
        except Exception:  # a progress display must never break the run
            log.exception("on_todos callback failed")
    lines = [f"{_TODO_MARK[t['status']]} {t['content']}" for t in ctx.todos]
    return "Plan updated:\n" + ("\n".join(lines) if lines else "(empty)")


class AskQuestionInput(ToolInput):
    question: str = Field(min_length=1, description="The question, in Markdown.")


async def ask_question_tool(ctx: ToolContext, args: AskQuestionInput) -> str:
    ctx.question = neutralise(args.question.strip())  # posted on GitHub as it is
    # When the answer comes, the run resumes with the answer in place of this result.
    return "Your question was sent to the requester. The run pauses here until the answer."


_HEADINGS = dict(SECTIONS)


def _about(section: str, hint: str) -> str:
    """A section's description for the model: its heading in the work log, then what goes in it."""
    return f"{_HEADINGS[section]}: {hint} Markdown."


class FinishWorkInput(ToolInput):
    # The title, then one field per work-log section in SECTIONS' order; a section may be a
    # list of items (the work log renders them as bullets).
    title: str = Field(min_length=1, description="Short imperative summary, used as the pull request title.")
    task_summary: str | list[str] = Field(
        description=_about("task_summary", "One line: what was implemented."))
    files_modified: str | list[str] = Field(description=_about(
        "files_modified", "Every file created or modified, each with a short description of the change."))
    key_decisions: str | list[str] = Field(default="", description=_about(
        "key_decisions", "Technologies, patterns and approaches chosen, with the reasons; corrections made."))
    database_changes: str | list[str] = Field(default="", description=_about(
        "database_changes", "Schema changes, migrations, indexes. 'None.' if none."))
    api_changes: str | list[str] = Field(default="", description=_about(
        "api_changes", "New or modified endpoints; breaking changes stated plainly. 'None.' if none."))
    dependencies: str | list[str] = Field(default="", description=_about(
        "dependencies", "Packages added or updated, with versions. 'None.' if none."))
    testing_performed: str | list[str] = Field(
        description=_about("testing_performed", "What was tested and how, with results."))
    next_steps: str | list[str] = Field(default="", description=_about(
        "next_steps", "What should happen next; what this unblocks or needs from others."))
    potential_issues: str | list[str] = Field(default="", description=_about(
        "potential_issues", "Concerns, technical debt, risks, follow-up work."))


async def finish_work_tool(ctx: ToolContext, args: FinishWorkInput) -> str:
    entry = WorkLogEntry(**args.model_dump())
    # Every word of the entry reaches GitHub: the pull request, its title, the commit.
    ctx.finished = entry.model_copy(update={
        "title": neutralise_line(entry.title),
        **{name: neutralise(getattr(entry, name)) for name, _ in SECTIONS},
    })
    return "Work-log entry recorded. The run ends here."


TODO_WRITE = Tool(
    "TodoWrite",
    "Write your plan as a todo list (replacing the previous one). The requester sees it "
    "as a checklist. Keep exactly one item `in_progress` while working; mark items "
    "`completed` as soon as they are done.",
    TodoWriteInput,
    todo_write_tool,
)


ASK_QUESTION = Tool(
    "AskQuestion",
    "Stop and ask the requester one question, when the task is genuinely ambiguous or "
    "needs a decision between approaches with significant trade-offs. State the options "
    "and your recommendation. The run pauses until the requester answers; the answer comes "
    "back as this tool's result and you go on from there.",
    AskQuestionInput,
    ask_question_tool,
    stops=True,
)


FINISH_WORK = Tool(
    "FinishWork",
    "Finish the run with the work-log entry (the nine sections of BACKEND_WORK_LOG.md). "
    "Call it once, when the work is done and tested; the bot then commits your changes "
    "and uses the entry as the pull request description. Write 'None.' for sections "
    "that do not apply.",
    FinishWorkInput,
    finish_work_tool,
    stops=True,
)
