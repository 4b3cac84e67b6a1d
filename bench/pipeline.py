"""Trigger → pull request benchmark: the whole issue flow against the GitHub simulator.

    .venv/bin/python bench/pipeline.py                 # the three repositories (30 s - 2.5 min)
    .venv/bin/python bench/pipeline.py --quick         # small repository only, a smoke test
    .venv/bin/python bench/pipeline.py --root /dev/shm # everything on tmpfs: a fast disk
    .venv/bin/python bench/pipeline.py --history 5000 --json out.json
    .venv/bin/python bench/pipeline.py --py-spy /tmp/p # py-spy the bot on warm 10k runs

The time of a 10,000-file checkout is mostly the disk's cost per file: the output ends with
what writing 10,000 small files costs on the same disk without git or the bot, for scale.

What runs, all on 127.0.0.1 (like tests/test_flow_issue.py):

  * the GitHub simulator (tests/simulator: REST API + `git http-backend`), in this process;
  * a zero-latency scripted model (tests/agent_fakes.FakeAnthropic): per run, one `Write`
    of a new file, then `FinishWork`: two model calls that answer at once;
  * a real `backend-bot serve` subprocess (SQLite, embedded workers, real git, the real
    bubblewrap sandbox), `LOG_LEVEL=debug`, `LOG_FORMAT=json`.

Repositories (no Makefile, no test markers: the bot's own test run is skipped):

  * small:        ~100 files, one commit;
  * 10k:          ~10,000 files (~1 KB each), one commit;
  * 10k+history:  the same tree, then a long history (default 2,500 commits touching 4 files
                  each), written with `git fast-import` straight into the simulator's bare repo
                  and repacked, like a hosted repository.

For each: three triggers (`issues.labeled` on three new issues), one at a time. The first is
cold (the bot clones its mirror), the next two warm (one mirror fetch). Measured:

  * trigger → 202, trigger → PR open (the simulator's answer to POST /pulls), trigger → job end;
  * each durable step, from DBOS's `operation_outputs` in `<BOT_DATA_DIR>/backend-bot.db`
    (gather, acknowledge, read issue, choose branch, work, publish, report), plus "queue"
    (trigger → first step: 202, forwarder, DBOS queue poll, workflow start);
  * inside `work`: the timeline of the simulator's git requests, the model calls and the bot's
    git commands (its debug log), so the mirror fetch, checkout, agent, commit and push show;
  * the workspace preparation alone: `bot.workspace.Workspaces.prepare` in this process against
    the served simulator with a minted token, warm mirror, for short and long history, with
    the time of each git command.

Targets (from the issue): warm trigger → PR open ≤ 1 s for 10,000 files; warm workspace
preparation that does not grow with the length of the history (long/short ≤ 1.25, or within
50 ms). Missed targets are printed, never an exit status: this is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.jobstore import workflow_id_for
from tests.agent_fakes import FakeAnthropic, finish, tool_use
from tests.simulator import GitHubSimulator, gitrepo
from tests.support.processes import BotProcess
from tests.support.stack import bot_env

INSTALLATION = 42
OWNER = "acme"
STEPS = ["gather", "acknowledge", "read issue", "choose branch", "work", "publish", "report"]
TARGET_WARM_PR_SECONDS = 1.0
TARGET_HISTORY_RATIO = 1.25
TARGET_HISTORY_SLACK = 0.050  # seconds: below this, a ratio means nothing


# -- timing hooks on the in-process fakes ----------------------------------------------------


class TimedList(list):
    """A list that remembers when each item was appended (wall clock, like DBOS's records)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.times: list[float] = [0.0] * len(self)

    def append(self, item: Any) -> None:
        self.times.append(time.time())
        super().append(item)

    def since(self, start: int) -> list[tuple[float, Any]]:
        return list(zip(self.times[start:], self[start:], strict=True))


# -- repositories ---------------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    repo: str
    files: int
    history: int  # commits after the initial one

    @property
    def label(self) -> str:
        history = f"{self.history + 1:,} commits"
        return f"{self.name}: {self.files:,} files, {history}"


def _module_text(i: int, rng: random.Random) -> bytes:
    lines = [f'"""Module {i} of the widgets service."""', "", "from __future__ import annotations", ""]
    for j in range(6):
        lines += [
            f"def handler_{i}_{j}(request, limit={rng.randint(1, 500)}):",
            f"    \"\"\"Handle case {j} of module {i}.\"\"\"",
            "    items = request.get('items', [])[:limit]",
            f"    return {{'module': {i}, 'case': {j}, 'count': len(items)}}",
            "",
        ]
    return ("\n".join(lines) + "\n").encode()


def _path_of(i: int) -> str:
    return f"src/widgets/pkg_{i // 100:03d}/module_{i % 100:03d}.py"


def build_repository(sim: GitHubSimulator, scenario: Scenario, *, seed: int = 7) -> dict:
    """Create the repository in the simulator and fill its bare repo with git fast-import."""
    started = time.monotonic()
    sim.add_repo(scenario.repo, files={"README.md": "# placeholder\n"}, installation_id=INSTALLATION)
    bare = sim.repo(scenario.repo).bare
    rng = random.Random(seed)
    count = scenario.files - 1  # with the README
    stream = bytearray()
    when = int(time.time()) - (scenario.history + 10) * 3600

    def commit(message: str, changes: list[tuple[str, bytes]], *, first: bool = False) -> None:
        nonlocal when
        when += 3600
        msg = message.encode()
        stream.extend(b"commit refs/heads/main\n")
        stream.extend(f"author Dev <dev@example.com> {when} +0000\n".encode())
        stream.extend(f"committer Dev <dev@example.com> {when} +0000\n".encode())
        stream.extend(f"data {len(msg)}\n".encode() + msg + b"\n")
        if first:
            stream.extend(b"deleteall\n")
        for path, data in changes:
            stream.extend(f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n")

    readme = (f"# {scenario.repo}\n\nA service with {scenario.files:,} files.\n").encode()
    contents = {_path_of(i): _module_text(i, rng) for i in range(count)}
    commit("Initial import", [("README.md", readme), *contents.items()], first=True)
    for n in range(scenario.history):
        changes = []
        for i in rng.sample(range(count), min(4, count)):
            path = _path_of(i)
            contents[path] += f"# revision {n}: tune handler {rng.randint(0, 5)}\n".encode()
            changes.append((path, contents[path]))
        commit(f"Change {n + 1}: tune {len(changes)} handlers", changes)
    stream.extend(b"done\n")
    gitrepo.git(bare, "fast-import", "--quiet", "--force", "--done", input=bytes(stream))
    # Like a hosted repository: one delta-compressed pack (and a commit-graph).
    gitrepo.git(bare, "repack", "-a", "-d", "-q", "--window=10")
    gitrepo.git(bare, "commit-graph", "write", "--reachable")
    gitrepo.git(bare, "gc", "--prune=now", "-q")
    size = sum(p.stat().st_size for p in bare.rglob("*") if p.is_file())
    commits = int(gitrepo.git(bare, "rev-list", "--count", "main").strip())
    tracked = len(gitrepo.git(bare, "ls-tree", "-r", "--name-only", "main").splitlines())
    return {"seconds": time.monotonic() - started, "bytes": size, "commits": commits,
            "files": tracked}


# -- the bot's records ------------------------------------------------------------------------


def engine_db(db: Path) -> Path:
    """Where DBOS keeps its records: beside the jobs table (`-engine.db`), or in it."""
    beside = db.with_name(db.stem + "-engine.db")
    return beside if beside.exists() else db


def read_steps(db: Path, job_id: int) -> list[dict]:
    """DBOS's step records for a job's workflow: name, start and end (epoch seconds)."""
    with contextlib.closing(sqlite3.connect(f"file:{engine_db(db)}?mode=ro", uri=True,
                                            timeout=10)) as conn:
        rows = conn.execute(
            "SELECT function_id, function_name, started_at_epoch_ms, completed_at_epoch_ms "
            "FROM operation_outputs WHERE workflow_uuid = ? ORDER BY function_id",
            (workflow_id_for(job_id),),
        ).fetchall()
    return [{"id": r[0], "name": r[1], "start": (r[2] or 0) / 1000, "end": (r[3] or 0) / 1000}
            for r in rows]


def read_job(db: Path, number: int, repo: str) -> dict | None:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as conn:
        rows = conn.execute(
            "SELECT id, state, error, result, created_at, started_at, finished_at, spec "
            "FROM bot_jobs ORDER BY id").fetchall()
    for r in rows:
        spec = json.loads(r[7])
        if spec.get("repo") == repo and spec.get("number") == number:
            return {"id": r[0], "state": r[1], "error": r[2], "result": r[3], "created": r[4],
                    "started": r[5], "finished": r[6]}
    return None


def bot_log_lines(path: Path, job_id: int) -> list[dict]:
    lines = []
    for raw in path.read_text(errors="replace").splitlines():
        if not raw.startswith("{"):
            continue
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if entry.get("job_id") == str(job_id) and entry.get("logger", "").startswith("bot"):
            lines.append(entry)
    return lines


def _log_time(entry: dict) -> float:
    import calendar

    stamp = entry["time"]  # 2026-01-01T12:00:00.123Z
    base, ms = stamp[:-1].split(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + int(ms) / 1000


# -- one run --------------------------------------------------------------------------------


@dataclass
class Run:
    scenario: str
    kind: str  # cold | warm
    number: int
    job_id: int = 0
    state: str = ""
    accepted: float = 0.0  # trigger → 202
    pr_open: float | None = None  # trigger → POST /pulls answered
    job_end: float | None = None  # trigger → job finished
    queue: float | None = None  # trigger → first step starts
    steps: dict[str, float] = field(default_factory=dict)
    gaps: float = 0.0  # time between steps (checkpoints, the workflow's own code)
    timeline: list[tuple[float, float | None, str]] = field(default_factory=list)


class Bench:
    def __init__(self, sim: GitHubSimulator, fake: FakeAnthropic, bot: BotProcess, data_dir: Path,
                 log_path: Path) -> None:
        self.sim, self.fake, self.bot = sim, fake, bot
        self.db = data_dir / "backend-bot.db"
        self.log_path = log_path

    def deliver(self, payload: dict):
        return self.sim.deliver(self.bot.url + "/api/github/webhooks",
                                self.sim.default_app.webhook_secret, "issues", payload)

    def trigger(self, scenario: Scenario, kind: str, index: int) -> Run:
        sim, repo = self.sim, scenario.repo
        number = sim.add_issue(repo, f"Add note {index}", f"Please add note {index}.", user="alice")
        self.fake.add(
            tool_use("Write", file_path=f"notes/note-{number}.md", content=f"Note {index}.\n"),
            finish(title=f"Add note {index}", task_summary=f"Added notes/note-{number}.md.",
                   files_modified=[f"notes/note-{number}.md: new file"],
                   testing_performed="None: a note."),
        )
        payload = sim.event_issues_labeled(repo, number, "backend", sender="alice")
        first_request = len(sim.requests)
        first_model = len(self.fake.requests)
        run = Run(scenario.name, kind, number)
        t0 = time.time()
        response = self.deliver(payload)
        run.accepted = time.time() - t0
        if response.status_code != 202:
            run.state = f"HTTP {response.status_code}"
            return run
        pulls_path = f"/repos/{repo}/pulls"
        deadline = time.monotonic() + 120
        job = None
        while time.monotonic() < deadline:
            if run.pr_open is None:
                for when, req in sim.requests.since(first_request):
                    if req.method == "POST" and req.path == pulls_path and req.status < 300:
                        run.pr_open = when - t0
                        break
            job = read_job(self.db, number, repo)
            if job and job["state"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.01)
        if job is None:
            run.state = "never queued"
            return run
        run.job_id, run.state = job["id"], job["state"]
        if job["finished"]:
            run.job_end = job["finished"] - t0
        if job["state"] != "succeeded":
            run.state += f" ({job['error']})"
        steps = read_steps(self.db, job["id"])
        named = [s for s in steps if s["name"] in STEPS]
        if named:
            run.queue = named[0]["start"] - t0
            for s in named:
                run.steps[s["name"]] = run.steps.get(s["name"], 0.0) + (s["end"] - s["start"])
            span = named[-1]["end"] - named[0]["start"]
            run.gaps = span - sum(run.steps.values())
        run.timeline = self._timeline(t0, steps, first_model, job)
        return run

    def _timeline(self, t0: float, steps: list[dict], first_model: int,
                  job: dict) -> list[tuple[float, float | None, str]]:
        """Everything the job did, as (start, duration or None, what), in seconds from the
        trigger: DBOS steps, the simulator's requests (as it served them), model calls and
        the bot's own log lines (end times: each says what just finished)."""
        end = (job["finished"] or time.time()) + 0.001
        events: list[tuple[float, float | None, str]] = []
        for s in steps:
            events.append((s["start"] - t0, s["end"] - s["start"], f"STEP {s['name']}"))
        for started, ended, what in list(getattr(self.sim, "spans", [])):
            if t0 <= started <= end:
                events.append((started - t0, ended - started, f"  sim  {what}"))
        for when, _body in self.fake.requests.since(first_model):
            if t0 <= when <= end:
                events.append((when - t0, None, "  model request answered"))
        for entry in bot_log_lines(self.log_path, job["id"]):
            when = _log_time(entry)
            if t0 - 0.001 <= when <= end:
                message = entry["message"]
                if len(message) > 100:
                    message = message[:97] + "..."
                events.append((when - t0, None, f"  bot  {message}"))
        if job["finished"]:
            events.append((job["finished"] - t0, None, "job finished"))
        return sorted(events, key=lambda e: (e[0], 0 if e[2].startswith("STEP") else 1))


# -- workspace preparation alone ---------------------------------------------------------


async def _prepare_runs(sim: GitHubSimulator, base_url: str, repo: str, data_dir: Path,
                        runs: int) -> dict:
    """Workspaces.prepare against the served simulator, on the bot's own (warm) mirrors."""
    from bot.github import git
    from bot.workspace import Workspaces

    calls: list[tuple[str, float]] = []
    real_run_git = git.run_git

    async def timed_run_git(args, **kwargs):
        started = time.perf_counter()
        try:
            return await real_run_git(args, **kwargs)
        finally:
            name = next((a for a in args if not a.startswith("-")), "?")
            if name == "checkout" and "-B" in args:
                name = "checkout -B"
            calls.append((name, time.perf_counter() - started))

    git.run_git = timed_run_git
    try:
        workspaces = Workspaces(data_dir)
        if not (workspaces.mirror_path(repo) / "HEAD").exists():
            raise RuntimeError(f"no warm mirror of {repo} in {data_dir}")
        clone_url = f"{base_url}/{repo}.git"
        token = sim.mint_token(INSTALLATION).token
        results = []
        for i in range(runs):
            job_id = 900_000 + i
            calls.clear()
            started = time.perf_counter()
            await workspaces.prepare(job_id=job_id, repo=repo, clone_url=clone_url, token=token,
                                     branch=f"bench/prep-{i}", base_branch="main")
            total = time.perf_counter() - started
            started = time.perf_counter()
            workspaces.release(job_id, repo)  # kept for reuse, as the bot does after a job
            results.append({"total": total, "remove": time.perf_counter() - started,
                            "calls": list(calls)})
    finally:
        git.run_git = real_run_git
    by_call: dict[str, list[float]] = {}
    for r in results:
        for name, seconds in r["calls"]:
            by_call.setdefault(name, []).append(seconds)
    return {
        "runs": len(results),
        "warm": statistics.median(r["total"] for r in results),
        "remove": statistics.median(r["remove"] for r in results),
        "warm_calls": {k: statistics.median(v) for k, v in by_call.items()},
    }


def prepare_comparison(sim: GitHubSimulator, base_url: str, scenarios: list[Scenario],
                       data_dir: Path, runs: int) -> dict[str, dict]:
    out = {}
    for scenario in scenarios:
        out[scenario.name] = asyncio.run(
            _prepare_runs(sim, base_url, scenario.repo, data_dir, runs))
    return out


def disk_baseline(root: Path, files: int) -> dict:
    """What this disk charges for a checkout-sized tree: write `files` 1 KB files, remove them."""
    target = root / "disk-baseline"
    data = b"x" * 1024
    started = time.perf_counter()
    for i in range(files):
        folder = target / f"d{i // 100:03d}"
        if i % 100 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i % 100:03d}.py").write_bytes(data)
    written = time.perf_counter() - started
    started = time.perf_counter()
    shutil.rmtree(target)
    return {"files": files, "write": written, "remove": time.perf_counter() - started}


# -- reporting --------------------------------------------------------------------------------


def ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:,.0f}"


def print_scenario(scenario: Scenario, built: dict, runs: list[Run], timelines: bool) -> None:
    print(f"\n## {scenario.label}")
    print(f"   repository: {built['files']:,} files, {built['commits']:,} commits, "
          f"{built['bytes'] / 1e6:.1f} MB on disk, built in {built['seconds']:.1f} s")
    header = ["run", "state", "202", "queue", *STEPS, "gaps", "PR open", "job end"]
    rows = []
    for r in runs:
        rows.append([
            f"{r.kind} #{r.number}", r.state[:9], ms(r.accepted), ms(r.queue),
            *[ms(r.steps.get(s)) for s in STEPS], ms(r.gaps), ms(r.pr_open), ms(r.job_end),
        ])
    warm = [r for r in runs if r.kind == "warm" and r.pr_open is not None]
    if warm:
        med = lambda xs: statistics.median(xs) if xs else None  # noqa: E731
        rows.append([
            "warm median", "", ms(med([r.accepted for r in warm])),
            ms(med([r.queue for r in warm if r.queue is not None])),
            *[ms(med([r.steps[s] for r in warm if s in r.steps])) for s in STEPS],
            ms(med([r.gaps for r in warm])), ms(med([r.pr_open for r in warm])),
            ms(med([r.job_end for r in warm if r.job_end is not None])),
        ])
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    print("   times in ms from the trigger (steps: each step's own duration)")
    print("   " + "  ".join(h.rjust(w) if i > 1 else h.ljust(w)
                            for i, (h, w) in enumerate(zip(header, widths, strict=True))))
    for row in rows:
        print("   " + "  ".join(str(c).rjust(w) if i > 1 else str(c).ljust(w)
                                for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    if timelines:
        warm_runs = [r for r in runs if r.kind == "warm" and r.timeline]
        if warm_runs:
            r = warm_runs[-1]
            print(f"\n   timeline of {r.kind} #{r.number} (ms from the trigger; `+n`: duration; "
                  "bot lines are logged when a thing ends):")
            for offset, duration, what in r.timeline:
                took = f"+{duration * 1000:.0f}" if duration is not None else ""
                print(f"   {offset * 1000:7.0f} {took:>6}  {what}")


def print_prepare(prep: dict[str, dict], scenarios: list[Scenario], disk: dict | None) -> None:
    print("\n## Workspace preparation alone (Workspaces.prepare in-process, the bot's warm "
          "mirrors, served simulator)")
    names = [s.name for s in scenarios if s.name in prep]
    order = ["fetch", "clone", "remote", "for-each-ref", "checkout -B", "rev-parse"]
    calls = sorted({c for n in names for c in prep[n]["warm_calls"]},
                   key=lambda c: order.index(c) if c in order else 99)
    header = ["repository", "prepare", *calls, "release after"]
    rows = [[n, ms(prep[n]["warm"]), *[ms(prep[n]["warm_calls"].get(c)) for c in calls],
             ms(prep[n]["remove"])] for n in names]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    runs = max((prep[n]["runs"] for n in names), default=0)
    print(f"   ms, median of {runs} runs; columns after `prepare`: each git command it ran; "
          "`release after`: Workspaces.release (kept for the next job)")
    for row in [header, *rows]:
        print("   " + "  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                                for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    if disk:
        print(f"   this disk, for scale: writing {disk['files']:,} files of 1 KB takes "
              f"{ms(disk['write'])} ms, removing them {ms(disk['remove'])} ms (no git, no bot)")


def verdicts(results: dict, prep: dict, scenarios: list[Scenario]) -> list[tuple[str, str, bool]]:
    out = []
    for scenario in scenarios:
        if scenario.files < 5000:
            continue
        warm = [r.pr_open for r in results[scenario.name] if r.kind == "warm" and r.pr_open]
        if warm:
            value = statistics.median(warm)
            out.append((f"warm trigger → PR open, {scenario.label}",
                        f"{value:.2f} s (target ≤ {TARGET_WARM_PR_SECONDS:.0f} s)",
                        value <= TARGET_WARM_PR_SECONDS))
    short = next((s for s in scenarios if s.files >= 5000 and s.history == 0), None)
    long = next((s for s in scenarios if s.files >= 5000 and s.history > 0), None)
    if short and long and short.name in prep and long.name in prep:
        a, b = prep[short.name]["warm"], prep[long.name]["warm"]  # medians
        ok = b <= a * TARGET_HISTORY_RATIO or b - a <= TARGET_HISTORY_SLACK
        out.append((f"warm workspace prep, {long.history + 1:,} vs 1 commit",
                    f"{b * 1000:.0f} vs {a * 1000:.0f} ms, ×{b / a:.2f} "
                    f"(target ≤ ×{TARGET_HISTORY_RATIO} or ≤ {TARGET_HISTORY_SLACK * 1000:.0f} ms more)",
                    ok))
        a = prep[short.name]["warm"] - prep[short.name]["warm_calls"].get("checkout -B", 0)
        b = prep[long.name]["warm"] - prep[long.name]["warm_calls"].get("checkout -B", 0)
        ok = b <= a * TARGET_HISTORY_RATIO or b - a <= TARGET_HISTORY_SLACK
        out.append((f"warm workspace prep without the checkout (fetch, clone...), "
                    f"{long.history + 1:,} vs 1 commit",
                    f"{b * 1000:.0f} vs {a * 1000:.0f} ms (same target)", ok))
    return out


# -- main -----------------------------------------------------------------------------------


def timing(sim: GitHubSimulator):
    """ASGI middleware for `sim.serve(wrap=...)`: every request as the server saw it, in
    `sim.spans` as (start, end, "METHOD /path")."""
    spans: list[tuple[float, float, str]] = []
    sim.spans = spans

    def wrap(app):
        async def timed_app(scope, receive, send):
            if scope["type"] != "http":
                return await app(scope, receive, send)
            started = time.time()
            try:
                await app(scope, receive, send)
            finally:
                query = scope.get("query_string", b"").decode()
                path = scope["path"].removeprefix("/api/v3") + (f"?{query}" if query else "")
                spans.append((started, time.time(), f"{scope['method']} {path}"))

        return timed_app

    return wrap


def progress(run: Run) -> Run:
    print(f"   {run.scenario} {run.kind} #{run.number}: {run.state}, PR open {ms(run.pr_open)} ms",
          flush=True)
    return run


@contextlib.contextmanager
def py_spy(pid: int, out: Path, enabled: bool):
    if not enabled:
        yield
        return
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(exe).exists():
        print("   (py-spy not installed: `.venv/bin/pip install py-spy`)")
        yield
        return
    proc = subprocess.Popen([exe, "record", "--pid", str(pid), "-r", "250", "--idle",
                             "-f", "raw", "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)
        print(f"   py-spy profile of the warm runs: {out} (collapsed stacks)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small repository only")
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--small-files", type=int, default=100)
    parser.add_argument("--history", type=int, default=2_500, help="extra commits of the long history")
    parser.add_argument("--warm", type=int, default=2, help="warm triggers per repository")
    parser.add_argument("--prep-runs", type=int, default=3, help="warm Workspaces.prepare runs")
    parser.add_argument("--root", type=Path, default=None,
                        help="where the simulator's repos and the bot's data dir go (default: "
                             "the temp dir; /dev/shm shows what a fast disk gives)")
    parser.add_argument("--timelines", action="store_true", default=True)
    parser.add_argument("--no-timelines", dest="timelines", action="store_false")
    parser.add_argument("--py-spy", metavar="PREFIX", help="record the bot during warm runs")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)

    scenarios = [Scenario("small", f"{OWNER}/small", args.small_files, 0)]
    if not args.quick:
        scenarios += [Scenario("10k", f"{OWNER}/large", args.files, 0),
                      Scenario("10k+history", f"{OWNER}/history", args.files, args.history)]

    tmp = Path(tempfile.mkdtemp(prefix="bench-pipeline-", dir=args.root))
    bench_started = time.monotonic()
    results: dict[str, list[Run]] = {}
    built: dict[str, dict] = {}
    prep: dict[str, dict] = {}
    try:
        sim = GitHubSimulator(tmp / "github")
        sim.requests = TimedList()
        sim.add_app(app_id=1, slug="backend-bot")
        print("# Trigger → pull request (bench/pipeline.py)")
        print(f"   files under {tmp}")
        git_version = subprocess.run(["git", "--version"], capture_output=True,
                                     text=True).stdout.strip()
        print(f"   machine: {os.cpu_count()} CPUs, {git_version}, Python {sys.version.split()[0]}")
        for scenario in scenarios:
            built[scenario.name] = build_repository(sim, scenario)
            sim.add_user("alice", permission="write", repo=scenario.repo)
        with sim.serve(wrap=timing(sim)) as base_url, FakeAnthropic([]) as fake:
            fake.requests = TimedList()
            data_dir = tmp / "data"
            log_path = tmp / "bot.log"
            env = bot_env(sim, fake, data_dir, LOG_LEVEL="debug", LOG_FORMAT="json")
            bot = BotProcess(env, log_path, module="bot", args=["serve"])
            started = time.monotonic()
            bot.start()
            print(f"   backend-bot serve up in {time.monotonic() - started:.1f} s "
                  f"(pid {bot.process.pid}, data dir {data_dir})")
            bench = Bench(sim, fake, bot, data_dir, log_path)
            try:
                # A throwaway job first, so that the server's own warm-up (imports, DBOS,
                # the first token, the sandbox probe) is not charged to the first repository.
                warmup = Scenario("warmup", f"{OWNER}/warmup", 3, 0)
                build_repository(sim, warmup)
                sim.add_user("alice", permission="write", repo=warmup.repo)
                bench.trigger(warmup, "warmup", 0)
                for scenario in scenarios:
                    runs = [progress(bench.trigger(scenario, "cold", 1))]
                    profile = args.py_spy and scenario.files >= 5000
                    with py_spy(bot.process.pid, Path(f"{args.py_spy}-{scenario.name}.txt"),
                                bool(profile)):
                        for i in range(args.warm):
                            runs.append(progress(bench.trigger(scenario, "warm", i + 2)))
                    results[scenario.name] = runs
            finally:
                bot.stop()
            prep = prepare_comparison(sim, base_url, [s for s in scenarios if s.files >= 5000]
                                      or scenarios, data_dir, args.prep_runs)
        disk = disk_baseline(tmp, max(s.files for s in scenarios))
        for scenario in scenarios:
            print_scenario(scenario, built[scenario.name], results[scenario.name], args.timelines)
        print_prepare(prep, scenarios, disk)
        print("\n## Targets")
        for what, value, ok in verdicts(results, prep, scenarios):
            print(f"   {'met   ' if ok else 'MISSED'}  {what}: {value}")
        print(f"\n   bench took {time.monotonic() - bench_started:.0f} s")
        if args.json:
            Path(args.json).write_text(json.dumps({
                "built": built,
                "runs": {k: [r.__dict__ for r in v] for k, v in results.items()},
                "prepare": prep,
            "disk": disk,
            }, indent=2, default=str))
    finally:
        if args.keep:
            print(f"   kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
