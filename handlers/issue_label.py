"""`issues.labeled` with the trigger label (`backend`, or the repository's own): implement the
issue and open a pull request."""

from __future__ import annotations

from bot.routing import Delivery, JobRequest, Router, job_key

router = Router()


@router.register("issues", action="labeled")
def issue_labeled(delivery: Delivery) -> JobRequest | None:
    payload = delivery.payload
    if (payload.get("label") or {}).get("name") != delivery.trigger_label:
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
        acknowledge=True,
    )
