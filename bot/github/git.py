"""Run real `git` against GitHub with an installation token, without ever storing the token.

The token travels as an `http.<origin>/.extraHeader` set through `GIT_CONFIG_COUNT` /
`GIT_CONFIG_KEY_n` / `GIT_CONFIG_VALUE_n` in the child's environment: not on the command
line (visible in `ps`), not in `.git/config`, not in a remote URL. Failures raise
`GitError` with the token scrubbed from the message.
"""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from bot.github.errors import GitError
from bot.logs import get_logger
from bot.redact import redact, register_secret

log = get_logger("bot.github.git")

DEFAULT_TIMEOUT = 600.0


def _origin(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) git URL: {redact(url)}")
    if "@" in parts.netloc:
        raise ValueError("credentials must not be embedded in the remote URL")
    return f"{parts.scheme}://{parts.netloc}/"


def auth_env(url: str, token: str | None) -> dict[str, str]:
    """Environment entries that make git send the token to `url`'s host, and only there."""
    env = {
        "GIT_TERMINAL_PROMPT": "0",  # fail instead of asking for a password
        "GIT_ASKPASS": "",
        "SSH_ASKPASS": "",
    }
    config: list[tuple[str, str]] = [("credential.helper", "")]
    if token:
        register_secret(token)
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        register_secret(basic)
        config.append((f"http.{_origin(url)}.extraHeader", f"Authorization: Basic {basic}"))
    env["GIT_CONFIG_COUNT"] = str(len(config))
    for i, (key, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    return env


async def run_git(
    args: Sequence[str],
    *,
    cwd: Path | str | None = None,
    url: str | None = None,
    token: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    input: str | None = None,
) -> str:
    """Run `git *args`; stdout on success, `GitError` (redacted) otherwise."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_CONFIG_")}
    child_env.update(env or {})
    if url is not None:
        child_env.update(auth_env(url, token))
    # A thread running subprocess.run, not the event loop's own spawning: under uvloop that
    # costs ~13 ms per git command and blocks the loop meanwhile.
    try:
        done = await asyncio.to_thread(
            subprocess.run,
            ["git", *args],
            cwd=str(cwd) if cwd is not None else None,
            env=child_env,
            input=input.encode() if input is not None else None,
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise GitError([redact(a) for a in args], -1, f"timed out after {timeout:.0f}s") from None
    stdout = done.stdout.decode("utf-8", errors="replace")
    stderr = done.stderr.decode("utf-8", errors="replace")
    safe_args = [redact(a) for a in args]
    if done.returncode != 0:
        raise GitError(safe_args, done.returncode, redact(stderr or stdout))
    log.debug("git %s ok", " ".join(safe_args))
    return stdout


async def clone(
    url: str,
    dest: Path | str,
    *,
    token: str | None,
    branch: str | None = None,
    depth: int | None = None,
    bare: bool = False,
    mirror: bool = False,
) -> Path:
    """Clone `url` into `dest`; the clone's remote is the plain URL, with no credentials."""
    _origin(url)
    args = ["clone", "--quiet"]
    if mirror:
        args.append("--mirror")
    elif bare:
        args.append("--bare")
    if branch:
        args += ["--branch", branch]
    if depth:
        args += ["--depth", str(depth)]
    args += ["--", url, str(dest)]
    await run_git(args, url=url, token=token)
    return Path(dest)


async def remote_url(repo_dir: Path | str, remote: str = "origin") -> str:
    return (await run_git(["remote", "get-url", remote], cwd=repo_dir)).strip()


async def fetch(
    repo_dir: Path | str,
    *,
    token: str | None,
    remote: str = "origin",
    refspecs: Sequence[str] = (),
    prune: bool = False,
    depth: int | None = None,
) -> None:
    """Fetch from a named remote (or a URL) with the token."""
    url = remote if "://" in remote else await remote_url(repo_dir, remote)
    args = ["fetch", "--quiet"]
    if prune:
        args.append("--prune")
    if depth:
        args += ["--depth", str(depth)]
    args += [remote, *refspecs]
    await run_git(args, cwd=repo_dir, url=url, token=token)


async def push(
    repo_dir: Path | str,
    refspecs: Sequence[str],
    *,
    token: str | None,
    remote: str = "origin",
    force_with_lease: bool = False,
    force: bool = False,
) -> None:
    """Push refspecs (e.g. `HEAD:refs/heads/backend/issue-1`) with the token."""
    if not refspecs:
        raise ValueError("push needs at least one refspec")
    url = remote if "://" in remote else await remote_url(repo_dir, remote)
    args = ["push", "--quiet", "--porcelain"]
    if force:
        args.append("--force")
    elif force_with_lease:
        args.append("--force-with-lease")
    args += [remote, *refspecs]
    await run_git(args, cwd=repo_dir, url=url, token=token)


async def ls_remote(url: str, *, token: str | None, pattern: str | None = None) -> dict[str, str]:
    """The remote's refs: {ref name: sha}."""
    args = ["ls-remote", url] + ([pattern] if pattern else [])
    out = await run_git(args, url=url, token=token)
    refs = {}
    for line in out.splitlines():
        sha, _, name = line.partition("\t")
        if name:
            refs[name] = sha
    return refs
