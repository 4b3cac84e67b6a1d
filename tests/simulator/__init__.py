"""A faithful local GitHub for tests: REST API, App auth, git over HTTP, webhooks, faults.

    from tests.simulator import GitHubSimulator

    sim = GitHubSimulator(tmp_path)                   # or the `github_sim` fixture
    app = sim.add_app(slug="backend-bot")             # SimApp: id, private_key_pem, webhook_secret,
                                                      #   bot_login "backend-bot[bot]", bot_id
    sim.add_repo("acme/widgets", files={"README.md": "hi"}, installation_id=42)
                                                      # real bare repo under tmp_path/git; private
    sim.add_user("alice", permission="write", repo="acme/widgets")
    n = sim.add_issue("acme/widgets", "Add a thing", "details", user="alice", labels=["bug"])
    pr = sim.add_pull("acme/widgets", "feature", title="…", user="alice")   # branch made if missing
    sim.commit("acme/widgets", "feature", {"a.py": "x = 1\n"})               # more commits
    sim.commit("acme/widgets", "main", {"CLAUDE.md": Symlink("/etc/passwd"),  # a link, and a
                                        "sub": Gitlink("1" * 40)})            #   submodule entry
    review = sim.add_review("acme/widgets", pr, user="alice",
                            comments=[{"path": "a.py", "line": 1, "body": "rename x"}])

Wire the bot to it:

    settings = load_settings(**sim.settings_overrides(), data_dir=tmp_path)
    gh_app = GitHubApp(settings, transport=sim.transport(), sleep=fake_sleep)   # in-process
    with sim.serve() as base_url:     # real server on 127.0.0.1; settings_overrides() inside
        ...                           # the block also sets GHE_HOST/GHE_PROTOCOL to it;
                                      # API at base_url and base_url/api/v3, git at
                                      # base_url/acme/widgets.git (x-access-token:<token>)

Webhooks, built from the simulator's state and signed like GitHub:

    payload = sim.event_issues_labeled("acme/widgets", n, "backend", sender="alice")
    payload = sim.event_issue_comment_created("acme/widgets", pr, "/backend fix it", sender="alice")
    payload = sim.event_pull_request_review_submitted("acme/widgets", pr, review["id"])
    payload = sim.event_pull_request("acme/widgets", pr, "opened")
    before = sim.branches("acme/widgets")["main"]
    sim.merge_pull("acme/widgets", pr, user="alice")  # the merge button: a merge commit on main
    payload = sim.event_push("acme/widgets", "main", before=before, sender="alice")
    sim.deliver(url, app.webhook_secret, "issues", payload)          # sync, to a real URL
    await sim.adeliver(url, secret, event, payload, transport=httpx.ASGITransport(app=bot_asgi))

Faults (path is a regex searched in the request path, without /api/v3):

    sim.fail_next(2, path="/pulls$", method="POST", status=502)
    sim.rate_limit_next(path="/issues", retry_after=3)                # secondary: Retry-After
    sim.rate_limit_next(path="/issues", retry_after=3, primary=True)  # x-ratelimit-remaining: 0
    sim.slow_next(path="/contents/", seconds=0.5)
    sim.drop_next(path="/repos")          # connection error (in-process transport only)
    sim.expire_tokens()                   # minted tokens now answer 401 Bad credentials
    sim.advance(3000); sim.token_ttl      # the clock tokens expire by

Inspect:

    sim.requests                          # [RecordedRequest(method, path, query, json, status, auth)]
    sim.requests_to("POST", r"/repos/acme/widgets/pulls")   # exactly-once assertions
    sim.unmatched                         # calls to routes the simulator does not know (404)
    sim.pulls("acme/widgets"), sim.comments_on(repo, n), sim.reactions_on(repo, "issue", n)
    sim.branches(repo), sim.read_file(repo, path, ref), sim.repo(repo).bare   # real git state
    sim.check_runs, sim.reviews, sim.review_comments                          # raw state

Repository state (branches, default branch, PR head shas) is read from the bare repositories,
so it reflects what was pushed. Actions taken with an installation token are done by the
App's bot user `<slug>[bot]` (type "Bot").
"""

from tests.simulator.core import (
    Fault,
    GitHubSimulator,
    RecordedRequest,
    SimApp,
    SimInstallation,
    SimRepo,
    generate_private_key,
    sign,
)
from tests.simulator.gitrepo import Gitlink, Symlink

__all__ = [
    "Fault",
    "GitHubSimulator",
    "Gitlink",
    "RecordedRequest",
    "SimApp",
    "SimInstallation",
    "SimRepo",
    "Symlink",
    "generate_private_key",
    "sign",
]
