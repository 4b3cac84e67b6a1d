"""Where the model runs: Anthropic's API, Amazon Bedrock or Google Vertex AI (`MODEL_PROVIDER`).

The three are the anthropic SDK's own clients, so the agent loop, prompt caching, retries and
usage are the same code on each: only the client and the model's id differ. A model is named
canonically everywhere in the bot (`claude-sonnet-4-5`: repository configs, prices, budgets,
metrics); `provider_model_id` turns that name into the provider's id at the last moment, and
an id that already is one (`ANTHROPIC_MODEL=us.anthropic.claude-…`, an ARN, `…@20250929`)
passes through unchanged.

Credentials: Anthropic's key; for Bedrock AWS keys from the settings when set, else boto3's
chain (environment, profile, instance role); for Vertex a service account or user file from
GOOGLE_APPLICATION_CREDENTIALS, else Google's application default credentials. None of them
is ever passed to a subprocess: the sandbox and git build their environments from allow-lists.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.errors import UserFacingError

if TYPE_CHECKING:
    import anthropic

    from bot.settings import Settings

# Canonical name -> (Bedrock id, Vertex id). Dated ids as the clouds publish them.
MODEL_IDS: dict[str, tuple[str, str]] = {
    "claude-haiku-4-5": ("anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5@20251001"),
    "claude-sonnet-4-5": ("anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5@20250929"),
    "claude-opus-4-5": ("anthropic.claude-opus-4-5-20251101-v1:0", "claude-opus-4-5@20251101"),
    "claude-opus-4-1": ("anthropic.claude-opus-4-1-20250805-v1:0", "claude-opus-4-1@20250805"),
    "claude-sonnet-4": ("anthropic.claude-sonnet-4-20250514-v1:0", "claude-sonnet-4@20250514"),
    "claude-opus-4": ("anthropic.claude-opus-4-20250514-v1:0", "claude-opus-4@20250514"),
    "claude-3-7-sonnet": ("anthropic.claude-3-7-sonnet-20250219-v1:0", "claude-3-7-sonnet@20250219"),
    "claude-3-5-haiku": ("anthropic.claude-3-5-haiku-20241022-v1:0", "claude-3-5-haiku@20241022"),
    "claude-3-haiku": ("anthropic.claude-3-haiku-20240307-v1:0", "claude-3-haiku@20240307"),
}
_ANTHROPIC_DATED = re.compile(r"^(?P<name>claude-[a-z0-9-]+?)-(?P<date>\d{8})$")
_VERTEX_DATED = re.compile(r"^(?P<name>claude-[a-z0-9-]+?)@(?P<date>\d{8})$")
# Bedrock: a model id (`anthropic.…`), a cross-region inference profile (`us.anthropic.…`,
# `global.anthropic.…`) or an ARN (a provisioned model or an application inference profile).
_BEDROCK_ID = re.compile(r"^(?:arn:aws[a-z-]*:bedrock:|(?:[a-z]{2,6}\.)?anthropic\.)")
_BEDROCK_NAME = re.compile(r"^(?:[a-z]{2,6}\.)?anthropic\.(?P<name>claude-[a-z0-9-]+?)(?:-\d{8})?-v\d+(?::\d+)?$")

VERTEX_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)

NO_MODEL_KEY = (
    "the bot's operator has not set ANTHROPIC_API_KEY, so the agent cannot run. "
    "Ask them to configure it"
)


def provider_model_id(provider: str, model: str) -> str:
    """The id `provider` knows `model` by: the table's, a dated name moved into the provider's
    form, or `model` itself when it already is the provider's id or the table does not know it."""
    model = model.strip()
    if provider == "anthropic" or _BEDROCK_ID.match(model) or "@" in model:
        return model
    dated = _ANTHROPIC_DATED.match(model)
    if provider == "vertex":
        if dated:
            return f"{dated['name']}@{dated['date']}"
        return MODEL_IDS[model][1] if model in MODEL_IDS else model
    if model in MODEL_IDS:
        return MODEL_IDS[model][0]
    if dated:
        return f"anthropic.{dated['name']}-{dated['date']}-v1:0"
    return model


def canonical_model(model: str) -> str:
    """The bot's own name of a model given in any provider's form (prices and metrics use it)."""
    model = model.strip()
    for name, ids in MODEL_IDS.items():
        if model in ids:
            return name
    for pattern in (_VERTEX_DATED, _BEDROCK_NAME):
        found = pattern.match(model)
        if found:
            return found["name"]
    dated = _ANTHROPIC_DATED.match(model)
    return dated["name"] if dated else model


def make_client(settings: Settings) -> anthropic.AsyncAnthropic:
    """The SDK client of `settings.model_provider`. The loop retries model errors itself, with
    its own backoff, so the client never does. Raises UserFacingError when the provider cannot
    be reached for want of a setting (said on GitHub as is, with no secret in it)."""
    import anthropic

    provider = settings.model_provider
    if provider == "anthropic":
        if settings.anthropic_api_key is None:
            raise UserFacingError(NO_MODEL_KEY)
        return anthropic.AsyncAnthropic(
            api_key=settings.anthropic_api_key.get_secret_value(),
            base_url=settings.anthropic_base_url, max_retries=0,
        )
    try:
        if provider == "bedrock":
            return _bedrock(settings)
        return _vertex(settings)
    except (ValueError, ImportError, OSError) as error:
        # The SDKs' own words (no region, no project, an unreadable credentials file), never a
        # credential: they name settings, not values.
        raise UserFacingError(f"the bot's operator has not finished configuring MODEL_PROVIDER={provider}: "
                              f"{_first_line(error)}") from None


def _bedrock(settings: Settings) -> anthropic.AsyncAnthropic:
    from anthropic import AsyncAnthropicBedrock

    def secret(value) -> str | None:
        return value.get_secret_value() if value is not None else None

    explicit = settings.aws_access_key_id is not None or os.environ.get("AWS_BEARER_TOKEN_BEDROCK")
    if not explicit:
        import boto3

        # The SDK would find out only when signing the first request, as an error the loop
        # cannot tell from a bug.
        if boto3.Session().get_credentials() is None:
            raise ValueError("no AWS credentials were found (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                             "a profile, or an instance role)")
    # Not a subclass of AsyncAnthropic, but the same `messages.create`, which is all the loop uses.
    return AsyncAnthropicBedrock(
        aws_access_key=secret(settings.aws_access_key_id),
        aws_secret_key=secret(settings.aws_secret_access_key),
        aws_session_token=secret(settings.aws_session_token),
        aws_region=settings.aws_region, base_url=settings.bedrock_base_url, max_retries=0,
    )


def _vertex(settings: Settings) -> anthropic.AsyncAnthropic:
    import google.auth
    from anthropic import AsyncAnthropicVertex
    from google.auth.exceptions import DefaultCredentialsError

    region = settings.vertex_region
    if not region:
        raise ValueError("CLOUD_ML_REGION is not set")
    # Found now rather than at the first request, where the SDK's error could not be told from
    # a bug: the file GOOGLE_APPLICATION_CREDENTIALS names, else the application defaults.
    try:
        if settings.google_credentials_path is not None:
            credentials, found_project = _google_credentials_file(settings.google_credentials_path)
        else:
            credentials, found_project = google.auth.default(scopes=list(VERTEX_SCOPES))
    except (DefaultCredentialsError, ValueError, OSError) as error:
        raise ValueError(f"no usable Google credentials ({_first_line(error)})") from None
    project = settings.vertex_project_id or found_project
    kwargs = {"project_id": project} if project else {}
    return AsyncAnthropicVertex(region=region, credentials=credentials,
                                base_url=settings.vertex_base_url, max_retries=0, **kwargs)


def _google_credentials_file(path: Path) -> tuple[Any, str | None]:
    """The operator's key file, by its own type's loader: Google deprecates the generic one,
    which would also accept configurations that make the library run programs or fetch URLs."""
    from google.oauth2 import credentials as user_credentials
    from google.oauth2 import service_account

    info = json.loads(path.read_text(encoding="utf-8"))
    kind = info.get("type") if isinstance(info, dict) else None
    if kind == "service_account":
        found = service_account.Credentials.from_service_account_info(info, scopes=list(VERTEX_SCOPES))
        return found, info.get("project_id")
    if kind == "authorized_user":
        found = user_credentials.Credentials.from_authorized_user_info(info, scopes=list(VERTEX_SCOPES))
        return found, info.get("quota_project_id")
    # Said on GitHub when a run fails on it: the file's type, never where it lives.
    raise ValueError(f"GOOGLE_APPLICATION_CREDENTIALS holds credentials of type {kind!r}; a service "
                     "account key or a user's application default credentials (type service_account or "
                     "authorized_user) are read")


def describe(settings: Settings) -> str:
    """The provider and where it is, for the start-up line and /healthz: no credential."""
    provider = settings.model_provider
    if provider == "bedrock":
        return f"bedrock ({settings.aws_region or 'region from the AWS configuration'})"
    if provider == "vertex":
        project = settings.vertex_project_id or "project from the Google credentials"
        return f"vertex ({project}, {settings.vertex_region or 'no region'})"
    return "anthropic"


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
