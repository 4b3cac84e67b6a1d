"""`pull_request_review.submitted` on one of this App's pull requests: one round of work."""

from __future__ import annotations

from bot.routing import Delivery, JobRequest, Router, job_key

BOT_BRANCH_PREFIX = "backend/"
ACTIONABLE_STATES = frozenset({"commented", "changes_requested"})

router = Router()


def opened_by_this_app(delivery: Delivery, pull: dict) -> bool:
    author = pull.get("user") or {}
    if delivery.app_slug:
        return author.get("login") == f"{delivery.app_slug}[bot]"
    # Slug not known yet: a bot-authored PR on one of our branches.
    head_ref = (pull.get("head") or {}).get("ref", "")
    return author.get("type") == "Bot" and head_ref.startswith(BOT_BRANCH_PREFIX)


@router.register("pull_request_review", action="submitted")
def review_submitted(delivery: Delivery) -> JobRequest | None:
    payload = delivery.payload
    review, pull = payload["review"], payload["pull_request"]
    if (review.get("state") or "").lower() not in ACTIONABLE_STATES:
        return None
    if not opened_by_this_app(delivery, pull):
        return None
    return JobRequest(
        kind="review",
        key=job_key(delivery.repo_full_name, pull["number"]),
        spec={
            "repo": delivery.repo_full_name,
            "installation_id": delivery.installation_id,
            "number": pull["number"],
            "review_id": review["id"],
            "requester": delivery.sender_login,
            "head_ref": (pull.get("head") or {}).get("ref"),
        },
    )
