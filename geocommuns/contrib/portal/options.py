"""geocommuns.contrib.portal.options: run-time options of the technician web space.

Set with environment variables prefixed ``GEOCOMMUNS_ESPACE_`` (or in ``.env``): where
the space keeps its sessions and the deliveries being checked, the largest file it
accepts and how long a session lasts.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PortalOptions(BaseSettings):
    """Options of ``/espace/``.

    ``folder`` is relative to the project root unless absolute.
    """

    model_config = SettingsConfigDict(
        env_prefix="GEOCOMMUNS_ESPACE_", env_file=".env", extra="ignore"
    )

    #: Sessions (``sessions.sqlite``) and deliveries being checked (``depots/``).
    folder: Path = Path("geodata/espace")
    #: Largest delivered file, in bytes (the whole request may carry a few kB more).
    upload_max_bytes: int = Field(default=20_000_000, gt=0)
    #: How long a session lasts after sign-in, in minutes.
    session_minutes: int = Field(default=480, gt=0)
    #: How long a session lasts without any request, in minutes.
    idle_minutes: int = Field(default=60, gt=0)
    #: Deliveries wait in the EPCI's review queue before they are applied.
    review: bool = False
