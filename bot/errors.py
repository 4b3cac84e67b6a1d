"""The error tree. Everything the bot raises on purpose is a `BotError`.

    BotError
    ├── WebhookError              a delivery the bot must refuse (carries the HTTP status)
    ├── TransientError            worth retrying: network, 5xx, rate limits, model overload
    ├── UserFacingError           the user can fix it; the message is said on GitHub as is
    │    └── UnsafePath               bot.confined: a path that leaves the workspace
    ├── JobCancelled              someone asked the job to stop
    ├── SandboxUnavailable        bot.agent.sandbox: this host cannot sandbox the agent
    ├── EgressUnavailable         bot.agent.egress: no filtered network for `network: true`
    ├── ToolError                 bot.agent.tools: a tool call failed; the model reads why
    ├── RepoConfigError           bot.repo_config: `.github/backend.yml` is invalid (+ ValueError)
    ├── RegistrationError         bot.registration: the manifest flow could not finish
    ├── LocalRunError             bot.agent.local: `backend-bot run` cannot start here
    ├── SettingsError             bot.settings: the environment holds values the bot cannot use
    ├── ExecutorIdInUse           bot.executors: another live process has this executor id
    └── GitHubError               bot.github.errors: anything that went wrong talking to GitHub
         ├── NotConfigured            APP_ID / private key missing
         ├── RequestFailed            GitHub answered with an error status
         │    ├── NotFound                404
         │    ├── ValidationFailed        422 (`errors` holds GitHub's list)
         │    ├── ServerError             5xx the transport's retries did not clear  + TransientError
         │    └── RateLimited             403/429 rate limit outlasting the wait cap  + TransientError
         ├── NetworkError             no answer at all (reset, refused, timed out)   + TransientError
         └── GitError                 a git command failed (message and output already redacted)

"+ TransientError" marks classes that inherit from both: a caller can catch the GitHub side
(`except RequestFailed`) or the retry side (`except TransientError`, what the engine's steps
retry) without either knowing about the other.

This module imports nothing from the bot, so every module can import it and nothing cycles
through it. Every error here pickles and unpickles to an equal error: DBOS records a failed
step's exception by pickling it and raises it again when a workflow is replayed.
"""

from __future__ import annotations


class BotError(Exception):
    pass


class WebhookError(BotError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def __reduce__(self):
        return type(self), (self.status, self.message)


class TransientError(BotError):
    pass


class UserFacingError(BotError):
    pass


class JobCancelled(BotError):
    pass


class SettingsError(BotError):
    """Settings the bot cannot start with; `problems` holds one line for each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems

    def __reduce__(self):
        return type(self), (self.problems,)
