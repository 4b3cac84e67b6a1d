"""The tools on their own: path confinement, Claude Code's shapes, readable errors."""

import json
import os

import pytest

import bot.agent.tools.search as search_mod
from bot.agent.sandbox import Sandbox
from bot.agent.tools import ToolContext, default_tools, execute
from bot.agent.tools.control import Todo
from bot.worklog import SECTION_FIELDS, SECTIONS
from tests.agent_fakes import make_repo

TOOLS = {t.name: t for t in default_tools()}


@pytest.fixture
def ctx(tmp_path):
    repo = make_repo(
        tmp_path / "ws",
        {"src/app.py": "import os\n\ndef main():\n    return os.getcwd()\n", "README.md": "Hello\nhello again\n"},
    )
    (tmp_path / "secret.txt").write_text("outside")
    return ToolContext(workspace=repo, sandbox=Sandbox(repo, allow_unsandboxed=True))


async def call(ctx, name, **args):
    return await execute(TOOLS, ctx, name, args, 30_000)


def test_tool_table_matches_the_design():
    assert list(TOOLS) == ["Read", "Write", "Edit", "Glob", "Grep", "Bash", "TodoWrite", "AskQuestion", "FinishWork"]
    for tool in TOOLS.values():
        param = tool.param()
        assert set(param) == {"name", "description", "input_schema"}
        assert param["input_schema"]["type"] == "object"
    assert TOOLS["Read"].input_schema["required"] == ["file_path"]
    assert set(TOOLS["Edit"].input_schema["properties"]) == {"file_path", "old_string", "new_string", "replace_all"}
    finish_fields = set(TOOLS["FinishWork"].input_schema["properties"]) - {"title"}
    assert finish_fields == {
        "task_summary", "files_modified", "key_decisions", "database_changes", "api_changes",
        "dependencies", "testing_performed", "next_steps", "potential_issues",
    }  # fmt: skip


def schema_nodes(schema: dict):
    """Every schema object inside a tool's input schema (not the values of `enum` or `default`)."""
    yield schema
    for sub in schema.get("properties", {}).values():
        yield from schema_nodes(sub)
    for sub in schema.get("anyOf", []):
        yield from schema_nodes(sub)
    if isinstance(schema.get("items"), dict):
        yield from schema_nodes(schema["items"])


def model_shape(model) -> tuple[list[str], list[str]]:
    """A pydantic model's (property names, required names), as the model sees them: by alias."""
    fields = model.model_fields.items()
    return ([f.alias or name for name, f in fields], [f.alias or name for name, f in fields if f.is_required()])


@pytest.mark.parametrize("name", list(TOOLS))
def test_each_schema_is_generated_from_its_input_model(name):
    tool = TOOLS[name]
    schema = tool.input_schema
    assert schema["type"] == "object" and set(schema) <= {"type", "properties", "required"}
    assert (list(schema["properties"]), schema.get("required", [])) == model_shape(tool.input_model)
    for node in schema_nodes(schema):
        assert not {"title", "$ref", "$defs"} & set(node), node
    # Every property carries its description, except the few whose enum says it all.
    undescribed = {p for p, sub in schema["properties"].items() if not sub.get("description")}
    assert undescribed <= {"output_mode", "todos"}


def test_schemas_say_what_the_models_accept():
    todo_items = TOOLS["TodoWrite"].input_schema["properties"]["todos"]["items"]
    assert (list(todo_items["properties"]), todo_items["required"]) == model_shape(Todo)
    assert todo_items["properties"]["status"]["enum"] == ["pending", "in_progress", "completed"]
    grep = TOOLS["Grep"].input_schema["properties"]
    assert grep["-C"]["anyOf"][0] == {"maximum": 20, "minimum": 0, "type": "integer"}
    finish = TOOLS["FinishWork"].input_schema["properties"]
    assert list(finish) == ["title", *SECTION_FIELDS]
    for section, heading in SECTIONS:
        # A section may be Markdown or a list of items, and the schema says so.
        assert finish[section]["anyOf"] == [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
        assert finish[section]["description"].startswith(f"{heading}: ")
    assert TOOLS["FinishWork"].parse({"title": "T", "task_summary": ["a", "b"], "files_modified": "x",
                                      "testing_performed": ["pytest"]})


def test_the_tool_list_serialises_the_same_every_time():
    # The tool list opens every request's cached prefix: one changed byte and nothing is reused.
    first = json.dumps([tool.param() for tool in default_tools()])
    assert json.dumps([tool.param() for tool in default_tools()]) == first


@pytest.mark.parametrize(
    "path",
    ["../secret.txt", "{outside}", "src/../../secret.txt", "/etc/passwd", "link/secret.txt", "escape"],
)
async def test_nothing_outside_the_workspace_is_reachable(ctx, path):
    os.symlink(ctx.workspace.parent, ctx.workspace / "link")
    os.symlink(ctx.workspace.parent / "secret.txt", ctx.workspace / "escape")
    path = path.format(outside=ctx.workspace.parent / "secret.txt")
    for name, args in [
        ("Read", {"file_path": path}),
        ("Write", {"file_path": path, "content": "x"}),
        ("Edit", {"file_path": path, "old_string": "outside", "new_string": "inside"}),
        ("Glob", {"pattern": "*", "path": path}),
        ("Grep", {"pattern": "outside", "path": path}),
    ]:
        text, is_error = await call(ctx, name, **args)
        assert is_error, (name, path, text)
        assert "outside the workspace" in text
    assert (ctx.workspace.parent / "secret.txt").read_text() == "outside"


async def test_absolute_paths_inside_the_workspace_work(ctx):
    text, is_error = await call(ctx, "Read", file_path=str(ctx.workspace / "README.md"))
    assert not is_error and text == "     1\tHello\n     2\thello again"


async def test_git_directory_cannot_be_written(ctx):
    text, is_error = await call(ctx, "Write", file_path=".git/hooks/pre-commit", content="#!/bin/sh\n")
    assert is_error and ".git" in text
    assert not (ctx.workspace / ".git/hooks/pre-commit").exists()


async def test_read_offset_limit_and_errors(ctx):
    text, _ = await call(ctx, "Read", file_path="src/app.py", offset=3, limit=1)
    assert text.splitlines()[0] == "     3\tdef main():"
    assert "showing lines 3-3 of 4" in text
    assert (await call(ctx, "Read", file_path="missing.py"))[1]
    assert "directory" in (await call(ctx, "Read", file_path="src"))[0]
    (ctx.workspace / "blob.bin").write_bytes(b"\x00\x01\x02")
    assert "binary" in (await call(ctx, "Read", file_path="blob.bin"))[0]


async def test_write_creates_directories_and_edit_creates_with_empty_old_string(ctx):
    assert not (await call(ctx, "Write", file_path="pkg/new/mod.py", content="A = 1\n"))[1]
    assert (ctx.workspace / "pkg/new/mod.py").read_text() == "A = 1\n"
    assert not (await call(ctx, "Edit", file_path="pkg/other.py", old_string="", new_string="B = 2\n"))[1]
    assert (ctx.workspace / "pkg/other.py").read_text() == "B = 2\n"
    text, is_error = await call(ctx, "Edit", file_path="pkg/other.py", old_string="B", new_string="B")
    assert is_error and "same" in text


async def test_glob_lists_relative_paths_without_git(ctx):
    text, is_error = await call(ctx, "Glob", pattern="**/*")
    assert not is_error
    lines = text.splitlines()
    assert "src/app.py" in lines and "README.md" in lines
    assert not any(line.startswith(".git") for line in lines)
    assert "No files" in (await call(ctx, "Glob", pattern="*.rs"))[0]


@pytest.mark.parametrize("ripgrep", [True, False], ids=["ripgrep", "python"])
async def test_grep_modes_with_ripgrep_and_the_fallback(ctx, monkeypatch, ripgrep):
    if not ripgrep:
        monkeypatch.setattr(search_mod.shutil, "which", lambda name: None)
    elif search_mod.shutil.which("rg") is None:
        pytest.skip("ripgrep (rg) is not installed")
    files, _ = await call(ctx, "Grep", pattern="hello", **{"-i": True})
    assert files.splitlines() == ["README.md"]
    content, _ = await call(ctx, "Grep", pattern="def \\w+", output_mode="content", glob="*.py")
    assert content == "src/app.py:3:def main():"
    count, _ = await call(ctx, "Grep", pattern="o", output_mode="count", path="README.md")
    assert count.endswith("2")
    none, is_error = await call(ctx, "Grep", pattern="zzz")
    assert not is_error and "No matches" in none


async def test_bash_failure_is_an_error_result_with_exit_code(ctx):
    text, is_error = await call(ctx, "Bash", command="echo out; exit 4")
    assert is_error and "out" in text and "exit code 4" in text
    text, is_error = await call(ctx, "Bash", command="echo fine")
    assert not is_error and text == "fine"
