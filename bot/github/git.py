"""Run real `git` on the host: against GitHub with an installation token, and in workspaces
an attacker controls, without letting either the token out or the workspace in.

The token travels as an `http.<origin>/.extraHeader` set through `GIT_CONFIG_COUNT` /
`GIT_CONFIG_KEY_n` / `GIT_CONFIG_VALUE_n` in the child's environment: not on the command
line (visible in `ps`), not in `.git/config`, not in a remote URL. Failures raise
`GitError` with the token scrubbed from the message.

Every git command runs hardened, because the work tree (and any repository nested in it) is
written by the agent and by the repository's own test command:

- `HARDENED_CONFIG` is passed with `-c`: command-line configuration beats every file, and git
  hands it to the gits it starts itself (`GIT_CONFIG_PARAMETERS`), so no fsmonitor, hook,
  submodule recursion, signing program or unexpected transport can be switched on by a file;
- the system and global configuration are not read (`GIT_CONFIG_NOSYSTEM`,
  `GIT_CONFIG_GLOBAL`): a filter or diff driver defined there (git-lfs, say) could otherwise be
  selected by the workspace's `.gitattributes`;
- the environment is built from `ENV_ALLOW_LIST`, never inherited: no key or secret of the
  bot's process reaches git or anything git runs.
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

HARDENED_CONFIG: tuple[tuple[str, str], ...] = (
    ("core.fsmonitor", "false"),
    ("core.hooksPath", os.devnull),
    ("core.untrackedCache", "false"),
    ("core.attributesFile", os.devnull),
    ("credential.helper", ""),
    # http(s) for GitHub, file for the mirror a workspace borrows from; never ext:: or ssh.
    ("protocol.allow", "never"),
    ("protocol.https.allow", "always"),
    ("protocol.http.allow", "always"),
    ("protocol.file.allow", "always"),
    ("submodule.recurse", "false"),
    ("fetch.recurseSubmodules", "false"),
    ("push.recurseSubmodules", "no"),
    ("diff.ignoreSubmodules", "all"),
    ("status.submoduleSummary", "false"),
    ("commit.gpgSign", "false"),
    ("tag.gpgSign", "false"),
    ("gc.auto", "0"),
    ("maintenance.auto", "false"),
)

# What git may see of the bot's environment: locale, PATH and the operator's proxy settings.
ENV_ALLOW_LIST = (
    "PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ",
    "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
    "GIT_SSL_CAINFO", "SSL_CERT_FILE", "SSL_CERT_DIR",
)
_FIXED_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",  # fail instead of asking for a password
    "GIT_ASKPASS": "",
    "SSH_ASKPASS": "",
    "GIT_PROTOCOL_FROM_USER": "0",
}


def git_argv(args: Sequence[str]) -> list[str]:
    """`git` with the hardening options, then `args`."""
    argv = ["git"]
    for key, value in HARDENED_CONFIG:
        argv += ["-c", f"{key}={value}"]
    return argv + list(args)


def git_env(extra: Mapping[str, str] | None = None, *, user_config: bool = False) -> dict[str, str]:
    """The environment of a git command: the allow-list, the fixed hardening, then `extra`.

    `user_config` lets git read the operator's own system and global files, for a question
    that runs nothing (`git config user.name` in `backend-bot run`).
    """
    env = {name: os.environ[name] for name in ENV_ALLOW_LIST if name in os.environ}
    env.setdefault("PATH", os.defpath)
    env.update(_FIXED_ENV)
    if user_config:
        del env["GIT_CONFIG_NOSYSTEM"], env["GIT_CONFIG_GLOBAL"]
    env.update(extra or {})
    return env


def run_git_sync(args: Sequence[str], *, cwd: Path | str | None = None,
                 env: Mapping[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT,
                 input: str | bytes | None = None, user_config: bool = False,
                 ) -> subprocess.CompletedProcess[bytes]:
    """Run a hardened git command and return what it did, whatever its exit status."""
    return subprocess.run(
        git_argv(args),
        cwd=str(cwd) if cwd is not None else None,
        env=git_env(env, user_config=user_config),
        input=input.encode() if isinstance(input, str) else input,
        stdin=subprocess.DEVNULL if input is None else None,
        capture_output=True,
        timeout=timeout,
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) git URL: {redact(url)}")
    if "@" in parts.netloc:
        raise ValueError("credentials must not be embedded in the remote URL")
    return f"{parts.scheme}://{parts.netloc}/"


def auth_env(url: str, token: str | None) -> dict[str, str]:
    """Environment entries that make git send the token to `url`'s host, and only there."""
    if not token:
        return {}
    register_secret(token)
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    register_secret(basic)
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"http.{_origin(url)}.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
    }


async def run_git(
    args: Sequence[str],
    *,
    cwd: Path | str | None = None,
    url: str | None = None,
    token: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    input: str | bytes | None = None,
) -> str:
    """Run hardened `git *args`; stdout on success, `GitError` (redacted) otherwise."""
    child_env = dict(env or {})
    if url is not None:
        child_env.update(auth_env(url, token))
    # A thread running subprocess.run, not the event loop's own spawning: under uvloop that
    # costs ~13 ms per git command and blocks the loop meanwhile.
    try:
        done = await asyncio.to_thread(run_git_sync, args, cwd=cwd, env=child_env,
                                       timeout=timeout, input=input)
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
