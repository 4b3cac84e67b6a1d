"""Checks that failed on the head of one of the bot's branches: one round to fix them.

Four events say a commit's checks failed: `check_run` and `check_suite` (any App's checks,
GitHub Actions' among them), `workflow_run` (an Actions workflow), and `status` (commit
statuses, from CI services that predate checks). A failing commit sends several of them (each
job's check run, the suite, the workflow run), and GitHub may deliver any of them twice: every
one becomes a job keyed by the pull request (by the branch for a status, which names none),
and the first to decide leaves a comment for the commit that later jobs find and stop at (see
bot/flows/ci_fix.py).

The handler sees only the payload: the branch must look like one of the bot's (the repository's
`branch_prefix` as the webhook path last learned it; the flow checks the prefix again, the pull
request's author and its head).
"""

from __future__ import annotations

import re
from typing import Any

from bot.routing import Delivery, JobRequest, Router, job_key

router = Router()

FAILED_CONCLUSIONS = frozenset({"failure", "timed_out"})
FAILED_STATES = frozenset({"failure", "error"})

# The sha goes into a key, a spec and GitHub paths later: nothing else gets in that way.
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def _request(delivery: Delivery, *, branch: Any, sha: Any, pulls: Any, check: Any) -> JobRequest | None:
    if not isinstance(branch, str) or not branch.startswith(delivery.branch_prefix):
        return None
    if not isinstance(sha, str) or not _SHA.fullmatch(sha):
        return None
    number = None
    if isinstance(pulls, list):
        # GitHub lists only pull requests whose head is in this repository (never a fork's).
        numbers = [p.get("number") for p in pulls if isinstance(p, dict)
                   and ((p.get("head") or {}).get("ref") in (None, branch))]
        number = next((n for n in numbers if isinstance(n, int)), None)
    repo = delivery.repo_full_name
    return JobRequest(
        kind="ci_fix",
        # The pull request's key when the payload names it: its jobs run one at a time, and
        # `/backend status` and `cancel` see this one. A status names only the branch.
        key=job_key(repo, number) if number is not None else f"{repo}/ci:{branch}",
        spec={
            "repo": repo,
            "installation_id": delivery.installation_id,
            "branch": branch,
            "sha": sha,
            "number": number,
            "check": check if isinstance(check, str) else "",
            "event": delivery.event,
            "requester": delivery.sender_login,
        },
    )


def _mapping(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _own_app(delivery: Delivery, app: Any) -> bool:
    """A check of this App's own (its test run): never a reason for a round on its own."""
    slug = app.get("slug") if isinstance(app, dict) else None
    if delivery.app_slug:
        return slug == delivery.app_slug
    # Slug not known yet: the bot's check runs are the only bot-authored ones with its name.
    return isinstance(slug, str) and slug + "[bot]" == delivery.sender_login


# From bots: checks on the bot's commits are sent by the bot (it pushed them) or by the CI's
# App. A round pushes a commit whose checks may fail again; the flow's attempt bound and its
# "same failure after a fix" stop end that chain, and the bot's own check run never starts one.
@router.register("check_run", action="completed", from_bots=True)
def check_run_failed(delivery: Delivery) -> JobRequest | None:
    run = delivery.payload.get("check_run")
    if not isinstance(run, dict) or run.get("conclusion") not in FAILED_CONCLUSIONS:
        return None
    if _own_app(delivery, run.get("app")):
        return None
    suite = _mapping(run.get("check_suite"))
    return _request(delivery, branch=suite.get("head_branch"), sha=run.get("head_sha"),
                    pulls=run.get("pull_requests"), check=run.get("name"))


@router.register("check_suite", action="completed", from_bots=True)
def check_suite_failed(delivery: Delivery) -> JobRequest | None:
    suite = delivery.payload.get("check_suite")
    if not isinstance(suite, dict) or suite.get("conclusion") not in FAILED_CONCLUSIONS:
        return None
    if _own_app(delivery, suite.get("app")):
        return None
    return _request(delivery, branch=suite.get("head_branch"), sha=suite.get("head_sha"),
                    pulls=suite.get("pull_requests"), check="")


@router.register("workflow_run", action="completed", from_bots=True)
def workflow_run_failed(delivery: Delivery) -> JobRequest | None:
    run = delivery.payload.get("workflow_run")
    if not isinstance(run, dict) or run.get("conclusion") not in FAILED_CONCLUSIONS:
        return None
    head_repo = _mapping(run.get("head_repository"))
    if head_repo.get("full_name") not in (None, delivery.repo_full_name):
        return None  # a fork's branch, even if it is named like one of the bot's
    return _request(delivery, branch=run.get("head_branch"), sha=run.get("head_sha"),
                    pulls=run.get("pull_requests"), check=run.get("name"))


@router.register("status", from_bots=True)
def status_failed(delivery: Delivery) -> JobRequest | None:
    payload = delivery.payload
    if payload.get("state") not in FAILED_STATES:
        return None
    branches = payload.get("branches")
    # A status names the commit and the branches whose head it is, nothing more.
    names = [b.get("name") for b in branches if isinstance(b, dict)] if isinstance(branches, list) else []
    branch = next((n for n in names if isinstance(n, str) and n.startswith(delivery.branch_prefix)), None)
    return _request(delivery, branch=branch, sha=payload.get("sha"), pulls=None,
                    check=payload.get("context"))
