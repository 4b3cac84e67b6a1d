"""GitHub for the bot: the App (JWT, installation tokens), a typed REST client, and git.

    app = GitHubApp(settings)                       # transport=..., sleep=... in tests
    gh = await app.installation(installation_id)    # InstallationClient
    await gh.add_reaction("acme/widgets", "issue", 42, "eyes")
    await git.clone(repo.clone_url, dest, token=await gh.token())

`app` holds the App and its token cache; `client` the operations of one installation and
`models` what they return; `rest` makes one call and sorts its failures into `errors`;
`transport` retries and waits out rate limits underneath; `git` runs git with a token.
"""

from bot.github import git
from bot.github.app import AppIdentity, GitHubApp, InstallationToken
from bot.github.client import InstallationClient
from bot.github.errors import (
    GitError,
    GitHubError,
    NetworkError,
    NotConfigured,
    NotFound,
    RateLimited,
    RequestFailed,
    ServerError,
    ValidationFailed,
)
from bot.github.models import (
    CheckRun,
    Comment,
    Issue,
    PullRequest,
    Reaction,
    Repo,
    Review,
    ReviewComment,
    User,
)
from bot.github.transport import API_VERSION, RetryTransport

__all__ = [
    "API_VERSION",
    "AppIdentity",
    "CheckRun",
    "Comment",
    "GitError",
    "GitHubApp",
    "GitHubError",
    "InstallationClient",
    "InstallationToken",
    "Issue",
    "NetworkError",
    "NotConfigured",
    "NotFound",
    "PullRequest",
    "RateLimited",
    "Reaction",
    "Repo",
    "RequestFailed",
    "RetryTransport",
    "Review",
    "ReviewComment",
    "ServerError",
    "User",
    "ValidationFailed",
    "git",
]
