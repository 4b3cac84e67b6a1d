"""What the agent is given: the task (issue, PR instruction, review, local task) and the
repository's context (CLAUDE.md / AGENTS.md, recent work-log entries, a bounded file map).

Text that comes from GitHub users (issue bodies, comments, reviews) is fenced and labelled as
untrusted with `prompts.fence`.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import prompts
from bot import confined
from bot.github import git
from bot.sanitize import strip_hidden
from bot.worklog import WORKLOG_FILE, recent_entries, render_entry

INSTRUCTION_FILES = ("CLAUDE.md", "AGENTS.md")
INSTRUCTIONS_MAX_CHARS = 20_000
INSTRUCTIONS_MAX_BYTES = 1024 * 1024
WORKLOG_MAX_CHARS = 15_000
REPO_MAP_MAX_FILES = 300


def system_prompt() -> str:
    """The agent's system prompt (static, so it is cached across runs)."""
    return prompts.load("backend-engineer")


# ---------------------------------------------------------------------------------------
# Tasks


def issue_task(
    *,
    number: int,
    title: str,
    body: str,
    requester: str,
    repo: str,
    comments: Sequence[tuple[str, str]] = (),
    instruction: str = "",
) -> str:
    """The task for implementing issue #number of repo ("owner/name").

    `comments` are (login, text) of the issue's comments by people with write access;
    `instruction` is the text of a `/backend …` command that asked for this run.
    """
    discussion = "\n\n".join(
        prompts.fence(text, f"comment by @{login}") for login, text in comments
    ) or "(no comments from maintainers)"
    request = (
        prompts.fence(instruction, f"comment by @{requester}") if instruction.strip()
        else "(no extra instructions)"
    )
    return prompts.render(
        "task-issue",
        number=number,
        title=_one_line(title),
        body=prompts.fence(body or "(the issue has no description)", f"issue #{number} by its author"),
        comments=discussion,
        instruction=request,
        requester=f"@{requester}",
        repo=repo,
    )


def pull_request_task(
    *,
    number: int,
    title: str,
    instruction: str,
    requester: str,
    repo: str,
    head: str,
    base: str,
    description: str = "",
) -> str:
    """The task for a `/backend <instruction>` comment on pull request #number."""
    return prompts.render(
        "task-pull-request",
        number=number,
        title=_one_line(title),
        instruction=prompts.fence(instruction, f"comment by @{requester}"),
        description=prompts.fence(description or "(no description)", f"pull request #{number} description"),
        requester=f"@{requester}",
        repo=repo,
        head=_one_line(head),
        base=_one_line(base),
    )


def update_task(*, number: int, title: str, repo: str, head: str, base: str,
                conflicts: Sequence[str]) -> str:
    """The task for resolving the conflicts of merging `base` into the pull request's `head`."""
    listing = "\n".join(f"- {_one_line(path)}" for path in conflicts)
    return prompts.render(
        "task-update",
        number=number,
        title=_one_line(title),
        repo=repo,
        head=_one_line(head),
        base=_one_line(base),
        # File names are anyone's to choose: shown as data, in a fence nothing in them ends.
        conflicts=prompts.fence(listing, "conflicted paths"),
    )


@dataclass(frozen=True)
class ReviewComment:
    """One inline review comment, as GitHub's pull_request_review_comment payload has it."""

    path: str
    line: int | None
    diff_hunk: str
    body: str


def review_task(
    *,
    number: int,
    title: str,
    reviewer: str,
    repo: str,
    review_body: str,
    comments: list[ReviewComment],
    state: str = "changes requested",
) -> str:
    """The task for addressing one review (its summary and every inline comment)."""
    rendered = [
        prompts.render(
            "review-comment",
            index=i,
            path=_one_line(c.path).replace("`", ""),
            line=c.line if c.line is not None else "(outdated)",
            diff_hunk=prompts.fence(c.diff_hunk, f"diff hunk of comment {i}", info="diff"),
            body=prompts.fence(c.body, f"review comment {i} by @{reviewer}"),
        )
        for i, c in enumerate(comments, 1)
    ]
    return prompts.render(
        "task-review",
        number=number,
        title=_one_line(title),
        reviewer=f"@{reviewer}",
        repo=repo,
        state=state,
        review_body=prompts.fence(review_body or "(no summary)", f"review summary by @{reviewer}"),
        comments="\n\n".join(rendered) if rendered else "(no inline comments)",
    )


@dataclass(frozen=True)
class FailingCheck:
    """One failing check of a pull request's head: its name, conclusion and what it printed
    (already bounded by the caller)."""

    name: str
    conclusion: str
    output: str


def ci_fix_task(
    *,
    number: int,
    title: str,
    repo: str,
    head: str,
    base: str,
    sha: str,
    checks: list[FailingCheck],
    left_alone: Sequence[str] = (),
) -> str:
    """The task for fixing the failing checks of one of the bot's pull requests."""
    rendered = [
        f"### Check {i}: \"{_one_line(c.name)}\" ({_one_line(c.conclusion)})\n\n"
        + prompts.fence(c.output, f"output of failing check {i}")
        for i, c in enumerate(checks, 1)
    ]
    also = ", ".join(f'"{_one_line(name)}"' for name in left_alone)
    return prompts.render(
        "task-ci-fix",
        number=number,
        title=_one_line(title),
        repo=repo,
        head=_one_line(head),
        base=_one_line(base),
        sha=sha[:12],
        checks="\n\n".join(rendered),
        left_alone=(f"These checks fail on the default branch too, so they are not this pull "
                    f"request's doing: leave them alone ({also}).") if also else "",
    )


def local_task(task: str, *, requester: str = "The operator") -> str:
    """The task for `backend-bot run` (typed by the operator: not fenced as untrusted)."""
    return prompts.render("task-local", task=task.strip(), requester=requester)


def _one_line(text: str) -> str:
    # Titles, branch names and paths are plain text on GitHub: only invisible characters hide.
    return " ".join(strip_hidden(text or "", markdown=False).split()).replace('"', "'")


# ---------------------------------------------------------------------------------------
# Repository context


def repo_files(workspace: Path) -> list[str]:
    """Tracked and untracked-but-not-ignored files (hardened git), or a walk when not a checkout."""
    try:
        proc = git.run_git_sync(
            ["-c", "core.quotePath=false", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=workspace, timeout=30,
        )
        if proc.returncode == 0:
            return sorted(set(proc.stdout.decode("utf-8", errors="replace").splitlines()))
    except (OSError, subprocess.TimeoutExpired):
        pass
    files = []
    for relative, entry in confined.walk(Path(workspace), limit=20_000):
        hidden = any(p.startswith(".") and p != ".github" for p in relative.split("/")[:-1])
        if entry.is_file(follow_symlinks=False) and not hidden:
            files.append(relative)
    return sorted(files)


def repo_map(workspace: Path, max_files: int = REPO_MAP_MAX_FILES) -> str:
    """A bounded listing: every file when few, else directory counts and the shallowest files."""
    files = repo_files(workspace)
    if not files:
        return "(empty repository)"
    if len(files) <= max_files:
        return "\n".join(files)
    dirs = Counter(f.split("/", 1)[0] + "/" for f in files if "/" in f)
    lines = [f"{len(files)} files. Top-level directories (file counts):"]
    lines += [f"  {d} ({n})" for d, n in sorted(dirs.items())]
    shallow = sorted(files, key=lambda f: (f.count("/"), f))[: max_files - len(lines)]
    lines.append("Files, shallowest first:")
    lines += sorted(shallow)
    lines.append(f"... and {len(files) - len(shallow)} more; use Glob to explore.")
    return "\n".join(lines)


def _capped(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[... cut: {len(text) - limit} more characters; Read the file for the rest]"


def repository_instructions(workspace: Path) -> str:
    parts = []
    for name in INSTRUCTION_FILES:
        try:
            text = confined.read_text(workspace, name, max_bytes=INSTRUCTIONS_MAX_BYTES)
        except (OSError, confined.UnsafePath) as error:
            # A link here could point at the bot's own secrets: not read, and said so.
            parts.append(f"# The repository's {name}\n\nNot read: {error}.")
            continue
        if text is None:
            continue
        parts.append(
            f"# The repository's {name}\n\nFollow these project instructions.\n\n"
            + prompts.fence(_capped(text.strip(), INSTRUCTIONS_MAX_CHARS), name, info="markdown",
                            untrusted=False)
        )
    if not parts:
        return "# Project instructions\n\nThe repository has no CLAUDE.md or AGENTS.md."
    return "\n\n".join(parts)


def worklog_context(workspace: Path, count: int = 3) -> str:
    try:
        entries = recent_entries(workspace, count) if count else []
    except (OSError, confined.UnsafePath) as error:
        return f"# Recent work log\n\n{WORKLOG_FILE} was not read: {error}."
    if not entries:
        return f"# Recent work log\n\n{WORKLOG_FILE} has no entries yet."
    text = "\n".join(render_entry(e) for e in entries)
    return (
        f"# Recent work log\n\nThe last {len(entries)} entries of {WORKLOG_FILE}, oldest first.\n\n"
        + prompts.fence(_capped(text, WORKLOG_MAX_CHARS), WORKLOG_FILE, info="markdown", untrusted=False)
    )


def build_first_message(workspace: Path, task_prompt: str, *, worklog_count: int = 3) -> str:
    """The first user message: instructions, recent work log, repository map, then the task."""
    return prompts.render(
        "context",
        instructions=repository_instructions(workspace),
        worklog=worklog_context(workspace, worklog_count),
        repo_map=repo_map(workspace).replace("```", "'''"),
        task=task_prompt.strip(),
    )
