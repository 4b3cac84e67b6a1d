"""`backend-bot`: serve, worker, run, receive, jobs.

Each command imports what it needs inside its own function: `jobs` or `receive` should not
pay for the web server, DBOS and the agent (seconds of imports) that `serve` loads.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from pathlib import Path

from bot import logs
from bot.settings import Settings, load_settings


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from bot.app import build_app
    from bot.registration import SETUP_NOTICE, new_setup_token, setup_url

    host = args.host or settings.host
    port = args.port or settings.port
    setup_token = new_setup_token() if settings.missing_credentials() else None
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
        payload = webhooks.decode(args.event, Path(args.file).read_bytes())
    except WebhookError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 2
    delivery = Delivery(
        event=args.event,
        delivery_id=args.delivery_id,
        payload=payload,
        app_slug=args.app_slug,
    )
    if delivery.sent_by_bot:
        print(f"ignored: sent by a bot ({delivery.sender_login})")
        return 0
    if delivery.typed is None:
        print(f"note: githubkit's strict {args.event} model rejects this payload; "
              "the handlers read the raw JSON", file=sys.stderr)
    jobs = handlers.router.dispatch(delivery)
    if not jobs:
        print(f"no job: nothing to do for {args.event}.{payload.get('action')}")
        return 0
    for job in jobs:
        print(json.dumps({"kind": job.kind, "key": job.key, "spec": job.spec}, indent=2))
    return 0


def _fmt_time(value: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value)) if value else "-"


def _jobs(settings: Settings, args: argparse.Namespace) -> int:
    from bot.jobstore import JobStore

    store = JobStore(settings.database_url)
    store.open()
    try:
        if args.cancel is not None:
            from bot.engine import cancel_from_outside

            job = cancel_from_outside(settings, store, args.cancel)
            if job is None:
                print(f"no job {args.cancel}", file=sys.stderr)
                return 1
            print(f"job {job.id}: {job.state}")
            return 0
        jobs = store.list(limit=args.limit, key=args.key, states=args.state or None)
    finally:
        store.close()
    if args.json:
        print(json.dumps([job.as_dict() for job in jobs], indent=2))
        return 0
    if not jobs:
        print("no jobs")
        return 0
    header = f"{'ID':>6}  {'STATE':<10} {'KIND':<10} {'ATT':>3}  {'CREATED':<19}  {'FINISHED':<19}  KEY / ERROR"
    print(header)
    for job in jobs:
        detail = job.key + (f"  {job.error}" if job.error else "") + (
            f"  {job.result}" if job.result and not job.error else "")
        print(f"{job.id:>6}  {job.state:<10} {job.kind:<10} {job.attempts:>3}  "
              f"{_fmt_time(job.created_at):<19}  {_fmt_time(job.finished_at):<19}  {detail}")
    return 0


def _run(settings: Settings, args: argparse.Namespace) -> int:
    from bot.agent.local import main as run_local

    return run_local(
        args.repo, args.task, settings,
        max_turns=args.max_turns, max_cost=args.max_cost, branch=args.branch,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="backend-bot", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="webhook server and in-process workers")
    serve.add_argument("--host", help="overrides HOST")
    serve.add_argument("--port", type=int, help="overrides PORT")
    serve.add_argument("--no-workers", action="store_true", help="web only; jobs run on `worker`s")
    serve.set_defaults(func=_serve)

    worker = commands.add_parser("worker", help="workers only, sharing the database")
    worker.set_defaults(func=_worker)

    run = commands.add_parser("run", help="the agent on a local checkout, no GitHub")
    run.add_argument("--repo", required=True, help="path of a local git checkout")
    run.add_argument("task", help="what to do")
    run.add_argument("--max-turns", type=int, default=None)
    run.add_argument("--max-cost", type=float, default=None, help="USD")
    run.add_argument("--branch", default=None, help="branch name (default: a fresh one)")
    run.set_defaults(func=_run)

    receive = commands.add_parser("receive", help="push one saved payload through routing")
    receive.add_argument("--event", required=True, help="the X-GitHub-Event name")
    receive.add_argument("--delivery-id", default="local-receive")
    receive.add_argument("--app-slug", default=None, help="this App's slug, for review routing")
    receive.add_argument("file", help="the payload, as JSON")
    receive.set_defaults(func=_receive)

    jobs = commands.add_parser("jobs", help="list jobs and their states")
    jobs.add_argument("--json", action="store_true")
    jobs.add_argument("--limit", type=int, default=50)
    jobs.add_argument("--key", help="only jobs of this key, e.g. acme/widgets#42")
    jobs.add_argument("--state", action="append", help="only jobs in this state (repeatable)")
    jobs.add_argument("--cancel", type=int, metavar="ID", help="cancel this job")
    jobs.set_defaults(func=_jobs)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = load_settings()
    logs.configure(settings.log_level, settings.log_format)
    return args.func(settings, args)
