"""`/backend …` in a comment: work on a pull request (or issue), or a control command.

Control commands (help, status, cancel, retry) get a key of their own, so `/backend cancel`
does not wait behind the very job it is meant to stop. So do answers to the agent's waiting
question: `/backend answer …`, or a plain comment by the person the question waits for.
`/backend update` is a round of work on the pull request (kind `update`), in line with the
others; `/backend continue` is work too: the bot's branch goes on where a limit stopped it.
"""

from __future__ import annotations

from bot.routing import Delivery, JobRequest, Router, job_key
from handlers.commands import ANSWER, CONTINUE, CONTINUE_INSTRUCTION, Command, parse_command

router = Router()


def _request(delivery: Delivery, number: int, comment: dict, *, is_pull: bool,
             **where: object) -> JobRequest | None:
    command = parse_command(comment.get("body"), delivery.command_word)
    if command is None:
        awaited = delivery.answer_awaited_from(number)
        if awaited is None or awaited.lower() != delivery.sender_login.lower():
            return None  # an ordinary comment: nothing to do, nothing said
        command = Command(ANSWER, comment.get("body") or "")
        where = {**where, "plain_answer": True}
    if command.name == CONTINUE:
        command = Command("work", CONTINUE_INSTRUCTION)
    repo = delivery.repo_full_name
    spec = {
        "repo": repo,
        "installation_id": delivery.installation_id,
        "number": number,
        "is_pull": is_pull,
        "comment_id": comment["id"],
        "requester": delivery.sender_login,
        "command": command.name,
        "instruction": command.instruction,
        **where,
    }
    if command.name == ANSWER:
        return JobRequest(kind="answer", key=job_key(repo, number) + "/control", spec=spec)
    if command.name == "update":
        # On an issue the job only explains itself: nothing to acknowledge first.
        return JobRequest(kind="update", key=job_key(repo, number),
                          spec={**spec, "trigger": "command"}, acknowledge=is_pull)
    if command.name != "work":
        return JobRequest(kind="control", key=job_key(repo, number) + "/control", spec=spec)
    return JobRequest(kind="pr_command", key=job_key(repo, number), spec=spec, acknowledge=True)


@router.register("issue_comment", action="created")
def issue_comment_created(delivery: Delivery) -> JobRequest | None:
    issue = delivery.payload["issue"]
    is_pull = "pull_request" in issue
    request = _request(delivery, issue["number"], delivery.payload["comment"], is_pull=is_pull,
                       comment_kind="issue_comment")
    if request is not None and request.kind == "pr_command" and not is_pull:
        # `/backend …` on an issue: implement the issue, with the comment as extra guidance.
        return JobRequest(kind="issue", key=request.key,
                          spec={**request.spec, "title": issue.get("title", ""),
                                "trigger": "command"}, acknowledge=True)
    return request


@router.register("pull_request_review_comment", action="created")
def review_comment_created(delivery: Delivery) -> JobRequest | None:
    comment = delivery.payload["comment"]
    return _request(
        delivery, delivery.payload["pull_request"]["number"], comment, is_pull=True,
        comment_kind="review_comment",
        path=comment.get("path"),
        line=comment.get("line") or comment.get("original_line"),
        diff_hunk=comment.get("diff_hunk") or "",
        # A reply's thread is its first comment's; replies go there.
        thread_id=comment.get("in_reply_to_id") or comment["id"],
    )
