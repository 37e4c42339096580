"""The child spec: what one instance actor is started with, built from the config records."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path

from actors.chromium import sandbox_wanted
from actors.errors import BrowserNotFound
from actors.instance import InstanceSpec, profile_dir
from actors.session import SessionConfig
from supervisor.settings import BrowserConfig, InstanceConfig


def child_spec(
    config: InstanceConfig,
    browser: BrowserConfig,
    state_dir: Path,
    launch_rank: tuple[int, int] = (0, 0),
    *,
    profiles: Path | None = None,
    pre_launch: Callable[[str, Path], None] | None = None,
) -> InstanceSpec:
    """The spec of ``config``'s actor; ``browser.executable`` must be resolved already.
    ``launch_rank`` is its place in the launch gate's queue (lower first). ``profiles``
    holds the profile directories (default ``<state_dir>/profiles``); ``pre_launch(id,
    profile)`` runs before each launch and may refuse it by raising (cluster mode)."""
    if browser.executable is None:
        raise BrowserNotFound("browser.executable must be resolved before instances start")
    session = SessionConfig(
        instance_id=config.id,
        profile_dir=profile_dir(state_dir, config.id) if profiles is None else profiles / config.id,
        url=config.url,
        executable=browser.executable,
        headless=browser.headless,
        extra_args=browser.extra_args,
        sandbox=sandbox_wanted(browser.sandbox, os.geteuid()),
        launch_timeout=browser.launch_timeout,
        close_timeout=browser.close_timeout,
        liveness_timeout=browser.liveness_timeout,
        screenshot_dir=state_dir / "screens",
        locale=browser.locale,
        proxy=config.proxy,
        launch_rank=launch_rank,
        pre_launch=None if pre_launch is None else functools.partial(pre_launch, config.id),
    )
    return InstanceSpec(
        session=session,
        qr_idle_timeout=config.qr_idle_timeout,
        action_timeout=config.action_timeout,
        progress_timeout=config.progress_timeout,
        sync_timeout=config.sync_timeout,
    )
