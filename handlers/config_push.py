"""`push` to the default branch that touches `.github/backend.yml`: learn the new trigger words.

The webhook path decides from the payload and what the bot already knows, never by asking
GitHub; so when a repository changes its label or command word, a small job reads the file
and the intake knows the new words from then on.
"""

from __future__ import annotations

from bot.repo_config import CONFIG_PATH
from bot.routing import Delivery, JobRequest, Router

router = Router()


@router.register("push")
def config_pushed(delivery: Delivery) -> JobRequest | None:
    payload = delivery.payload
    repository = payload["repository"]
    if payload.get("ref") != f"refs/heads/{repository.get('default_branch')}":
        return None
    touched = {
        path
        for commit in payload.get("commits") or []
        for path in (commit.get("added") or []) + (commit.get("modified") or [])
        + (commit.get("removed") or [])
    }
    if CONFIG_PATH not in touched:
        return None
    return JobRequest(
        kind="config",
        key=f"{delivery.repo_full_name}/config",
        spec={"repo": delivery.repo_full_name, "installation_id": delivery.installation_id,
              "requester": delivery.sender_login},
    )
