"""`push` to the default branch: the bot's open pull requests may now conflict with it.

Which of them do, and where, only a trial merge can tell, and the webhook path asks GitHub
nothing: every push that moves the default branch is one job, keyed per repository so a burst
of pushes is worked through in order (a later job finds the earlier one's merges done).
"""

from __future__ import annotations

import re

from bot.routing import Delivery, JobRequest, Router

router = Router()

# The pushed commit goes on a git command line later: a hostile payload gets no option in.
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


# From bots too: merge queues and auto-merging bots move default branches, and the job (which
# pushes only to the bot's own pull requests' branches) can never cause another such push.
@router.register("push", from_bots=True)
def default_branch_pushed(delivery: Delivery) -> JobRequest | None:
    payload = delivery.payload
    default = payload["repository"].get("default_branch")
    if not default or payload.get("ref") != f"refs/heads/{default}":
        return None
    # A created default branch has no pull requests yet; a deleted one has nowhere to merge from.
    if payload.get("created") or payload.get("deleted"):
        return None
    after = payload.get("after")
    if not isinstance(after, str) or not _SHA.fullmatch(after):
        return None
    return JobRequest(
        kind="log_merge",
        key=f"{delivery.repo_full_name}/default-branch",
        spec={"repo": delivery.repo_full_name, "installation_id": delivery.installation_id,
              "after": after, "requester": delivery.sender_login},
    )
