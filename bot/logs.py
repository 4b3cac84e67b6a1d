"""Logging: one line per event, tagged with the delivery and job it belongs to, scrubbed of secrets.

`LOG_FORMAT=pretty` for people, `json` for machines. The delivery id and job id live in
context variables, so every line logged while handling a delivery or running a job carries
them without being passed around.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterator
from typing import TextIO

from bot.redact import redact

delivery_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "delivery_id", default=None
)
job_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("job_id", default=None)


@contextlib.contextmanager
def bound(*, delivery_id: str | None = None, job_id: str | None = None) -> Iterator[None]:
    """Tag every log line inside the block with this delivery and/or job."""
    tokens = []
    if delivery_id is not None:
        tokens.append((delivery_id_var, delivery_id_var.set(delivery_id)))
    if job_id is not None:
        tokens.append((job_id_var, job_id_var.set(job_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.delivery_id = getattr(record, "delivery_id", None) or delivery_id_var.get()
        record.job_id = getattr(record, "job_id", None) or job_id_var.get()
        return True


def _ids(record: logging.LogRecord) -> tuple[str | None, str | None]:
    """The delivery and job ids _ContextFilter put on the record; None where it did not run."""
    return getattr(record, "delivery_id", None), getattr(record, "job_id", None)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        delivery_id, job_id = _ids(record)
        if delivery_id:
            entry["delivery_id"] = delivery_id
        if job_id:
            entry["job_id"] = job_id
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry)


class _PrettyFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        tags = ""
        delivery_id, job_id = _ids(record)
        if delivery_id:
            tags += f" delivery={delivery_id}"
        if job_id:
            tags += f" job={job_id}"
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        line = f"{stamp} {record.levelname:<7} {record.name}{tags}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return redact(line)


def configure(level: str = "info", fmt: str = "pretty", *,
              stream: TextIO | None = None) -> logging.Handler:
    """Send every line through one redacting handler, to `stream` (standard error by default);
    returns that handler."""
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.addFilter(_ContextFilter())
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _PrettyFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # DBOS and uvicorn bring their own handlers; route them through ours.
    for name in ("dbos", "uvicorn", "uvicorn.error", "uvicorn.access"):
        lib = logging.getLogger(name)
        lib.handlers[:] = []
        lib.propagate = True
    logging.getLogger("uvicorn.access").setLevel("WARNING")
    logging.getLogger("httpx").setLevel("WARNING")
    logging.getLogger("httpx2").setLevel("WARNING")
    return handler


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)
