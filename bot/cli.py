"""`backend-bot`: a self-hosted GitHub App that runs a backend-engineer agent on your repositories.

Each command imports what it needs inside its own function: `jobs` or `receive` should not
pay for the web server, DBOS and the agent (seconds of imports) that `serve` loads.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import signal
import sys
import time
from datetime import date
from pathlib import Path

from bot import database, logs, providers
from bot.errors import SettingsError
from bot.jobstore import STATES as JOB_STATES
from bot.settings import Settings, load_settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2  # argparse's own, also for a file or payload that cannot be read
EXIT_UNAVAILABLE = 69  # sysexits' EX_UNAVAILABLE: the database does not answer
EXIT_CONFIG = 78  # sysexits' EX_CONFIG: the environment holds settings the bot cannot use

EXIT_CODES = f"""exit status:
  {EXIT_OK}   done
  {EXIT_FAILED}   the command ran and failed (the reason is printed)
  {EXIT_USAGE}   wrong arguments, or a file that cannot be read
  3   `run`: the agent asked a question (printed)
  {EXIT_UNAVAILABLE}  the database does not answer
  {EXIT_CONFIG}  a setting is invalid (each problem is printed on its own line)
"""

# Kinds the bot runs for itself (the 👀 and status comment, reports of abandoned jobs), not
# work anyone asked for: `jobs` lists them with --all.
INTERNAL_KINDS = ("ack", "abandoned")


def _say(line: str) -> None:
    print(f"backend-bot: {line}", file=sys.stderr)


def _database_or_exit(settings: Settings) -> int | None:
    """EXIT_UNAVAILABLE after one line naming the database, when it does not answer."""
    problem = database.Database(settings.database_url).unreachable()
    if problem:
        _say(problem)
        return EXIT_UNAVAILABLE
    return None


def _broken_credentials_or_exit(settings: Settings) -> int | None:
    """EXIT_CONFIG when credentials are given but unusable. (None at all is a bot still to
    be registered, which `serve` helps with.)"""
    broken = settings.broken_credentials()
    if broken:
        for problem in broken:
            _say(f"configuration error: {problem}")
        return EXIT_CONFIG
    return None


def _app_slug(settings: Settings, timeout: float = 5.0) -> str:
    """The App's slug, asked of GitHub once and briefly: the start-up lines say who the bot
    is, and the server learns it again in the background if GitHub is slow now."""
    from bot.github.app import GitHubApp

    async def ask() -> str:
        async with GitHubApp(settings, max_retries=0, timeout=timeout) as github:
            return (await asyncio.wait_for(github.identity(), timeout)).slug

    try:
        return asyncio.run(ask())
    except Exception as error:
        return f"not known yet (GitHub did not answer: {str(error)[:120] or type(error).__name__})"


def _state_lines(settings: Settings, host: str, port: int, *, workers: bool) -> list[str]:
    from bot.registration import public_base_url

    location = database.parse_url(settings.database_url)
    base = public_base_url(settings, host, port)
    kind = "PostgreSQL" if location.postgres else "SQLite"
    problems = settings.work_problems()
    return [
        f"configured as GitHub App {settings.app_id}, slug {_app_slug(settings)}",
        f"  webhook   {base}{settings.webhook_path}"
        + ("" if settings.public_url else "  (set BOT_PUBLIC_URL to the address GitHub reaches)"),
        f"  database  {kind} {location.address}",
        f"  workers   {settings.workers if workers else 'none here: jobs run on `backend-bot worker`'}",
        f"  model     {settings.anthropic_model} on {providers.describe(settings)}",
        *(f"  not ready: {problem}" for problem in problems),
    ]


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from bot.app import build_app
    from bot.registration import SETUP_NOTICE, new_setup_token, setup_url

    host = args.host or settings.host
    port = args.port or settings.port
    failed = _broken_credentials_or_exit(settings) or _database_or_exit(settings)
    if failed:
        return failed
    setup_token = new_setup_token() if settings.missing_credentials() else None
    if not setup_token:
        for line in _state_lines(settings, host, port, workers=not args.no_workers):
            _say(line)
    app = build_app(settings, run_workers=not args.no_workers, setup_token=setup_token)
    if setup_token:
        # Printed, not logged: a notice for the operator, so no logging handler, JSON line or
        # redaction rule ever holds the token.
        print(SETUP_NOTICE.format(url=setup_url(settings, host, port, setup_token)),
              file=sys.stderr)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,  # which also keeps the registration page's `?token=` out of the log
        timeout_graceful_shutdown=10,
    )
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import build_engine

    problems = settings.credential_problems()
    if problems:
        for problem in problems:
            _say(f"configuration error: {problem}")
        _say("a worker runs jobs for a registered App: set its credentials as `serve` has them")
        return EXIT_CONFIG
    failed = _database_or_exit(settings)
    if failed:
        return failed

    async def run() -> None:
        engine = build_engine(settings, run_workers=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await engine.start()
        try:
            await stop.wait()
        finally:
            await engine.stop()

    asyncio.run(run())
    return 0


def _receive(settings: Settings, args: argparse.Namespace) -> int:
    import handlers
    from bot import webhooks
    from bot.errors import WebhookError
    from bot.routing import Delivery

    try:
        body = Path(args.file).read_bytes()
    except OSError as error:
        print(f"error: cannot read {args.file}: {error.strerror or error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        payload = webhooks.decode(args.event, body)
    except WebhookError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return EXIT_USAGE
    if args.event == "ping":
        print("no job: a ping is GitHub's test delivery; the bot answers it with pong")
        return 0
    delivery = Delivery(
        event=args.event,
        delivery_id=args.delivery_id,
        payload=payload,
        app_slug=args.app_slug,
    )
    if args.event not in webhooks.RAW_EVENTS and delivery.typed is None:
        print(f"note: githubkit's strict {args.event} model rejects this payload; "
              "the handlers read the raw JSON", file=sys.stderr)
    jobs = handlers.router.dispatch(delivery)
    if not jobs and delivery.sent_by_bot:
        print(f"ignored: sent by a bot ({delivery.sender_login})")
        return 0
    if not jobs:
        action = payload.get("action")
        what = f"{args.event}.{action}" if isinstance(action, str) else args.event
        print(f"no job: nothing to do for {what}")
        return 0
    for job in jobs:
        print(json.dumps({"kind": job.kind, "key": job.key, "spec": job.spec}, indent=2))
    return 0


def _fmt_time(value: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value)) if value else "-"


def _bot_database_or_exit(settings: Settings, command: str) -> int | None:
    """None when the bot's database is there and answers; else the exit code, said why. A
    command reading it never makes one where no bot has run."""
    location = database.parse_url(settings.database_url)
    if not location.postgres and not Path(location.target).is_file():
        _say(f"no database at {location.target}: no bot has run with this data folder. "
             f"Run `{command}` where `serve` runs, or set BOT_DATA_DIR or DATABASE_URL as it has them.")
        return EXIT_FAILED
    return _database_or_exit(settings)


def _jobs(settings: Settings, args: argparse.Namespace) -> int:
    from bot.jobstore import JobStore
    from bot.transcripts import printable

    failed = _bot_database_or_exit(settings, "jobs")
    if failed:
        return failed
    _say(f"jobs in {database.parse_url(settings.database_url).address}")
    store = JobStore(settings.database_url)
    store.open()
    try:
        if args.show is not None:
            return _show_job(store, args.show)
        if args.cancel is not None:
            from bot.engine import cancel_from_outside

            job = cancel_from_outside(settings, store, args.cancel)
            if job is None:
                print(f"no job {args.cancel}", file=sys.stderr)
                return 1
            print(f"job {job.id}: {job.state}")
            return 0
        jobs = store.list(limit=args.limit, key=args.key, states=args.state or None,
                          exclude_kinds=() if args.all else INTERNAL_KINDS)
    finally:
        store.close()
    if args.json:
        print(json.dumps([job.as_dict() for job in jobs], indent=2))
        return 0
    if not jobs:
        print("no jobs" + (" in these states" if args.state else "")
              + ("" if args.all else " (internal jobs are hidden: --all shows them)"))
        return 0
    header = f"{'ID':>6}  {'STATE':<10} {'KIND':<10} {'ATT':>3}  {'CREATED':<19}  {'FINISHED':<19}  KEY / ERROR"
    print(header)
    for job in jobs:
        detail = job.key + (f"  {job.error}" if job.error else "") + (
            f"  {job.result}" if job.result and not job.error else "")
        # Keys, errors and results carry text from GitHub and repositories: nothing in them
        # may drive the operator's terminal.
        print(printable(f"{job.id:>6}  {job.state:<10} {job.kind:<10} {job.attempts:>3}  "
                        f"{_fmt_time(job.created_at):<19}  {_fmt_time(job.finished_at):<19}  {detail}"))
    return 0


def _usage(settings: Settings, args: argparse.Namespace) -> int:
    from bot.budgets import ledger, usd
    from bot.transcripts import printable

    failed = _bot_database_or_exit(settings, "usage")
    if failed:
        return failed
    _say(f"model spend in {database.parse_url(settings.database_url).address} (UTC days)")
    store = database.Database(settings.database_url)
    try:
        rows = ledger(store).by_repo_day(since=args.since, repo=args.repo)
    finally:
        store.close()
    if args.json:
        print(json.dumps([{"repo": r.repo, "day": r.day, "model": r.model, "runs": r.runs,
                           "input_tokens": r.input_tokens, "cached_tokens": r.cached_tokens,
                           "cache_write_tokens": r.cache_write_tokens, "output_tokens": r.output_tokens,
                           "usd": round(r.usd, 6)} for r in rows], indent=2))
        return EXIT_OK
    if not rows:
        print("no model spend recorded" + (" for this selection" if args.since or args.repo else ""))
        return EXIT_OK
    print(f"{'DAY':<10}  {'RUNS':>5}  {'INPUT':>10}  {'CACHED':>10}  {'OUTPUT':>10}  {'USD':>10}  REPOSITORY / MODEL")
    for r in rows:
        # Repository and model names come from GitHub and configs: nothing in them may drive
        # the operator's terminal.
        print(printable(f"{r.day:<10}  {r.runs:>5}  {r.input_tokens:>10}  {r.cached_tokens:>10}  "
                        f"{r.output_tokens:>10}  {usd(r.usd):>10}  {r.repo} / {r.model}"))
    total = sum(r.usd for r in rows)
    print(f"{'total':<10}  {sum(r.runs for r in rows):>5}  {sum(r.input_tokens for r in rows):>10}  "
          f"{sum(r.cached_tokens for r in rows):>10}  {sum(r.output_tokens for r in rows):>10}  {usd(total):>10}")
    return EXIT_OK


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date such as 2026-11-30") from None


RUN_DESCRIPTION = """Run the agent on a local git checkout, no GitHub: on a fresh branch, ending
in one commit with its changes and a BACKEND_WORK_LOG.md entry, and the pull-request body
printed on stdout.

The checkout's own .github/backend.yml applies as it does on GitHub: max_turns,
max_cost_usd, max_minutes, model, test_command, setup_command, network and branch_prefix
(`backend-bot check-config` shows them). An invalid file stops the run before it starts.

The checkout ends on the branch (or detached commit) it started on. The run's work stays on
its branch: one commit when it finished; a work-in-progress commit when it asked a question
or stopped; no branch when nothing changed."""


def _show_job(store, job_id: int) -> int:
    """One job: its row, then the transcript of each agent run it made."""
    from bot.transcripts import TranscriptStore, printable, render

    job = store.get(job_id)
    if job is None:
        _say(f"no job {job_id}")
        return EXIT_FAILED
    print(printable(f"job {job.id}: {job.kind} on {job.key}, {job.state}, {job.attempts} attempt(s), "
                    f"created {_fmt_time(job.created_at)}, finished {_fmt_time(job.finished_at)}"))
    if job.error or job.result:
        print(printable(f"{'error' if job.error else 'result'}: {job.error or job.result}"))
    transcripts = TranscriptStore(store.database).of_job(job_id)
    if not transcripts:
        print("no agent run recorded for this job")
    for transcript in transcripts:
        print()
        print(render(transcript), end="")
    return EXIT_OK


def _run(settings: Settings, args: argparse.Namespace) -> int:
    from bot.agent.local import main as run_local

    return run_local(
        args.repo, args.task, settings,
        max_turns=args.max_turns, max_cost=args.max_cost, branch=args.branch,
    )


CHECK_CONFIG_DESCRIPTION = """Check a .github/backend.yml the way the bot reads it.

Each problem is said in the words the bot posts on GitHub, one line each, and the command
exits with 2 (as for a file it cannot read). A valid file's settings are printed as YAML,
each one the file leaves out marked as a default."""


def _check_config(settings: Settings, args: argparse.Namespace) -> int:
    from bot.github import git
    from bot.repo_config import CONFIG_PATH, RepoConfigError, parse_repo_config, render_settings

    if args.file is not None:
        path = Path(args.file)
    else:
        top = git.run_git_sync(["rev-parse", "--show-toplevel"]).stdout.decode().strip()
        path = Path(top or ".") / CONFIG_PATH
    try:
        # As the bot reads it from GitHub: bytes that are not UTF-8 are replaced, not refused.
        text = path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        if args.file is None:
            print(f"error: there is no {path} (without one, the bot uses the defaults)",
                  file=sys.stderr)
        else:
            print(f"error: there is no file {path}", file=sys.stderr)
        return EXIT_USAGE
    except IsADirectoryError:
        print(f"error: {path} is a directory, not a file", file=sys.stderr)
        return EXIT_USAGE
    except OSError as error:
        print(f"error: cannot read {path}: {error.strerror or error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        config = parse_repo_config(text)
    except RepoConfigError as error:
        print(error)  # the text the bot posts on GitHub, one line per problem
        return EXIT_USAGE
    print(f"# {path} is valid; the settings it gives, merged over the defaults:")
    print(render_settings(config), end="")
    from bot.budgets import operator_notes

    # This bot's own caps, from its environment: a repository may lower them, not raise them.
    for note in operator_notes(settings, config):
        print(f"# ignored: {note}")
    return EXIT_OK


def _command(commands, name: str, summary: str, examples: str):
    """A subcommand whose help says what it does and shows how it is used."""
    return commands.add_parser(
        name, help=summary, description=summary[0].upper() + summary[1:] + ".",
        epilog="examples:\n" + examples + "\n\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="backend-bot", description=__doc__.split("\n\n")[0],
        epilog="Settings come from the environment and ./.env (README.md lists them).\n\n"
               + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version",
                        version=f"backend-bot {importlib.metadata.version('backend-bot')}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = _command(
        commands, "serve", "run the webhook server and its workers (the bot itself)",
        "  backend-bot serve                      # on HOST:PORT, 0.0.0.0:3000 by default\n"
        "  backend-bot serve --port 8080\n"
        "  backend-bot serve --no-workers         # web only; `backend-bot worker`s run the jobs",
    )
    serve.add_argument("--host", help="overrides HOST")
    serve.add_argument("--port", type=int, help="overrides PORT")
    serve.add_argument("--no-workers", action="store_true", help="web only; jobs run on `worker`s")
    serve.set_defaults(func=_serve)

    worker = _command(
        commands, "worker", "run jobs only, sharing serve's PostgreSQL database (scale-out)",
        "  DATABASE_URL=postgresql://bot:…@db:5432/bot backend-bot worker",
    )
    worker.set_defaults(func=_worker)

    run = _command(
        commands, "run", "run the agent on a local checkout, no GitHub",
        '  backend-bot run --repo . "Add GET /health returning the version"\n'
        '  backend-bot run --repo ~/src/api --max-turns 20 --max-cost 1.5 "Paginate GET /users"',
    )
    run.description = RUN_DESCRIPTION
    run.add_argument("--repo", required=True, help="path of a local git checkout, with no "
                     "uncommitted changes")
    run.add_argument("task", help="what to do, in words")
    run.add_argument("--max-turns", type=int, default=None,
                     help="overrides the checkout's max_turns")
    run.add_argument("--max-cost", type=float, default=None,
                     help="in USD; overrides the checkout's max_cost_usd")
    run.add_argument("--branch", default=None,
                     help="branch name (default: a fresh <branch_prefix>local-<task>-<id>)")
    run.set_defaults(func=_run)

    check = _command(
        commands, "check-config", "check a .github/backend.yml as the bot reads it",
        "  backend-bot check-config                 # .github/backend.yml of the checkout you are in\n"
        "  backend-bot check-config draft/backend.yml",
    )
    check.description = CHECK_CONFIG_DESCRIPTION
    check.add_argument("file", nargs="?", metavar="FILE",
                       help="default: .github/backend.yml at the top of the current git "
                       "checkout (or of the current directory)")
    check.set_defaults(func=_check_config)

    receive = _command(
        commands, "receive", "show which jobs one saved webhook payload would start (no job runs)",
        "  backend-bot receive --event issues payload.json\n"
        "  backend-bot receive --event issue_comment --app-slug my-bot comment.json",
    )
    receive.add_argument("--event", required=True, help="the X-GitHub-Event name")
    receive.add_argument("--delivery-id", default="local-receive")
    receive.add_argument("--app-slug", default=None, help="this App's slug, for review routing")
    receive.add_argument("file", help="the payload, as JSON")
    receive.set_defaults(func=_receive)

    jobs = _command(
        commands, "jobs", "list the bot's jobs and their states, or cancel one",
        "  backend-bot jobs                       # the latest 50\n"
        "  backend-bot jobs --state failed --key acme/widgets#42\n"
        "  backend-bot jobs --show 17            # what the agent did, turn by turn\n"
        "  backend-bot jobs --cancel 17",
    )
    jobs.add_argument("--json", action="store_true", help="print the jobs as JSON")
    jobs.add_argument("--limit", type=int, default=50, help="at most this many, newest first")
    jobs.add_argument("--key", help="only jobs of this key, e.g. acme/widgets#42")
    jobs.add_argument("--state", action="append", choices=JOB_STATES,
                      help="only jobs in this state (repeatable)")
    jobs.add_argument("--all", action="store_true",
                      help="also the bot's internal jobs (acknowledgements, reports)")
    jobs.add_argument("--cancel", type=int, metavar="ID", help="cancel this job")
    jobs.add_argument("--show", type=int, metavar="ID",
                      help="this job, with the transcript of each agent run it made")
    jobs.set_defaults(func=_jobs)

    usage = _command(
        commands, "usage", "print the model's spend by repository and UTC day (tokens and US dollars)",
        "  backend-bot usage                              # every day recorded\n"
        "  backend-bot usage --since 2026-11-01 --repo acme/widgets\n"
        "  backend-bot usage --json",
    )
    usage.add_argument("--since", type=_day, metavar="DATE", help="from this UTC day on (YYYY-MM-DD)")
    usage.add_argument("--repo", metavar="R", help="only this repository, e.g. acme/widgets")
    usage.add_argument("--json", action="store_true", help="print the rows as JSON")
    usage.set_defaults(func=_usage)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as error:
        for problem in error.problems:
            _say(f"configuration error: {problem}")
        return EXIT_CONFIG
    logs.configure(settings.log_level, settings.log_format)
    return args.func(settings, args)
