"""The reliability campaign at full size: fuzzing, a fault soak, and a kill loop.

    .venv/bin/python bench/reliability.py                  # all three (about 10-15 minutes)
    .venv/bin/python bench/reliability.py --only fuzz --fuzz 10000
    .venv/bin/python bench/reliability.py --only kills --kills 50 --seed 7
    .venv/bin/python bench/reliability.py --quick          # a smoke run of each

Everything runs on 127.0.0.1: real `backend-bot serve` processes (SQLite, embedded workers,
real git, the bubblewrap sandbox), the GitHub simulator and a scripted model.

- fuzz: signed hostile deliveries (mutations of real payloads, broken framing; see
  tests/webhook_fuzz.py) at a bot; target: 0 answers outside 200/202/400.
- soak: N issues labelled at once while the simulator answers about 20 % of REST requests
  with a fault (a 502 before the write takes effect, a 502 after it, or a rate limit);
  target: every issue exactly one PR, one log entry, one commit; no job failed or stuck.
- kills: N issues while the bot is killed (`kill -9`) K times, each right after one of the
  moments that matter (a 202, a GitHub write, a push, a checkout being made, or at random),
  chosen with a seeded random; target: 0 lost, 0 doubled, 0 stuck.

Figures are printed; a missed target is printed, never an exit status (a benchmark, not a test).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.agent_fakes import FakeAnthropic
from tests.simulator import GitHubSimulator
from tests.support.campaign import Fleet, Outcome, fuzz
from tests.support.processes import BotProcess
from tests.support.stack import REPO, bot_env

MOMENTS = ("202", "write", "push", "checkout", "random")


def new_simulator(root: Path) -> GitHubSimulator:
    sim = GitHubSimulator(root / "github")
    sim.add_app(app_id=1, slug="backend-bot")
    sim.add_repo(REPO, files={"README.md": "# widgets\n"}, installation_id=42)
    return sim


def report(name: str, outcome: Outcome, seconds: float, extra: str = "") -> None:
    verdict = "met" if outcome.perfect else "MISSED"
    print(f"   {verdict:<7} {name}: {outcome.issues} issues in {seconds:.0f} s{extra}")
    print(f"           lost {len(outcome.lost)} · doubled {len(outcome.doubled)} · "
          f"stuck {len(outcome.stuck)} · failed {len(outcome.failed)}")
    for job_id, error in outcome.failed[:5]:
        print(f"           failed job {job_id}: {error[:160]}")
    if outcome.doubled:
        print(f"           doubled issues: {outcome.doubled}")


def run_fuzz(root: Path, count: int, seed: int) -> None:
    print(f"## fuzz: {count:,} signed hostile deliveries (seed {seed})")
    sim = new_simulator(root)
    with FakeAnthropic([]) as fake, sim.serve():
        # No workers: every accepted trigger is stored, none runs (what is answered is measured).
        bot = BotProcess(bot_env(sim, fake, root / "data", LOG_LEVEL="warning"),
                         root / "fuzz.log", module="bot", args=["serve", "--no-workers"])
        bot.start()
        started = time.monotonic()
        try:
            answers = fuzz(bot.url + "/api/github/webhooks", sim.default_app.webhook_secret,
                           count, seed)
        finally:
            bot.stop()
    seconds = time.monotonic() - started
    bad = {status: n for status, n in answers.items() if status not in (200, 202, 400)}
    print(f"   {'met' if not bad else 'MISSED':<7} {sum(answers.values()):,} deliveries in "
          f"{seconds:.0f} s: " + ", ".join(f"{s}: {n:,}" for s, n in sorted(answers.items())))
    if bad:
        print(f"           outside 200/202/400: {bad} (0 is no answer at all)")


def run_soak(root: Path, issues: int, rate: float, seed: int) -> None:
    print(f"## soak: {issues} issues, {rate:.0%} of GitHub REST requests faulted (seed {seed})")
    sim = new_simulator(root)
    with FakeAnthropic([]) as fake, sim.serve():
        fleet = Fleet(sim, fake, root, issues)
        fleet.start()
        started = time.monotonic()
        sim.chaos(rate, seed=seed)
        fleet.label_all()
        finished = fleet.wait_done(timeout=120 + issues * 30)
        sim.chaos(0.0, seed=seed)
        seconds = time.monotonic() - started
        outcome = fleet.outcome()
        fleet.bot.stop()
    report("soak", outcome, seconds,
           f", {sim.chaos_faults} faults injected" + ("" if finished else ", NOT all done"))


def run_kills(root: Path, issues: int, kills: int, seed: int) -> None:
    print(f"## kills: {issues} issues, {kills} kill -9 of serve (seed {seed})")
    rng = random.Random(seed)
    sim = new_simulator(root)
    aimed: dict[str, int] = dict.fromkeys(MOMENTS, 0)
    with FakeAnthropic([]) as fake, sim.serve():
        fleet = Fleet(sim, fake, root, issues)
        fleet.start()
        started = time.monotonic()
        pending = list(fleet.numbers)
        while fleet.kills < kills:
            moment = rng.choice(MOMENTS)
            if moment == "202" and pending:
                fleet._deliver(pending.pop(0))  # accepted: now kill before it can run
                fleet.restart()
            else:
                if pending and rng.random() < 0.5:
                    fleet._deliver(pending.pop(0))
                if not fleet.kill_at("random" if moment == "202" else moment, rng):
                    if not pending and fleet.wait_done(timeout=0.1):
                        # The work is done before the kills are: more issues to work on.
                        more = sim.add_issue(REPO, f"Note {len(fleet.numbers)}", "Add a note.",
                                             user="alice")
                        fleet.numbers.append(more)
                        pending.append(more)
                    continue
            aimed[moment] += 1
        for number in pending:
            fleet._deliver(number)
        finished = fleet.wait_done(timeout=180 + issues * 20)
        seconds = time.monotonic() - started
        outcome = fleet.outcome()
        fleet.bot.stop()
    report("kills", outcome, seconds,
           f", {fleet.kills} kills (" + ", ".join(f"{m} {n}" for m, n in aimed.items()) + ")"
           + ("" if finished else ", NOT all done"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["fuzz", "soak", "kills"], action="append")
    parser.add_argument("--fuzz", type=int, default=10_000, help="deliveries (10,000)")
    parser.add_argument("--issues", type=int, default=8, help="issues per scenario (8)")
    parser.add_argument("--rate", type=float, default=0.2, help="fault rate of the soak (0.2)")
    parser.add_argument("--kills", type=int, default=50, help="kills of the kill loop (50)")
    parser.add_argument("--seed", type=int, default=int(time.time()) % 10_000)
    parser.add_argument("--quick", action="store_true", help="a smoke run of each")
    args = parser.parse_args(argv)
    if args.quick:
        args.fuzz, args.issues, args.kills = 300, 3, 5
    parts = args.only or ["fuzz", "soak", "kills"]
    print(f"# reliability (bench/reliability.py), seed {args.seed}")
    with tempfile.TemporaryDirectory(prefix="bench-reliability-") as tmp:
        root = Path(tmp)
        if "fuzz" in parts:
            run_fuzz(root / "fuzz", args.fuzz, args.seed)
        if "soak" in parts:
            run_soak(root / "soak", args.issues, args.rate, args.seed)
        if "kills" in parts:
            run_kills(root / "kills", args.issues, args.kills, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
