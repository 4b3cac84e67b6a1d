"""Per-repository configuration: `.github/backend.yml`, merged over defaults.

The caller reads the file from the repository's *default branch* (never from a pull
request's head: a pull request must not change its own rules) and hands the text to
`parse_repo_config`. An invalid file raises `RepoConfigError`, whose message is plain
sentences naming each key and what was expected, ready to be posted on the issue or PR.

    label: backend            # the issue label that triggers work
    command: backend          # the comment command word: /backend ...
    model: claude-sonnet-4-5  # default: the server's ANTHROPIC_MODEL
    max_turns: 60
    max_cost_usd: 5.0         # per run; at most the operator's BOT_MAX_COST_PER_RUN_USD
    daily_budget_usd: 20      # per UTC day; at most the operator's BOT_BUDGET_REPO_DAILY_USD
    max_minutes: 30
    test_command: pytest -q   # default: detected from the checkout
    setup_command: pip install -e .
    branch_prefix: backend/
    draft: false
    network: false            # may the agent's shell reach the network?
    min_permission: write     # read, triage, write, maintain or admin
    allowed_users: []         # if not empty, only these logins (who also need min_permission)
    ci_fix_attempts: 2        # rounds to fix failing checks on one of the bot's PRs (0: never)
"""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot import confined
from bot.errors import BotError

CONFIG_PATH = ".github/backend.yml"

PERMISSION_LEVELS: tuple[str, ...] = ("read", "triage", "write", "maintain", "admin")

Permission = Literal["read", "triage", "write", "maintain", "admin"]

_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?$")
_COMMAND = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,38}$")
_BRANCH_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,59}$")


class RepoConfigError(BotError, ValueError):
    """`.github/backend.yml` is not valid; the message says what to fix, in plain words."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))

    def __reduce__(self):  # a checkpointed failure is pickled: keep the problems, not the text
        return (self.__class__, (self.problems,))


class RepoConfig(BaseModel):
    """One repository's settings, after merging `.github/backend.yml` over the defaults."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    label: str = Field(default="backend", min_length=1, max_length=50)
    command: str = "backend"
    model: str | None = Field(default=None, min_length=1)
    max_turns: int = Field(default=60, ge=1, le=500)
    max_cost_usd: float = Field(default=5.0, ge=0.01, le=1000)
    daily_budget_usd: float | None = Field(default=None, ge=0.01, le=100_000)
    max_minutes: int = Field(default=30, ge=1, le=600)
    test_command: str | None = Field(default=None, min_length=1)
    setup_command: str | None = Field(default=None, min_length=1)
    branch_prefix: str = "backend/"
    draft: bool = False
    network: bool = False
    min_permission: Permission = "write"
    allowed_users: tuple[str, ...] = ()
    ci_fix_attempts: int = Field(default=2, ge=0, le=10)

    @field_validator("command", mode="before")
    @classmethod
    def _command_word(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().removeprefix("/")
            if not _COMMAND.match(value):
                raise ValueError("not a command word")
        return value

    @field_validator("branch_prefix")
    @classmethod
    def _branch_prefix(cls, value: str) -> str:
        if not _BRANCH_PREFIX.match(value) or ".." in value or value.endswith((".", ".lock")):
            raise ValueError("not a branch prefix")
        return value

    @field_validator("allowed_users", mode="before")
    @classmethod
    def _logins(cls, value: Any) -> Any:
        if isinstance(value, list):
            value = tuple(value)
        if isinstance(value, tuple):
            for login in value:
                if not isinstance(login, str) or not _LOGIN.match(login):
                    raise ValueError("not a login")
        return value

    @property
    def slash_command(self) -> str:
        return f"/{self.command}"


DEFAULT_CONFIG = RepoConfig()

# What each key must be, in the words the error message uses.
_EXPECTED: dict[str, str] = {
    "label": "a label name (text of 1 to 50 characters)",
    "command": "one word such as `backend` (letters, digits, `-` or `_`), used as `/backend`",
    "model": "a model name such as `claude-sonnet-4-5`, or left out to use the server's model",
    "max_turns": "a whole number between 1 and 500",
    "max_cost_usd": "a number of US dollars between 0.01 and 1000",
    "daily_budget_usd": "a number of US dollars between 0.01 and 100000, or left out",
    "max_minutes": "a whole number of minutes between 1 and 600",
    "test_command": "a shell command as text, or left out to detect it",
    "setup_command": "a shell command as text, or left out",
    "branch_prefix": "the start of a branch name such as `backend/` (letters, digits, `.`, `_`, `-`, `/`)",
    "draft": "true or false",
    "network": "true or false",
    "min_permission": "one of " + ", ".join(PERMISSION_LEVELS),
    "allowed_users": "a list of GitHub logins such as [octocat, hubot]",
    "ci_fix_attempts": "a whole number between 0 and 10 (0: never fix failing checks)",
}


def parse_repo_config(text: str | None, *, path: str = CONFIG_PATH) -> RepoConfig:
    """Parse the text of `.github/backend.yml` (None or empty: defaults) or raise RepoConfigError."""
    if text is None or not text.strip():
        return DEFAULT_CONFIG
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or "it could not be read"
        raise RepoConfigError([f"`{path}` is not valid YAML{where}: {problem}."]) from None
    if data is None:
        return DEFAULT_CONFIG
    if not isinstance(data, dict):
        raise RepoConfigError(
            [
                f"`{path}` must be a mapping of keys to values (such as `max_turns: 60`), "
                f"but it is {_kind(data)}."
            ]
        )

    problems: list[str] = []
    known = list(RepoConfig.model_fields)
    for key in data:
        if not isinstance(key, str) or key not in RepoConfig.model_fields:
            suggestion = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            hint = f" Did you mean `{suggestion[0]}`?" if suggestion else ""
            problems.append(
                f"`{path}`: `{key}` is not a setting this bot knows.{hint} "
                f"Known settings: {', '.join(known)}."
            )
    values = {k: v for k, v in data.items() if isinstance(k, str) and k in RepoConfig.model_fields}
    try:
        config = RepoConfig.model_validate(values)
    except ValidationError as exc:
        seen: set[str] = set()
        for error in exc.errors():
            key = str(error["loc"][0]) if error["loc"] else ""
            if key in seen or key not in _EXPECTED:
                continue
            seen.add(key)
            problems.append(f"`{path}`: `{key}` must be {_EXPECTED[key]}, got {_show(values[key])}.")
        config = None
    if problems:
        raise RepoConfigError(problems)
    assert config is not None
    return config


def read_checkout_config(checkout: Path) -> RepoConfig:
    """The settings of a local checkout (`backend-bot run`): its own `.github/backend.yml`
    over the defaults, read as the bot reads any checkout (no link followed)."""
    return parse_repo_config(confined.read_text(checkout, CONFIG_PATH))


# What a setting left empty means, for `render_settings`.
_WHEN_EMPTY = {
    "model": "the server's ANTHROPIC_MODEL",
    "test_command": "detected from the checkout",
    "setup_command": "none",
    "daily_budget_usd": "the operator's BOT_BUDGET_REPO_DAILY_USD, if any",
}


def render_settings(config: RepoConfig) -> str:
    """The settings as the YAML of a `.github/backend.yml`, those the file left out marked as
    defaults, so a reader sees what the bot will do and where it came from."""
    values = config.model_dump(mode="json")
    # A mapping that holds a list is written in block style and the list in flow style: one
    # line per setting (a value with line breaks continues on indented lines).
    dumped = yaml.safe_dump(values, default_flow_style=None, sort_keys=False,
                            allow_unicode=True, width=1_000_000)
    texts: list[str] = []
    for line in dumped.splitlines():
        if line[:1].isspace():
            texts[-1] += "\n" + line
        else:
            texts.append(line)
    lines = []
    for (key, value), text in zip(values.items(), texts, strict=True):
        notes = [] if key in config.model_fields_set else ["default"]
        if value is None:
            notes.append(_WHEN_EMPTY[key])
        lines.append((text, ": ".join(notes)))
    width = max(len(text.splitlines()[-1]) for text, _ in lines)
    return "".join(
        f"{text.ljust(width)}  # {note}\n" if note else f"{text}\n" for text, note in lines
    )


def meets_permission(config: RepoConfig, login: str, permission: str | None) -> bool:
    """May `login`, whose permission on the repository is `permission`, trigger work?

    `permission` is GitHub's word for the collaborator (`admin`, `maintain`, `write`,
    `triage`, `read`, or `none`; the REST API's `role_name` carries all five). Anything
    unknown counts as no permission. When `allowed_users` is set, the login must be listed
    too (case-insensitively, as GitHub logins are).
    """
    level = (permission or "").strip().lower()
    if level not in PERMISSION_LEVELS:
        return False
    if PERMISSION_LEVELS.index(level) < PERMISSION_LEVELS.index(config.min_permission):
        return False
    if config.allowed_users:
        return login.lower() in {user.lower() for user in config.allowed_users}
    return True


_NPM_PLACEHOLDER_TEST = "no test specified"
_MAKE_TEST_TARGET = re.compile(r"^test\s*:(?![:=])|^test\s*::(?!=)", re.MULTILINE)
_PYTHON_MARKERS = ("pyproject.toml", "setup.cfg", "setup.py", "pytest.ini", "tox.ini")
_MARKER_MAX_BYTES = 1024 * 1024


def detect_test_command(workspace: Path) -> str | None:
    """Guess the repository's test command from the files at its root, or None.

    The Makefile's `test` target wins, as the project's own word on how it tests; then
    `package.json`'s test script, Python, Go and Rust. The checkout is untrusted: files are
    read through `bot.confined` (no link followed, no special file, capped), and a link in
    place of a marker file counts as no file.
    """
    workspace = Path(workspace)
    for name in ("GNUmakefile", "makefile", "Makefile"):
        makefile = _read(workspace, name)
        if makefile is not None and _MAKE_TEST_TARGET.search(makefile):
            return "make test"
    package = _read(workspace, "package.json")
    if package is not None:
        try:
            scripts = json.loads(package).get("scripts") or {}
        except (ValueError, AttributeError):
            scripts = {}
        test = scripts.get("test") if isinstance(scripts, dict) else None
        if isinstance(test, str) and test.strip() and _NPM_PLACEHOLDER_TEST not in test:
            return "npm test"
    if any(confined.is_regular_file(workspace, marker) for marker in _PYTHON_MARKERS) or (
        _has_python_tests(workspace)
    ):
        return "pytest"
    if confined.is_regular_file(workspace, "go.mod"):
        return "go test ./..."
    if confined.is_regular_file(workspace, "Cargo.toml"):
        return "cargo test"
    return None


def _has_python_tests(workspace: Path, limit: int = 10_000) -> bool:
    for name in ("tests", "test"):
        entry = workspace / name
        if not entry.is_dir() or entry.is_symlink():
            continue
        if any(relative.endswith(".py") and item.is_file(follow_symlinks=False)
               for relative, item in confined.walk(entry, limit=limit)):
            return True
    return False


def _read(workspace: Path, name: str) -> str | None:
    try:
        return confined.read_text(workspace, name, max_bytes=_MARKER_MAX_BYTES)
    except (OSError, confined.UnsafePath):
        return None


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a single piece of text"
    if isinstance(value, bool):
        return "a single true/false value"
    if isinstance(value, (int, float)):
        return "a single number"
    return f"a {type(value).__name__}"


def _show(value: Any) -> str:
    """Render a YAML value the way the user wrote it, near enough."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (int, float)):
        return str(value)
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return repr(value)
