"""`.github/backend.yml`: defaults, overrides, and every kind of invalid file in plain words."""

from __future__ import annotations

import json

import pydantic
import pytest

from bot.repo_config import (
    DEFAULT_CONFIG,
    RepoConfig,
    RepoConfigError,
    detect_test_command,
    meets_permission,
    parse_repo_config,
    render_settings,
)


def problems_of(text: str) -> str:
    with pytest.raises(RepoConfigError) as caught:
        parse_repo_config(text)
    return str(caught.value)


# ---- defaults and overrides -------------------------------------------------------------


@pytest.mark.parametrize("text", [None, "", "   \n", "# only a comment\n", "---\n"])
def test_missing_or_empty_file_gives_the_defaults(text):
    assert parse_repo_config(text) == DEFAULT_CONFIG


def test_defaults():
    config = DEFAULT_CONFIG
    assert config.label == "backend"
    assert config.command == "backend" and config.slash_command == "/backend"
    assert config.model is None
    assert (config.max_turns, config.max_cost_usd, config.max_minutes) == (60, 5.0, 30)
    assert config.test_command is None and config.setup_command is None
    assert config.branch_prefix == "backend/"
    assert config.draft is False and config.network is False
    assert config.min_permission == "write"
    assert config.allowed_users == ()


def test_overrides_merge_over_defaults():
    config = parse_repo_config(
        """
label: ai-backend
command: /bot        # a leading slash is forgiven
model: claude-sonnet-4-5
max_turns: 120
max_cost_usd: 12    # a whole number is a fine amount
test_command: make check
setup_command: pip install -e .
draft: yes
network: true
min_permission: maintain
allowed_users: [octocat, Hubot]
"""
    )
    assert config.label == "ai-backend"
    assert config.command == "bot" and config.slash_command == "/bot"
    assert config.model == "claude-sonnet-4-5"
    assert config.max_turns == 120
    assert config.max_cost_usd == 12.0
    assert config.test_command == "make check"
    assert config.setup_command == "pip install -e ."
    assert config.draft is True and config.network is True
    assert config.min_permission == "maintain"
    assert config.allowed_users == ("octocat", "Hubot")
    # untouched keys keep their defaults
    assert config.max_minutes == 30 and config.branch_prefix == "backend/"


def test_nullable_keys_accept_an_explicit_null():
    config = parse_repo_config("model: null\ntest_command: ~\n")
    assert config.model is None and config.test_command is None


# ---- invalid files ----------------------------------------------------------------------


def test_bad_yaml_names_the_line():
    message = problems_of("label: backend\nmax_turns: [1, 2\n")
    assert message.startswith("`.github/backend.yml` is not valid YAML at line ")
    assert "Traceback" not in message


def test_a_list_instead_of_a_mapping():
    assert problems_of("- label: backend\n- max_turns: 3\n") == (
        "`.github/backend.yml` must be a mapping of keys to values (such as `max_turns: 60`), "
        "but it is a list."
    )


def test_a_bare_scalar_instead_of_a_mapping():
    assert "but it is a single piece of text" in problems_of("backend\n")


def test_unknown_key_with_a_suggestion():
    message = problems_of("max_turn: 10\n")
    assert message.startswith(
        "`.github/backend.yml`: `max_turn` is not a setting this bot knows. Did you mean `max_turns`?"
    )
    assert "Known settings: label, command," in message


def test_unknown_key_without_anything_close():
    message = problems_of("colour: blue\n")
    assert "`colour` is not a setting this bot knows." in message
    assert "Did you mean" not in message


def test_wrong_type_in_the_issues_own_words():
    assert problems_of("max_turns: lots\n") == (
        "`.github/backend.yml`: `max_turns` must be a whole number between 1 and 500, got 'lots'."
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("max_turns: true", "`max_turns` must be a whole number between 1 and 500, got true."),
        ("max_turns: 2.5", "`max_turns` must be a whole number between 1 and 500, got 2.5."),
        ("max_turns:", "`max_turns` must be a whole number between 1 and 500, got nothing."),
        ("draft: 1", "`draft` must be true or false, got 1."),
        ("network: 'no'", "`network` must be true or false, got 'no'."),
        ("max_cost_usd: '5'", "`max_cost_usd` must be a number of US dollars between 0.01 and 1000, got '5'."),
        ("label: [a, b]", '`label` must be a label name (text of 1 to 50 characters), got ["a", "b"].'),
        ("allowed_users: octocat", "`allowed_users` must be a list of GitHub logins such as [octocat, hubot], got 'octocat'."),
        ("allowed_users: [octocat, 'not a login']", "`allowed_users` must be a list of GitHub logins"),
        ("command: do it", "`command` must be one word such as `backend`"),
        ("branch_prefix: 'bad prefix/'", "`branch_prefix` must be the start of a branch name"),
        ("branch_prefix: 'a..b/'", "`branch_prefix` must be the start of a branch name"),
        ("test_command: ''", "`test_command` must be a shell command as text, or left out to detect it, got ''."),
    ],
)
def test_wrong_types(text, expected):
    assert expected in problems_of(text + "\n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("max_turns: 0", "got 0."),
        ("max_turns: 501", "got 501."),
        ("max_cost_usd: 0", "between 0.01 and 1000, got 0."),
        ("max_cost_usd: 1000.5", "got 1000.5."),
        ("max_minutes: 0", "`max_minutes` must be a whole number of minutes between 1 and 600"),
        ("max_minutes: 601", "got 601."),
    ],
)
def test_out_of_range(text, expected):
    assert expected in problems_of(text + "\n")


def test_bad_permission_word():
    assert problems_of("min_permission: owner\n") == (
        "`.github/backend.yml`: `min_permission` must be one of read, triage, write, maintain, "
        "admin, got 'owner'."
    )


def test_every_problem_is_reported_at_once():
    with pytest.raises(RepoConfigError) as caught:
        parse_repo_config("max_turns: lots\nlable: x\ndraft: maybe\n")
    problems = caught.value.problems
    assert len(problems) == 3
    assert str(caught.value) == "\n".join(problems)
    assert any("`lable`" in p and "Did you mean `label`?" in p for p in problems)
    assert any("`max_turns`" in p for p in problems)
    assert any("`draft` must be true or false, got 'maybe'." in p for p in problems)


def test_error_is_a_value_error_and_the_config_is_immutable():
    assert issubclass(RepoConfigError, ValueError)
    with pytest.raises(pydantic.ValidationError):
        DEFAULT_CONFIG.max_turns = 5  # type: ignore[misc]


# ---- who may trigger --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("permission", "allowed"),
    [
        ("admin", True),
        ("maintain", True),
        ("write", True),
        ("WRITE", True),
        ("triage", False),
        ("read", False),
        ("none", False),
        ("", False),
        (None, False),
        ("owner", False),
    ],
)
def test_meets_permission_default_is_write(permission, allowed):
    assert meets_permission(DEFAULT_CONFIG, "octocat", permission) is allowed


def test_meets_permission_with_a_lower_minimum():
    config = parse_repo_config("min_permission: triage\n")
    assert meets_permission(config, "a", "triage")
    assert not meets_permission(config, "a", "read")


def test_allowed_users_restrict_further_case_insensitively():
    config = parse_repo_config("allowed_users: [Octocat]\n")
    assert meets_permission(config, "octocat", "write")
    assert not meets_permission(config, "hubot", "admin")
    assert not meets_permission(config, "octocat", "read")  # still needs min_permission


# ---- test command detection -------------------------------------------------------------


def test_detect_nothing_in_an_empty_checkout(tmp_path):
    assert detect_test_command(tmp_path) is None


def test_detect_pytest_from_pyproject(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname='x'\n")
    assert detect_test_command(tmp_path) == "pytest"


def test_detect_pytest_from_a_tests_folder(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("def test(): pass\n")
    assert detect_test_command(tmp_path) == "pytest"


def test_an_empty_tests_folder_is_not_python(tmp_path):
    (tmp_path / "tests").mkdir()
    assert detect_test_command(tmp_path) is None


def test_detect_npm_test_only_with_a_real_test_script(tmp_path):
    package = tmp_path / "package.json"
    package.write_text(json.dumps({"scripts": {"test": 'echo "Error: no test specified" && exit 1'}}))
    assert detect_test_command(tmp_path) is None
    package.write_text(json.dumps({"scripts": {"build": "tsc"}}))
    assert detect_test_command(tmp_path) is None
    package.write_text("{not json")
    assert detect_test_command(tmp_path) is None
    package.write_text(json.dumps({"scripts": {"test": "vitest run"}}))
    assert detect_test_command(tmp_path) == "npm test"


def test_detect_go_and_cargo(tmp_path):
    go = tmp_path / "go"
    go.mkdir()
    (go / "go.mod").write_text("module example.com/x\n")
    assert detect_test_command(go) == "go test ./..."
    rust = tmp_path / "rust"
    rust.mkdir()
    (rust / "Cargo.toml").write_text("[package]\nname='x'\n")
    assert detect_test_command(rust) == "cargo test"


def test_a_makefile_test_target_wins(tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "Makefile").write_text("test := x\ntest ?= y\n.PHONY: test\nbuild:\n\ttrue\n")
    assert detect_test_command(tmp_path) == "pytest"  # no test target: only a variable and .PHONY
    (tmp_path / "Makefile").write_text(".PHONY: test\ntest: build\n\tpytest -q\n")
    assert detect_test_command(tmp_path) == "make test"


def test_repo_config_model_forbids_extra_keys_directly():
    with pytest.raises(pydantic.ValidationError):
        RepoConfig.model_validate({"nope": 1})


def test_rendered_settings_mark_the_defaults_and_read_back_as_the_same_settings():
    config = parse_repo_config("max_turns: 12\nmodel: null\nallowed_users: [octocat]\n")
    text = render_settings(config)
    assert parse_repo_config(text) == config
    lines = text.splitlines()
    assert "max_turns: 12" in lines and "allowed_users: [octocat]" in lines
    assert next(line for line in lines if line.startswith("model:")).endswith(
        "# the server's ANTHROPIC_MODEL")
    assert next(line for line in lines if line.startswith("test_command:")).endswith(
        "# default: detected from the checkout")
    assert next(line for line in lines if line.startswith("label:")).endswith("# default")
