"""Fencing tokens in profiles, and the checks made before launching into a shared profile.

A node that owns an instance holds its owner key; the key's etcd ``create_revision`` is the
fencing token, and it only grows: every new owner key gets a higher revision than any
before it. The owner writes its token into the profile before launching. A deposed owner
that wakes up (SIGCONT, a healed network) finds a newer token there and refuses to launch,
even if its own fence failed to kill it in time; :func:`launch_verdict` is that rule.

Chromium's ``SingletonLock`` is a symlink to ``<hostname>-<pid>``; with a profile shared by
several hosts, a stale lock from another host blocks the next owner.
:func:`singleton_lock_verdict` says when it may be removed: only by the owner-key holder,
and never while a local browser that holds it is alive.
"""

from __future__ import annotations

import contextlib
import os
import socket
from enum import StrEnum
from pathlib import Path

from supervisor.cluster._errors import FenceTokenError

TOKEN_FILE = "wasup-fence-token"
"""The token's file name inside a profile directory."""


class LaunchVerdict(StrEnum):
    """Whether a node may launch a browser into a profile."""

    LAUNCH = "launch"
    """The profile carries no token, or one no newer than this owner's."""
    REFUSE_NEWER = "refuse_newer"
    """The profile carries a newer token: another node owned it since; never launch."""


class LockVerdict(StrEnum):
    """What to do with a profile's ``SingletonLock`` before launching."""

    ABSENT = "absent"
    """No lock: launch."""
    REMOVE = "remove"
    """A stale lock (another host, or a local process that is gone): remove it, launch."""
    KEEP_LIVE = "keep_live"
    """A browser on this host still holds it: kill that browser first (by profile)."""
    NOT_OWNER = "not_owner"
    """This node does not hold the owner key: touch nothing, launch nothing."""


def launch_verdict(profile_token: int | None, my_token: int) -> LaunchVerdict:
    """May the holder of ``my_token`` launch into a profile carrying ``profile_token``?"""
    if profile_token is not None and profile_token > my_token:
        return LaunchVerdict.REFUSE_NEWER
    return LaunchVerdict.LAUNCH


def singleton_lock_verdict(
    lock_target: str | None, *, holds_owner_key: bool, my_host: str, local_pid_alive: bool
) -> LockVerdict:
    """The verdict on a ``SingletonLock`` whose symlink target is ``lock_target``.

    ``local_pid_alive``: whether the pid in the target is a live process on this host (only
    consulted when the target names this host).
    """
    if not holds_owner_key:
        return LockVerdict.NOT_OWNER
    if lock_target is None:
        return LockVerdict.ABSENT
    host, sep, pid = lock_target.rpartition("-")
    if sep and host == my_host and pid.isdigit() and local_pid_alive:
        return LockVerdict.KEEP_LIVE
    return LockVerdict.REMOVE


def read_token(profile_dir: Path) -> int | None:
    """The token in ``profile_dir``, or None when the profile has none yet."""
    path = Path(profile_dir) / TOKEN_FILE
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise FenceTokenError(f"{path}: cannot read the fencing token: {exc}") from exc
    if not text.isdigit():
        raise FenceTokenError(
            f"{path}: {text[:40]!r} is not a fencing token (a whole number); "
            "refusing to launch until an operator removes or fixes the file"
        )
    return int(text)


def write_token(profile_dir: Path, token: int) -> None:
    """Write ``token`` into ``profile_dir`` so that it is whole on disk before a launch."""
    if token < 1:
        raise ValueError(f"a fencing token is an etcd revision (1 or more), got {token}")
    directory = Path(profile_dir)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / TOKEN_FILE
    # A rename over the old file: a reader (another node on shared storage) sees the old
    # token or the new one, never a torn write.
    # Host and pid in the temporary name: nodes on other hosts share this directory.
    tmp = directory / f".{TOKEN_FILE}.{socket.gethostname()}.{os.getpid()}"
    with open(tmp, "w") as handle:
        handle.write(f"{token}\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, final)
    fd = os.open(directory, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def read_singleton_lock(profile_dir: Path) -> str | None:
    """The target of the profile's ``SingletonLock`` symlink, or None when there is none."""
    try:
        return os.readlink(Path(profile_dir) / "SingletonLock")
    except OSError:
        return None


def stamp_profile(profile_dir: Path, my_token: int) -> LaunchVerdict:
    """Check the profile's token against ``my_token`` and, if it may launch, write ours.

    Call it after taking the owner key and before every launch. The read and the write are
    two steps on shared storage, so this is the second line of defence; the first is the
    fence, which kills a deposed owner's browsers before anyone else can own the instance.
    """
    verdict = launch_verdict(read_token(profile_dir), my_token)
    if verdict is LaunchVerdict.LAUNCH:
        write_token(profile_dir, my_token)
    return verdict
