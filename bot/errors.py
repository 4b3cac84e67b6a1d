"""The error tree. Everything the bot raises on purpose is a `BotError`.

    BotError
    ├── WebhookError            a delivery the bot must refuse (carries the HTTP status)
    ├── TransientError          worth retrying: network, 5xx, rate limits, model overload
    ├── UserFacingError         the user can fix it; the message is said on GitHub as is
    └── JobCancelled            someone asked the job to stop
"""

from __future__ import annotations


class BotError(Exception):
    pass


class WebhookError(BotError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class TransientError(BotError):
    pass


class UserFacingError(BotError):
    pass


class JobCancelled(BotError):
    pass
