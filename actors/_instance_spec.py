"""What an instance actor is given to run one browser, and where its profile lives."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from actors.lifecycle import State
from actors.session import SessionConfig


@dataclass(frozen=True, slots=True)
class InstanceSpec:
    """What an instance actor needs to run its browser."""

    session: SessionConfig
    """Browser settings for this instance (profile, url, executable, timeouts)."""
    qr_idle_timeout: float = 600.0
    """Seconds an unscanned QR may show before the browser is closed."""
    action_timeout: float = 20.0
    """Seconds a page action (click, pairing code) may take."""
    progress_timeout: float = 90.0
    """Seconds ``starting`` or ``logged_out`` may last before the page counts as stuck."""
    sync_timeout: float = 600.0
    """Seconds ``syncing`` (loading chats, long for big accounts) may last."""

    @property
    def instance_id(self) -> str:
        return self.session.instance_id

    def deadline(self, state: State) -> float:
        """Seconds ``state`` (one of :data:`actors._screens.PROGRESS_STATES`) may last."""
        return self.sync_timeout if state is State.SYNCING else self.progress_timeout


def profile_dir(state_dir: Path, instance_id: str) -> Path:
    """Where an instance's browser profile lives."""
    return state_dir / "profiles" / instance_id
