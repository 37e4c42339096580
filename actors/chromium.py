"""Finding the Chromium executable and the flags it needs on a server.

Playwright cannot download its own browsers here, so wasup drives the system Chromium.
Order: the configured path, then ``$WASUP_CHROMIUM``, then Debian's real binary (the
``/usr/bin/chromium`` wrapper script sources config files and adds flags we do not want),
then other usual places.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence

from actors.errors import BrowserNotFound

ENV_VAR = "WASUP_CHROMIUM"

USUAL_PATHS: tuple[str, ...] = (
    "/usr/lib/chromium/chromium",
    "/usr/lib/chromium-browser/chromium-browser",
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome-stable",
    "/usr/bin/google-chrome",
    "/snap/bin/chromium",
)

#: Flags every browser gets. Background networking, component updates and sync reach out to
#: Google on every start; without them Chromium is quieter and starts faster.
LAUNCH_FLAGS: tuple[str, ...] = (
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    # Real WhatsApp Web refuses obviously automated browsers.
    "--disable-blink-features=AutomationControlled",
)

#: Added when Chromium's sandbox is off. Root needs it: Chromium refuses to sandbox as root.
NO_SANDBOX = "--no-sandbox"


def launch_flags(*, sandbox: bool, extra: tuple[str, ...] = ()) -> list[str]:
    """Every flag for one browser: ours, ``--no-sandbox`` unless sandboxed, then ``extra``."""
    return [*LAUNCH_FLAGS, *(() if sandbox else (NO_SANDBOX,)), *extra]


def sandbox_wanted(setting: str, euid: int) -> bool:
    """Resolve the ``browser.sandbox`` setting (``auto``, ``on``, ``off``) for this user."""
    return setting == "on" or (setting == "auto" and euid != 0)


def user_agent(version: str) -> str:
    """A normal desktop Chrome user agent for browser ``version`` (WhatsApp Web rejects
    "HeadlessChrome", and one claiming another version than the engine's looks forged)."""
    major = version.split(".", 1)[0] if version[:1].isdigit() else "131"
    return (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{major}.0.0.0 Safari/537.36"
    )


def identity_flags(agent: str, locale: str) -> list[str]:
    """Flags that make every part of the browser (service workers too, which Playwright's
    context user agent does not reach) send ``agent`` and speak ``locale``."""
    return [f"--user-agent={agent}", f"--lang={locale}"]


@functools.lru_cache(maxsize=8)
def chromium_version(executable: str) -> str:
    """``chromium --version``'s version number (``131.0.6778.204``), or ``unknown``."""
    try:
        out = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    words = out.split()
    return next((w for w in reversed(words) if w[:1].isdigit()), "unknown")


def _usable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def find_chromium(
    configured: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    candidates: Sequence[str] = USUAL_PATHS,
) -> str:
    """Return the Chromium executable to launch, or raise :class:`BrowserNotFound`.

    A configured path or ``$WASUP_CHROMIUM`` that does not exist is an error, not a reason
    to fall back: the operator asked for that browser.
    """
    env = os.environ if environ is None else environ
    for origin, value in (("config browser.executable", configured), (ENV_VAR, env.get(ENV_VAR))):
        if value:
            resolved = value if os.sep in value else shutil.which(value) or value
            if not _usable(resolved):
                raise BrowserNotFound(f"{origin} names {value!r}, which is not an executable file")
            return resolved
    for path in candidates:
        if _usable(path):
            return path
    tried = ", ".join(candidates)
    raise BrowserNotFound(
        f"no Chromium found; tried {tried}. Install Debian's 'chromium' package "
        f"(bash scripts/setup.sh does), or set {ENV_VAR} or browser.executable in the config"
    )
