"""The one status comment per trigger, edited in place: queued ▸ working ▸ done / failed.

User-facing words live here as constants; the flows only pick a stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.redact import redact

MARKER_PREFIX = "backend-bot:status"

QUEUED = "⏳ **Queued.** backend-bot will start on this shortly."
QUEUED_BEHIND = (
    "⏳ **Queued** behind {ahead} earlier backend-bot job(s) on #{number}; this one starts "
    "when they are done. `/backend status` lists them."
)
WORKING = "🛠️ **Working on it.**"
WORKING_NO_PLAN = "The agent is reading the repository and making a plan."
DONE_OPENED = "✅ **Done.** Opened {pr_link}."
DONE_UPDATED = "✅ **Done.** Updated {pr_link} with a new commit."
NO_CHANGES = (
    "ℹ️ **Finished without changes.** The agent did not change any file, so there is no "
    "pull request. Its summary:\n\n> {summary}"
)
QUESTION = (
    "❓ **Waiting for an answer.** The agent needs to know something before it can go on; "
    "see its question below. Answer in a comment, then {retry_hint}."
)
FAILED = "❌ **Failed:** {reason}\n\nTo try again, {retry_hint}."
CANCELLED = "🛑 **Cancelled** by request. To start again, {retry_hint}."
RETRY_HINT_ISSUE = "comment `/backend retry` or remove and re-add the `{label}` label"
RETRY_HINT_PR = "comment `/backend retry`"
DONE_PUSHED = "✅ **Done.** Pushed {commit} to this pull request: {summary}"
DONE_CHILD = (
    "✅ **Done.** Opened {pr_link} into this pull request's branch {branch} (backend-bot "
    "never pushes to someone else's branch): {summary}"
)
NO_CHANGES_PR = "ℹ️ **Finished without changes.** The agent changed no file: {summary}"
FOOTER = "<sub>backend-bot · job {job_id}</sub>"

FORK_PR = (
    "Sorry @{login}, this pull request comes from a fork, and backend-bot can only push to "
    "branches of this repository, so it cannot work here. It can still help: a maintainer "
    "can label an issue `{label}`, or comment `/{command} …` on a pull request from a branch "
    "of this repository."
)
CLOSED_PR = (
    "This pull request is {state}, so backend-bot will not work on it. Reopen it first, or "
    "describe the work in an issue and label it `{label}`."
)
THREAD_CHANGED = "{marker}\nChanged {path} in {commit}. {answer}"
THREAD_UNCHANGED = "{marker}\nNo change to {path} in {commit_or_round}. {answer}"
THREAD_NO_ANSWER = "The agent gave no specific answer for this comment; see the pull request's description."

REFUSED = (
    "Sorry @{login}, only people with {permission} access to this repository can ask "
    "backend-bot to work. A maintainer can add the label or comment `/backend …` instead."
)
REFUSED_NOT_LISTED = (
    "Sorry @{login}, this repository's `.github/backend.yml` lets only the people listed in "
    "`allowed_users` ask backend-bot to work."
)
CONFIG_INVALID = (
    "⚠️ backend-bot did not start: `.github/backend.yml` on the default branch is not valid.\n\n"
    "{problems}\n\nFix the file on the default branch, then {retry_hint}."
)
QUESTION_COMMENT = "{marker}\n❓ @{login}, before going on the agent asks:\n\n{question}"
QUESTION_REPLY = "❓ @{login}, before going on the agent asks:\n\n{question}"

_CHECK = {"completed": "x", "in_progress": " ", "pending": " "}


def marker(kind: str) -> str:
    return f"<!-- {MARKER_PREFIX}:{kind} -->"


@dataclass
class Status:
    """What the status comment says now."""

    headline: str
    todos: list[dict] = field(default_factory=list)
    detail: str = ""

    def render(self, kind: str, job_id: int) -> str:
        parts = [marker(kind), self.headline]
        if self.todos:
            parts.append(checklist(self.todos))
        if self.detail:
            parts.append(self.detail)
        parts.append(FOOTER.format(job_id=job_id))
        return redact("\n\n".join(parts))


def checklist(todos: list[dict]) -> str:
    lines = []
    for todo in todos:
        text = " ".join(str(todo.get("content", "")).split())
        status = todo.get("status", "pending")
        if status == "in_progress":
            text = f"{text} ← *{' '.join(str(todo.get('activeForm') or 'working').split())}*"
        lines.append(f"- [{_CHECK.get(status, ' ')}] {text}")
    return "\n".join(lines)
