"""One settings class for the whole service, read from WASTETRACK_* environment variables."""

from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import platformdirs
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEVELOPMENT_SECRET = "development-secret-change-me-development-secret"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WASTETRACK_", extra="ignore")

    environment: str = Field("development", description="development, test or production")
    database_url: str | None = Field(
        None, description="postgres://user:pass@host:port/db; unset starts an embedded server"
    )
    data_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir("wastetrack")),
        description="embedded database, uploaded photos",
    )
    secret_key: str = Field(DEVELOPMENT_SECRET, description="signs tokens and QR codes")
    public_base_url: str | None = Field(
        None, description="prefix of QR URLs; default http://{host}:{port}"
    )
    timezone: str = Field("Asia/Shanghai", description="the city's time zone for dates and days")
    host: str = "127.0.0.1"
    port: int = 8000
    access_token_minutes: int = 15
    refresh_token_days: int = 30
    login_max_failures: int = 5
    login_lock_seconds: int = 300
    photo_max_bytes: int = 5 * 1024 * 1024
    sync_max_events: int = 500
    db_pool_size: int = 10
    manifest_area_code: str = Field(
        "3710", pattern=r"^\d{4}$", description="province + prefecture in manifest numbers"
    )
    manifest_quantity_tolerance: Decimal = Field(
        Decimal("0.05"), ge=0, le=1, description="received vs declared before a discrepancy"
    )
    weight_discrepancy_tolerance: float = Field(
        0.10, ge=0, le=10, description="received vs declared kg before an alert"
    )
    idle_batch_hours: int = Field(168, ge=1, description="hours in one state before an alert")
    alert_refresh_seconds: float = Field(300, description="how often time-based alerts are raised")

    @property
    def base_url(self) -> str:
        """Where phones reach the service: the prefix of every QR URL."""
        return (self.public_base_url or f"http://{self.host}:{self.port}").rstrip("/")

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> "Settings":
        if (
            self.environment not in ("development", "test")
            and self.secret_key == DEVELOPMENT_SECRET
        ):
            raise ValueError("WASTETRACK_SECRET_KEY must be set outside development")
        if len(self.secret_key) < 32:
            raise ValueError("WASTETRACK_SECRET_KEY must be at least 32 characters")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
