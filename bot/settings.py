"""The process's settings: read once, from the environment and `.env`, nowhere else.

Names are README.md's "Environment" table (Probot's where Probot has one). Secrets are `SecretStr`, so
they print as stars in reprs, logs and tracebacks.
"""

from __future__ import annotations

import functools
import math
import os
import re
import socket
import uuid
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot import database
from bot.errors import SettingsError
from bot.redact import register_secret

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

# What each setting takes, in the words of README.md's table: a refused value is answered
# with this, not with pydantic's account of its types.
EXPECTED = {
    "APP_ID": "the App's numeric id, a whole number (on the App's settings page)",
    "PORT": "a port number from 1 to 65535",
    "BOT_WORKERS": "a whole number of workers from 1 to 256",
    "LOG_LEVEL": " or ".join(", ".join(LOG_LEVELS).rsplit(", ", 1)),
    "LOG_FORMAT": "pretty or json",
    "DATABASE_URL": database.EXPECTED_URL,
    "WEBHOOK_PATH": "a path starting with /, such as /api/github/webhooks",
    "GHE_PROTOCOL": "https or http",
    "BOT_ALLOW_UNSANDBOXED_SHELL": "true or false",
    "PRIVATE_KEY_PATH": "the path of the App's private key file (.pem)",
    "BOT_ANSWER_WAIT_DAYS": "a number of days above 0, such as 7 or 0.5",
    "MODEL_PROVIDER": "anthropic, bedrock or vertex",
    "BOT_MAX_COST_PER_RUN_USD": "a number of US dollars above 0, or left unset for no cap",
    "BOT_BUDGET_REPO_DAILY_USD": "a number of US dollars above 0, or left unset for no budget",
    "BOT_BUDGET_INSTALLATION_MONTHLY_USD": "a number of US dollars above 0, or left unset for no budget",
    "BOT_TRIGGERS_PER_HOUR": "a whole number of triggers from 1 to 100000",
}
MODEL_PROVIDERS = ("anthropic", "bedrock", "vertex")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        populate_by_name=True,
    )

    app_id: int | None = Field(default=None, validation_alias="APP_ID")
    private_key: SecretStr | None = Field(default=None, validation_alias="PRIVATE_KEY")
    private_key_path: Path | None = Field(default=None, validation_alias="PRIVATE_KEY_PATH")
    webhook_secret: SecretStr | None = Field(default=None, validation_alias="WEBHOOK_SECRET")
    webhook_path: str = Field(default="/api/github/webhooks", validation_alias="WEBHOOK_PATH")

    host: str = Field(default="0.0.0.0", validation_alias="HOST")
    port: int = Field(default=3000, ge=1, le=65535, validation_alias="PORT")

    ghe_host: str | None = Field(default=None, validation_alias="GHE_HOST")
    ghe_protocol: str = Field(default="https", validation_alias="GHE_PROTOCOL")

    anthropic_api_key: SecretStr | None = Field(default=None, validation_alias="ANTHROPIC_API_KEY")
    anthropic_base_url: str | None = Field(default=None, validation_alias="ANTHROPIC_BASE_URL")
    anthropic_model: str = Field(default="claude-haiku-4-5", validation_alias="ANTHROPIC_MODEL")
    # Which service runs the model (bot/providers.py). Bedrock and Vertex take the clouds' own
    # variables, read here too so that `.env` can hold them; unset, the SDKs' own lookups
    # (boto3's credential chain, Google's application default credentials) apply.
    model_provider: str = Field(default="anthropic", validation_alias="MODEL_PROVIDER")
    aws_region: str | None = Field(default=None, validation_alias="AWS_REGION")
    aws_access_key_id: SecretStr | None = Field(default=None, validation_alias="AWS_ACCESS_KEY_ID")
    aws_secret_access_key: SecretStr | None = Field(default=None, validation_alias="AWS_SECRET_ACCESS_KEY")
    aws_session_token: SecretStr | None = Field(default=None, validation_alias="AWS_SESSION_TOKEN")
    # Read by boto3 itself; known here so the agent's sandbox hides the file.
    aws_shared_credentials_file: Path | None = Field(default=None, validation_alias="AWS_SHARED_CREDENTIALS_FILE")
    bedrock_base_url: str | None = Field(default=None, validation_alias="ANTHROPIC_BEDROCK_BASE_URL")
    vertex_project_id: str | None = Field(default=None, validation_alias="ANTHROPIC_VERTEX_PROJECT_ID")
    vertex_region: str | None = Field(default=None, validation_alias="CLOUD_ML_REGION")
    vertex_base_url: str | None = Field(default=None, validation_alias="ANTHROPIC_VERTEX_BASE_URL")
    google_credentials_path: Path | None = Field(default=None,
                                                 validation_alias="GOOGLE_APPLICATION_CREDENTIALS")

    # The operator's caps (bot/budgets.py); a repository's `.github/backend.yml` may only lower them.
    max_cost_per_run_usd: float | None = Field(default=None, gt=0, validation_alias="BOT_MAX_COST_PER_RUN_USD")
    budget_repo_daily_usd: float | None = Field(default=None, gt=0, validation_alias="BOT_BUDGET_REPO_DAILY_USD")
    budget_installation_monthly_usd: float | None = Field(
        default=None, gt=0, validation_alias="BOT_BUDGET_INSTALLATION_MONTHLY_USD")
    triggers_per_hour: int = Field(default=20, ge=1, le=100_000, validation_alias="BOT_TRIGGERS_PER_HOUR")

    data_dir: Path = Field(default=Path("./.backend-bot"), validation_alias="BOT_DATA_DIR")
    database_url_setting: str | None = Field(default=None, validation_alias="DATABASE_URL")
    workers: int = Field(default=4, ge=1, le=256, validation_alias="BOT_WORKERS")
    executor_id_setting: str | None = Field(default=None, validation_alias="BOT_EXECUTOR_ID")
    # A public URL for the manifest flow when the bot sits behind a proxy.
    public_url: str | None = Field(default=None, validation_alias="BOT_PUBLIC_URL")
    allow_unsandboxed_shell: bool = Field(
        default=False, validation_alias="BOT_ALLOW_UNSANDBOXED_SHELL"
    )

    # How long a question of the agent waits for its answer before the wait ends.
    answer_wait_days: float = Field(default=7.0, gt=0, validation_alias="BOT_ANSWER_WAIT_DAYS")

    log_level: str = Field(default="info", validation_alias="LOG_LEVEL")
    log_format: str = Field(default="pretty", validation_alias="LOG_FORMAT")

    @field_validator("private_key", mode="after")
    @classmethod
    def _unescape_newlines(cls, value: SecretStr | None) -> SecretStr | None:
        # Hosting dashboards often store a PEM on one line with literal "\n".
        if value is None:
            return None
        return SecretStr(value.get_secret_value().replace("\\n", "\n"))

    @field_validator("log_format")
    @classmethod
    def _known_log_format(cls, value: str) -> str:
        if value not in ("pretty", "json"):
            raise ValueError("unknown log format")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        if value.lower() not in LOG_LEVELS:
            raise ValueError("unknown log level")
        return value.lower()

    @field_validator("database_url_setting")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value:
            database.parse_url(value)
        return value or None

    @field_validator("webhook_path")
    @classmethod
    def _absolute_path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("not a path")
        return value

    @field_validator("model_provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        if value.strip().lower() not in MODEL_PROVIDERS:
            raise ValueError("unknown model provider")
        return value.strip().lower()

    @field_validator("max_cost_per_run_usd", "budget_repo_daily_usd", "budget_installation_monthly_usd",
                     mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        # `BOT_BUDGET_REPO_DAILY_USD=` in a `.env` means no budget, as leaving it out does.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("max_cost_per_run_usd", "budget_repo_daily_usd", "budget_installation_monthly_usd")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("not a finite amount")
        return value

    @field_validator("ghe_protocol")
    @classmethod
    def _web_protocol(cls, value: str) -> str:
        if value not in ("https", "http"):
            raise ValueError("unknown protocol")
        return value

    @field_validator("private_key_path")
    @classmethod
    def _key_file_exists(cls, value: Path | None) -> Path | None:
        # Refused here, not taken for "no key": a mistyped path must not send the operator to
        # register a second App.
        if value is not None and not value.is_file():
            raise ValueError(f"there is no file at {value}")
        return value

    @property
    def database_url(self) -> str:
        return self.database_url_setting or database.default_url(self.data_dir)

    @property
    def engine_database_url(self) -> str:
        """Where DBOS keeps its workflow state: the same PostgreSQL database, or, on SQLite,
        a file beside the jobs table's, so that DBOS's writes never hold up the webhook's."""
        return database.companion_url(self.database_url, "-engine")

    @property
    def github_api_url(self) -> str:
        if self.ghe_host:
            return f"{self.ghe_protocol}://{self.ghe_host}/api/v3"
        return "https://api.github.com"

    @property
    def github_web_url(self) -> str:
        if self.ghe_host:
            return f"{self.ghe_protocol}://{self.ghe_host}"
        return "https://github.com"

    def private_key_pem(self) -> str | None:
        if self.private_key is not None:
            return self.private_key.get_secret_value()
        if self.private_key_path is not None and self.private_key_path.is_file():
            return self.private_key_path.read_text()
        return None

    def missing_credentials(self) -> list[str]:
        """Name each App credential that is absent, in the words an operator sets."""
        missing = []
        if self.app_id is None:
            missing.append("APP_ID")
        if self.private_key_pem() is None:
            missing.append("PRIVATE_KEY or PRIVATE_KEY_PATH")
        if self.webhook_secret is None:
            missing.append("WEBHOOK_SECRET")
        return missing

    def broken_credentials(self) -> list[str]:
        """Each App credential that is set but unusable (the private key that does not parse)."""
        pem = self.private_key_pem()
        broken = _private_key_problem(pem) if pem is not None else None
        if broken is None:
            return []
        source = "PRIVATE_KEY" if self.private_key is not None else "PRIVATE_KEY_PATH"
        return [f"{source}: {broken}"]

    def credential_problems(self) -> list[str]:
        """Each App credential that is absent or unusable: what stands between this bot and
        GitHub. Empty when it can talk to GitHub."""
        return [f"{name} is not set" for name in self.missing_credentials()] + self.broken_credentials()

    def work_problems(self) -> list[str]:
        """Everything, short of the database, that would stop a job: the App's credentials
        and the model's key."""
        problems = self.credential_problems()
        if self.model_provider == "anthropic" and self.anthropic_api_key is None:
            problems.append("ANTHROPIC_API_KEY is not set (the agent cannot run without it)")
        if self.model_provider == "vertex" and not self.vertex_region:
            problems.append("CLOUD_ML_REGION is not set (MODEL_PROVIDER=vertex needs the region of Vertex AI)")
        # Only Vertex reads it: another provider's bot starts whatever else the variable names.
        credentials = self.google_credentials_path
        if self.model_provider == "vertex" and credentials is not None and not credentials.is_file():
            problems.append(f"GOOGLE_APPLICATION_CREDENTIALS: there is no file at {credentials}")
        return problems

    def executor_id(self) -> str:
        """A stable id for this process, so a restart resumes its own unfinished jobs."""
        if self.executor_id_setting:
            return self.executor_id_setting
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / "executor-id"
        if path.is_file():
            return path.read_text().strip()
        value = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        path.write_text(value + "\n")
        return value


@functools.lru_cache(maxsize=8)
def _private_key_problem(pem: str) -> str | None:
    """Why `pem` is not a private key GitHub's App JWTs can be signed with, or None."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        return ("is not a private key in PEM form (-----BEGIN RSA PRIVATE KEY----- …); "
                "download a new one from the App's settings page")
    except Exception as error:  # cryptography's own errors for unsupported keys
        return f"cannot be read ({type(error).__name__})"
    if not isinstance(key, rsa.RSAPrivateKey):
        return "is not an RSA key; GitHub Apps sign with the RSA key GitHub generated"
    return None


def _problem_line(error: ErrorDetails) -> str:
    name = str(error["loc"][0]) if error["loc"] else "settings"
    value = error.get("input")
    shown = f"{value!r}" if isinstance(value, (str, int, float)) else "this value"
    expected = EXPECTED.get(name.upper())
    reason = error.get("ctx", {}).get("error")
    if name.upper() == "PRIVATE_KEY_PATH" and reason:
        return f"{name.upper()}: {reason}"
    if name.upper() == "DATABASE_URL" and reason:
        # A URL's password stays out of the terminal and whatever keeps its output.
        shown = re.sub(r"(://[^:/@]*:).*@", r"\1***@", shown)
        return f"DATABASE_URL={shown}: {reason}"
    if expected:
        return f"{name.upper()}={shown}: expected {expected}"
    return f"{name.upper()}={shown}: {error['msg']}"


def load_settings(**overrides) -> Settings:
    """Read the settings once; tests pass overrides instead of patching the environment.

    A value that does not fit raises `SettingsError`, one line per problem. Every configured
    secret is registered for redaction here, the one place that reads them, so no log line,
    comment or check run shows one, however it is encoded.
    """
    try:
        settings = Settings(**overrides)
    except ValidationError as error:
        raise SettingsError([_problem_line(e) for e in error.errors()]) from None
    for secret in (settings.private_key_pem(), settings.webhook_secret, settings.anthropic_api_key,
                   settings.aws_access_key_id, settings.aws_secret_access_key, settings.aws_session_token,
                   os.environ.get("AWS_BEARER_TOKEN_BEDROCK")):
        if isinstance(secret, SecretStr):
            secret = secret.get_secret_value()
        register_secret(secret, configured=True)
    return settings
