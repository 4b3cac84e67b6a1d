"""The process's settings: read once, from the environment and `.env`, nowhere else.

Names are README.md's "Environment" table (Probot's where Probot has one). Secrets are `SecretStr`, so
they print as stars in reprs, logs and tracebacks.
"""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot import database
from bot.redact import register_secret


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
    port: int = Field(default=3000, validation_alias="PORT")

    ghe_host: str | None = Field(default=None, validation_alias="GHE_HOST")
    ghe_protocol: str = Field(default="https", validation_alias="GHE_PROTOCOL")

    anthropic_api_key: SecretStr | None = Field(default=None, validation_alias="ANTHROPIC_API_KEY")
    anthropic_base_url: str | None = Field(default=None, validation_alias="ANTHROPIC_BASE_URL")
    anthropic_model: str = Field(default="claude-haiku-4-5", validation_alias="ANTHROPIC_MODEL")

    data_dir: Path = Field(default=Path("./.backend-bot"), validation_alias="BOT_DATA_DIR")
    database_url_setting: str | None = Field(default=None, validation_alias="DATABASE_URL")
    workers: int = Field(default=4, ge=1, le=256, validation_alias="BOT_WORKERS")
    executor_id_setting: str | None = Field(default=None, validation_alias="BOT_EXECUTOR_ID")
    # A public URL for the manifest flow when the bot sits behind a proxy.
    public_url: str | None = Field(default=None, validation_alias="BOT_PUBLIC_URL")
    allow_unsandboxed_shell: bool = Field(
        default=False, validation_alias="BOT_ALLOW_UNSANDBOXED_SHELL"
    )

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
            raise ValueError("LOG_FORMAT must be 'pretty' or 'json'")
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
            if self.private_key_path is not None:
                missing.append(f"PRIVATE_KEY_PATH (no file at {self.private_key_path})")
            else:
                missing.append("PRIVATE_KEY or PRIVATE_KEY_PATH")
        if self.webhook_secret is None:
            missing.append("WEBHOOK_SECRET")
        return missing

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


def load_settings(**overrides) -> Settings:
    """Read the settings once; tests pass overrides instead of patching the environment.

    Every configured secret is registered for redaction here, the one place that reads them,
    so no log line, comment or check run shows one, however it is encoded.
    """
    settings = Settings(**overrides)
    for secret in (settings.private_key_pem(), settings.webhook_secret, settings.anthropic_api_key):
        if isinstance(secret, SecretStr):
            secret = secret.get_secret_value()
        register_secret(secret, configured=True)
    return settings
