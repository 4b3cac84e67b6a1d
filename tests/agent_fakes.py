"""A scripted, Anthropic-compatible Messages API on 127.0.0.1, for tests of the agent and flows.

The real `anthropic` SDK talks to it over HTTP (the SDK uses httpx2, which respx cannot
patch), so everything between `run_agent` and the wire is exercised for real.

Usage::

    from tests.agent_fakes import FakeAnthropic, tool_use, finish, ask, say, http_error

    with FakeAnthropic([
        tool_use("TodoWrite", todos=[{"content": "Add x", "status": "in_progress", "activeForm": "Adding x"}]),
        tool_use("Write", file_path="x.py", content="X = 1\\n"),
        finish(title="Add x"),
    ]) as fake:
        result = await run_agent(client=fake.client(), model="claude-haiku-4-5", ...)
    assert result.outcome == "finished"
    assert fake.requests[1]["messages"][-1]["content"][0]["type"] == "tool_result"
    fake.tool_results(1)  # the tool_result blocks the agent sent in request 1

Each script item answers one POST /v1/messages, in order:

- a response dict (build it with `reply`, `tool_use`, `tool_uses`, `say`, `finish`, `ask`);
- `http_error(status)`, an error answer (429, 529, 500 ...) in the API's error shape;
- a callable `f(request_body) -> item`, to answer from what was sent.

A request with nothing left in the script gets HTTP 400 ("unscripted request", not retried
by the loop) and is counted in `fake.unscripted`, so unplanned calls fail loudly.
`fake.requests` holds every request body received (parsed JSON), in order.

`usage` on each response defaults to 100 input / 20 output tokens; pass `usage={...}` to a
builder, or `usage_fn=f(request_body) -> dict` to the fake to compute it from the request
(the token benchmark does that to model prompt caching).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_USAGE = {"input_tokens": 100, "output_tokens": 20}
_ids = itertools.count(1)


def reply(*blocks: dict, stop_reason: str | None = None, usage: dict | None = None) -> dict:
    """A Messages API response with these content blocks."""
    if stop_reason is None:
        stop_reason = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
    return {
        "id": f"msg_fake_{next(_ids)}",
        "type": "message",
        "role": "assistant",
        "model": "fake",
        "content": list(blocks),
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": dict(usage) if usage is not None else None,  # None: filled by the fake
    }


def text_block(text: str) -> dict:
    return {"type": "text", "text": text}


def tool_block(name: str, input: Any, id: str | None = None) -> dict:
    return {"type": "tool_use", "id": id or f"toolu_fake_{next(_ids)}", "name": name, "input": input}


def tool_use(name: str, /, *, usage: dict | None = None, text: str | None = None, **input: Any) -> dict:
    """A response calling one tool with keyword arguments as its input."""
    blocks = [text_block(text)] if text else []
    return reply(*blocks, tool_block(name, input), usage=usage)


def tool_uses(*calls: tuple[str, Any], usage: dict | None = None) -> dict:
    """A response calling several tools at once: tool_uses(("Read", {...}), ("Grep", {...}))."""
    return reply(*(tool_block(name, input) for name, input in calls), usage=usage)


def say(text: str, *, stop_reason: str = "end_turn", usage: dict | None = None) -> dict:
    """A response with text only (no tool call)."""
    return reply(text_block(text), stop_reason=stop_reason, usage=usage)


FINISH_DEFAULTS = {
    "task_summary": "Did the task.",
    "files_modified": "- `app.py`: changed.",
    "key_decisions": "Kept it simple.",
    "database_changes": "None.",
    "api_changes": "None.",
    "dependencies": "None.",
    "testing_performed": "Ran the tests: all pass.",
    "next_steps": "None.",
    "potential_issues": "None.",
}


def finish(title: str = "Do the task", *, usage: dict | None = None, **sections: Any) -> dict:
    """A response calling FinishWork; sections not given get short defaults."""
    return tool_use("FinishWork", usage=usage, title=title, **{**FINISH_DEFAULTS, **sections})


def ask(question: str, *, usage: dict | None = None) -> dict:
    """A response calling AskQuestion."""
    return tool_use("AskQuestion", usage=usage, question=question)


class HttpError:
    """A scripted error answer."""

    def __init__(self, status: int, message: str | None = None, headers: dict | None = None) -> None:
        self.status = status
        self.message = message or f"fake error {status}"
        self.headers = headers or {}

    def body(self) -> dict:
        kind = {
            400: "invalid_request_error",
            401: "authentication_error",
            429: "rate_limit_error",
            529: "overloaded_error",
        }.get(self.status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": self.message}}


def http_error(status: int, message: str | None = None, *, retry_after: float | None = None) -> HttpError:
    headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
    return HttpError(status, message, headers)


class FakeAnthropic:
    """The scripted server. Use as a context manager (or call start()/stop())."""

    def __init__(
        self,
        script: list[Any] | None = None,
        *,
        usage_fn: Callable[[dict], dict] | None = None,
    ) -> None:
        self.script: list[Any] = list(script or [])
        self.usage_fn = usage_fn
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.paths: list[str] = []
        self.token_requests = 0
        self.unscripted = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> FakeAnthropic:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_raw": raw.decode(errors="replace")}
                status, payload, headers = fake._answer(self.path, dict(self.headers), body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- use -------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self._server is not None, "start the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def client(self, **kwargs: Any):
        """An AsyncAnthropic pointed at this fake (no retries of its own, dummy key)."""
        import anthropic

        kwargs.setdefault("api_key", "sk-ant-test-fake-key")
        kwargs.setdefault("max_retries", 0)
        kwargs.setdefault("timeout", 30)
        return anthropic.AsyncAnthropic(base_url=self.base_url, **kwargs)

    def add(self, *items: Any) -> None:
        """Append items to the script."""
        with self._lock:
            self.script.extend(items)

    @property
    def remaining(self) -> int:
        return len(self.script)

    def tool_results(self, index: int = -1) -> list[dict]:
        """The tool_result blocks of the last user message of request `index`."""
        content = self.requests[index]["messages"][-1]["content"]
        if isinstance(content, str):
            return []
        return [b for b in content if b.get("type") == "tool_result"]

    # -- internals -------------------------------------------------------------------------
    def _answer(self, path: str, headers: dict, body: dict) -> tuple[int, dict, dict]:
        with self._lock:
            if path == GOOGLE_TOKEN_PATH:
                self.token_requests += 1
                return 200, {"access_token": GOOGLE_ACCESS_TOKEN, "expires_in": 3600,
                             "token_type": "Bearer"}, {}
            model = _routed_model(path)
            if model is None:
                self.unscripted += 1
                return 404, HttpError(404, f"fake: no route {path}").body(), {}
            self.requests.append(body)
            self.headers.append(headers)
            self.paths.append(path)
            if not self.script:
                self.unscripted += 1
                return 400, HttpError(400, "fake: unscripted request (the script is exhausted)").body(), {}
            item = self.script.pop(0)
        if callable(item) and not isinstance(item, HttpError):
            item = item(body)
        if isinstance(item, HttpError):
            return item.status, item.body(), item.headers
        response = json.loads(json.dumps(item))
        if response.get("usage") is None:
            response["usage"] = self.usage_fn(body) if self.usage_fn else dict(DEFAULT_USAGE)
        response.setdefault("model", body.get("model") or model or "fake")
        return 200, response, {}


# Bedrock names the model in the path (`/model/{id}/invoke`), Vertex too
# (`/projects/{p}/locations/{r}/publishers/anthropic/models/{id}:rawPredict`); both send
# `anthropic_version` in the body and no `model`.
_BEDROCK_PATH = re.compile(r"^/model/(?P<model>[^/]+)/invoke$")
_VERTEX_PATH = re.compile(
    r"^(?:/v1)?/projects/[^/]+/locations/[^/]+/publishers/anthropic/models/(?P<model>[^/:]+):rawPredict$")
# Google's OAuth token endpoint, for a credentials file whose `token_uri` points at the fake.
GOOGLE_TOKEN_PATH = "/oauth2/token"
GOOGLE_ACCESS_TOKEN = "ya29.fake-google-access-token-0123456789"


def _routed_model(path: str) -> str | None:
    """The model a Messages request names in its path ("" for Anthropic's API, which names
    it in the body), or None for a path none of the three providers uses."""
    path = path.split("?")[0]
    if path.rstrip("/").endswith("/v1/messages"):
        return ""
    found = _BEDROCK_PATH.match(path) or _VERTEX_PATH.match(path)
    return urllib.parse.unquote(found["model"]) if found else None


def make_repo(path, files: dict[str, str] | None = None, *, commit: bool = True):
    """A real git repository at `path` holding `files` (relative path -> text), committed.

    Returns the path. The committer is set in the repository's own config, so commits work
    on machines without a global git identity.
    """
    import subprocess
    from pathlib import Path

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("config", "user.name", "Test Person")
    git("config", "user.email", "test@example.com")
    for name, text in (files or {}).items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    if commit:
        git("add", "-A")
        git("commit", "-q", "--allow-empty", "-m", "initial")
    return path
