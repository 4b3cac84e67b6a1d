"""Kind `rate_limited`: a trigger over its person's hourly limit (bot/rate_limits.py), stored in
place of the work it asked for. The first refusal of the hour says so, politely, with when to
ask again; the later ones end without a word. Runs on the control queue: no model, no checkout."""

from __future__ import annotations

import datetime as dt

from bot import texts
from bot.engine import JobContext
from bot.flows.publish import reply


async def run(ctx: JobContext) -> str:
    spec = ctx.job.spec
    refused = f"refused: {spec['requester']} asked for work more than {spec['limit']} times in an hour"
    if not spec.get("speak"):
        return refused + " (already told this hour)"
    again = dt.datetime.fromtimestamp(spec["again_at"], dt.UTC)

    # Where the trigger was written: a review thread's command is answered in its thread.
    await reply(ctx, texts.RATE_LIMITED.format(login=spec["requester"], limit=spec["limit"],
                                               again=f"{again:%H:%M} UTC"), kind="rate-limited")
    return refused
