"""What the bot says on GitHub, as constants: the flows pick a text and fill it in.

`{command}` is the repository's own command word (`backend` unless its `.github/backend.yml`
chooses another), so the texts never tell a user to type a command that does nothing there.
"""

from __future__ import annotations

QUEUED_BEHIND = (
    "⏳ **Queued** behind {ahead} earlier backend-bot job(s) on #{number}; this one starts "
    "when they are done. `/{command} status` lists them."
)
QUEUED_FOR_WORKER = (
    "⏳ **Queued:** every backend-bot worker is busy; this starts when one is free{ahead}."
)
QUEUED_AHEAD = " ({count} other job(s) wait ahead of it)"
WORKING = "🛠️ **Working on it** ({elapsed}): {stage}."
STAGE_STARTING = "starting"
STAGE_PREPARING = "preparing a checkout of the repository"
STAGE_PLANNING = "reading the code and making a plan"
STAGE_EDITING = "working through its plan"
STAGE_TESTING = "running the repository's tests"
STAGE_PUSHING = "committing and pushing"
DONE_OPENED = "✅ **Done.** Opened {pr_link}."
DONE_UPDATED = "✅ **Done.** Updated {pr_link} with a new commit."
NO_CHANGES = (
    "ℹ️ **Finished without changes.** The agent did not change any file, so there is no "
    "pull request. Its summary:\n\n> {summary}"
)
WAITING_FOR_ANSWER = (
    "❓ **Waiting for an answer from @{login}.** The agent needs to know something before it "
    "can go on; its question is below. Reply in a comment here (or, anyone with write access: "
    "`/{command} answer …`) and the run goes on where it stopped. `/{command} cancel` stops "
    "waiting; the wait ends by itself after {wait}."
)
# A limit's headline: the run hit it, or wrapped up in the reserve before it.
LIMIT_HIT = "Stopped at its {limit} limit"
LIMIT_NEARED = "Wrapped up as it neared its {limit} limit"
ANSWERED = "💬 **Answered** by @{login}: the run goes on where it stopped, as job {job_id}."
NOTHING_TO_ANSWER = "Nothing to answer: no question of backend-bot waits for an answer on #{number}."
EMPTY_ANSWER = "The answer is empty: write it after the command, as in `/{command} answer Use PostgreSQL.`"
WAIT_EXPIRED = (
    "⌛ **No answer came** within {wait}, so backend-bot stopped waiting for one. To start "
    "again, {retry_hint}."
)
WAIT_CANCELLED = "🛑 **Cancelled** while waiting for an answer. To start again, {retry_hint}."
WAIT_SUPERSEDED = "⏭️ **No longer waiting:** newer work on this thread (job {job_id}) took over."
STATUS_WAITING = "❓ Job {job_id}'s question waits for an answer from @{login} (asked {since})."
STOPPED_WAITING = "🛑 Stopped waiting for an answer to the question of job {job_id}."
LIMITED = (
    "⏸️ **{headline}.** The work so far is in the draft pull request "
    "{pr_link}; its entry's Next Steps say what is left. Comment `/{command} continue` to go on."
)
LIMITED_PUSHED = (
    "⏸️ **{headline}.** Pushed {commit} with the work so far; its entry's "
    "Next Steps say what is left. Comment `/{command} continue` to go on."
)
LIMITED_NO_CHANGES = (
    "⏸️ **{headline}**, without changing any file: {summary}\n\nComment "
    "`/{command} continue` to go on."
)
FAILED = "❌ **Failed:** {reason}\n\nTo try again, {retry_hint}."
ABANDONED = "backend-bot gave this job up: {reason}."
KEPT_FAILING = "a service backend-bot needs kept failing ({error}); it may work in a while"
CANCELLED = "🛑 **Cancelled** by request. To start again, {retry_hint}."
RETRY_HINT_ISSUE = "comment `/{command} retry` or remove and re-add the `{label}` label"
RETRY_HINT_PR = "comment `/{command} retry`"
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
    "backend-bot to work. A maintainer can add the label or comment `/{command} …` instead."
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

# Failing checks on one of the bot's pull requests (bot/flows/ci_fix.py). `{sha}` and `{checks}`
# come already inert (code spans).
CI_FIX_WHAT_FAILED = "**Checks failed** on {sha} (round {round} of {attempts} of fixing them):"
CI_FIX_DONE = "✅ **Fixed, the checks will tell.** Pushed {commit} to this pull request: {summary}"
CI_FIX_LEFT_ALONE = "Left alone, as they fail the same way on {branch} too: {checks}."
CI_FIX_RETRY_HINT = "comment `/{command} fix the failing checks`"
CI_FIX_ALSO_ON_DEFAULT = (
    "ℹ️ Checks failed on {sha}: {checks}. They fail the same way on the default branch {branch}, so this "
    "pull request did not break them, and backend-bot does not try to fix them here. Once they "
    "pass on {branch}, `/{command} update` brings that here."
)
CI_FIX_SAME_FAILURE = (
    "🛑 {checks} still fail the same way on {sha}, after backend-bot's fix: it stops here "
    "rather than try the same again. A person should look; `/{command} …` asks for another round."
)
CI_FIX_NO_ROUNDS_LEFT = (
    "🛑 Checks failed on {sha}: {checks}. backend-bot has used the {attempts} round(s) of "
    "fixing failing checks it gets on a pull request (`ci_fix_attempts` in "
    "`.github/backend.yml`). `/{command} …` asks for another round."
)
CI_FIX_PAUSED = (
    "⏸️ Checks failed on {sha}, a commit that is not backend-bot's: while people work on this "
    "branch, backend-bot does not fix its failing checks. `/{command} …` asks it for a round."
)

RATE_LIMITED = (
    "Sorry @{login}, you have asked backend-bot for work {limit} times in the last hour, as often "
    "as this bot's operator allows one person, so this request was not started. Please ask again "
    "after {again}. Until then more requests are not answered; the `help`, `status` and `cancel` "
    "commands still work."
)
QUESTION_COMMENT = (
    "{marker}\n❓ @{login}, before going on the agent asks:\n\n{question}\n\n"
    "*Reply with your answer in a comment: the run goes on where it stopped.*"
)
QUESTION_REPLY = (
    "❓ @{login}, before going on the agent asks:\n\n{question}\n\n"
    "*Reply with your answer in a comment: the run goes on where it stopped.*"
)

# `/backend update` and the update rounds that keep the bot's pull requests mergeable.
RETRY_HINT_UPDATE = "comment `/{command} update`"
UPDATE_NOT_A_PULL = (
    "`/{command} update` merges the default branch into one of backend-bot's pull requests; "
    "this is an issue, so there is nothing to update."
)
UPDATE_NOT_OURS = (
    "Sorry @{login}, `/{command} update` merges the default branch into backend-bot's own pull "
    "requests only, and this one is not backend-bot's ({why}); backend-bot never pushes to "
    "someone else's branch. GitHub's **Update branch** button does this for any pull request."
)
UPDATE_UP_TO_DATE = "✅ **Up to date.** This pull request already has everything on {base}: nothing to merge."
UPDATE_MERGED = (
    "✅ **Done.** Merged {base} into this pull request in {commit}, with no conflict for the "
    "agent to resolve (the work log, when it conflicts, is combined entry by entry)."
)
UPDATE_RESOLVED = "✅ **Done.** Merged {base} into this pull request in {commit}, the conflicts resolved: {summary}"
UPDATE_LEFT = "⚠️ **Not merged:** the conflicts with {base} need a person; the comment below names the files."
UPDATE_CONFLICTS = (
    "⚠️ **{base} no longer merges into this pull request**, and backend-bot could not resolve "
    "the conflicts ({reason}), so it pushed nothing. The conflicting files:\n\n{files}\n\n"
    "{detail}Resolve them by hand (merge {base} into the branch), or comment `/{command} update` "
    "to have backend-bot try again."
)
UPDATE_QUESTION = "the agent needs a person's decision"
UPDATE_SETTLED = "✅ The conflicts with {base} are resolved: merged into this pull request in {commit}."
