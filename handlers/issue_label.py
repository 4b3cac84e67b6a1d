"""`issues.labeled` with the trigger label: implement the issue and open a pull request."""

from __future__ import annotations

from bot.routing import Delivery, JobRequest, Router, job_key

TRIGGER_LABEL = "backend"

router = Router()


@router.register("issues", action="labeled")
def issue_labeled(delivery: Delivery) -> JobRequest | None:
    payload = delivery.payload
    if (payload.get("label") or {}).get("name") != TRIGGER_LABEL:
        return None
    issue = payload["issue"]
    if issue.get("state") == "closed":
        return None
    return JobRequest(
        kind="issue",
        key=job_key(delivery.repo_full_name, issue["number"]),
        spec={
            "repo": delivery.repo_full_name,
            "installation_id": delivery.installation_id,
            "number": issue["number"],
            "title": issue.get("title", ""),
            "requester": delivery.sender_login,
            "trigger": "label",
        },
    )
