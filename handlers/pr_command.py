"""`/backend …` in a comment: work on a pull request (or issue), or a control command.

Control commands (help, status, cancel, retry) get a key of their own, so `/backend cancel`
does not wait behind the very job it is meant to stop.
"""

from __future__ import annotations

from bot.routing import Delivery, JobRequest, Router, job_key
from handlers.commands import parse_command

router = Router()


def _control_key(repo: str, number: int) -> str:
    return job_key(repo, number) + "/control"


@router.register("issue_comment", action="created")
def issue_comment_created(delivery: Delivery) -> JobRequest | None:
    payload = delivery.payload
    comment, issue = payload["comment"], payload["issue"]
    command = parse_command(comment.get("body"), delivery.command_word)
    if command is None:
        return None
    repo, number = delivery.repo_full_name, issue["number"]
    is_pull = "pull_request" in issue
    spec = {
        "repo": repo,
        "installation_id": delivery.installation_id,
        "number": number,
        "is_pull": is_pull,
        "comment_id": comment["id"],
        "comment_kind": "issue_comment",
        "requester": delivery.sender_login,
        "command": command.name,
        "instruction": command.instruction,
    }
    if command.name != "work":
        return JobRequest(kind="control", key=_control_key(repo, number), spec=spec)
    if not is_pull:
        # `/backend …` on an issue: implement the issue, with the comment as extra guidance.
        return JobRequest(
            kind="issue",
            key=job_key(repo, number),
            spec={**spec, "title": issue.get("title", ""), "trigger": "command"},
        )
    return JobRequest(kind="pr_command", key=job_key(repo, number), spec=spec)


@router.register("pull_request_review_comment", action="created")
def review_comment_created(delivery: Delivery) -> JobRequest | None:
    payload = delivery.payload
    comment, pull = payload["comment"], payload["pull_request"]
    command = parse_command(comment.get("body"), delivery.command_word)
    if command is None:
        return None
    repo, number = delivery.repo_full_name, pull["number"]
    spec = {
        "repo": repo,
        "installation_id": delivery.installation_id,
        "number": number,
        "is_pull": True,
        "comment_id": comment["id"],
        "comment_kind": "review_comment",
        "path": comment.get("path"),
        "line": comment.get("line") or comment.get("original_line"),
        "diff_hunk": comment.get("diff_hunk") or "",
        # A reply's thread is its first comment's; replies go there.
        "thread_id": comment.get("in_reply_to_id") or comment["id"],
        "requester": delivery.sender_login,
        "command": command.name,
        "instruction": command.instruction,
    }
    if command.name != "work":
        return JobRequest(kind="control", key=_control_key(repo, number), spec=spec)
    return JobRequest(kind="pr_command", key=job_key(repo, number), spec=spec)
