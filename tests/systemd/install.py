"""wasup installed in a container the way docs/operations.md tells a user, and used from inside.

The steps below follow the guide's "1. Install" in order; where the guide fetches from the
network (git clone, pip's index), the container reads what the host bound in instead: the
source tree at :data:`SOURCE` and a wheelhouse at :data:`WHEELS`.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from tests.systemd.container import Container, ContainerError, wait_until

SOURCE = "/mnt/wasup-source"
"""Where the container sees a copy of this checkout (read-only)."""
WHEELS = "/mnt/wasup-wheels"
"""Where the container sees the wheelhouse (read-only)."""
UNIT = "wasup.service"
URL = "http://127.0.0.1:8080"
API_KEY = "systemd-test-key"
SIM_PORT = 8081
"""A standalone simulator (its own unit) that outlives wasup restarts, so a link survives them."""

#: Not copied into the container: caches, virtualenvs and run-time state of the checkout.
_IGNORED = shutil.ignore_patterns(
    ".git",
    ".venv",
    "__pycache__",
    "*.egg-info",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    "state",
    "build",
)


def stage_source(checkout: Path, into: Path) -> Path:
    """Copy ``checkout``'s files (not its caches) to ``into``: the "release" to unpack."""
    shutil.copytree(checkout, into, ignore=_IGNORED, symlinks=True)
    return into


def config(*extra_instances: str, broken: bool = False, start: str = "always") -> str:
    """/etc/wasup/wasup.yaml: one instance on the embedded simulator, one on the standalone one.

    ``extra_instances`` start on demand (no browser); ``broken`` adds a key the daemon refuses;
    ``start: on_demand`` runs no browser at all.
    """
    extra = "".join(f"  - id: {i}\n    start: on_demand\n" for i in extra_instances)
    return f"""\
state_dir: /var/lib/wasup
http:
  listen: "127.0.0.1:8080"
  api_key_file: /etc/wasup/api-keys
simulator:
  enabled: true
  listen: "127.0.0.1:0"
defaults:
  start: {start}
  url: "{{simulator}}/"
instances:
  - id: embedded
  - id: linked
    url: "http://127.0.0.1:{SIM_PORT}/"
{extra}{"no_such_key: true" if broken else ""}
"""


def install(
    box: Container, unit_text: str, dropins: dict[str, str] | None = None, wasup_yaml: str = ""
) -> None:
    """Install wasup and ``unit_text`` as /etc/systemd/system/wasup.service (with ``dropins``
    in wasup.service.d/), ``wasup_yaml`` (default :func:`config`); do not start it."""
    sh = box.sh
    sh(
        "useradd --system --user-group --home-dir /var/lib/wasup --no-create-home"
        " --shell /usr/sbin/nologin wasup"
    )
    sh(f"cp -a {SOURCE} /opt/wasup && chown -R root:root /opt/wasup")
    sh("python3 -m venv /opt/wasup/.venv")
    sh(
        f"/opt/wasup/.venv/bin/pip install --quiet --no-index --find-links {WHEELS} /opt/wasup",
        timeout=600,
    )
    sh("/opt/wasup/.venv/bin/wasup --help >/dev/null")
    sh("install -d -o root -g wasup -m 0750 /etc/wasup")
    box.write("/etc/wasup/wasup.yaml", wasup_yaml or config(), mode="0640", group="wasup")
    box.write("/etc/wasup/api-keys", API_KEY + "\n", mode="0640", group="wasup")
    sh("runuser -u wasup -- /opt/wasup/.venv/bin/wasup check-config /etc/wasup/wasup.yaml")
    box.write(f"/etc/systemd/system/{UNIT}", unit_text)
    for name, text in (dropins or {}).items():
        box.write(f"/etc/systemd/system/{UNIT}.d/{name}", text)
    verify = box.sh(f"systemd-analyze verify /etc/systemd/system/{UNIT} 2>&1", check=False)
    if verify.text.strip():
        raise ContainerError(f"systemd-analyze verify complained:\n{verify.text}")
    box.systemctl("daemon-reload")
    box.systemctl("enable", UNIT)
    # The standalone simulator the "linked" instance talks to: unprivileged, its own unit.
    box.run(
        [
            "systemd-run",
            "--unit=wasup-sim",
            "--property=User=nobody",
            "--",
            "/opt/wasup/.venv/bin/wasup",
            "simulator",
            "--port",
            str(SIM_PORT),
        ]
    )
    wait_until(
        lambda: (
            True
            if box.sh(
                f"curl -fs -o /dev/null http://127.0.0.1:{SIM_PORT}/_sim/state", check=False
            ).returncode
            == 0
            else None
        ),
        30.0,
        "the standalone simulator answering",
    )


def curl(
    box: Container, path: str, *, method: str = "GET", body: Any = None, base: str = URL
) -> tuple[int, bytes]:
    """One HTTP request from inside the container (its only network is its loopback)."""
    args = [
        "curl",
        "-s",
        "-o",
        "/dev/stdout",
        "-w",
        "\n%{http_code}",
        "-X",
        method,
        "-H",
        f"Authorization: Bearer {API_KEY}",
    ]
    if body is not None:
        args += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
    result = box.run([*args, base + path], check=False)
    if result.returncode != 0:
        return 0, result.stderr
    payload, _, code = result.stdout.rpartition(b"\n")
    return int(code), payload


def instance(box: Container, instance_id: str) -> dict[str, Any] | None:
    """``GET /v1/instances/{id}``, or None if the daemon does not answer with it."""
    status, payload = curl(box, f"/v1/instances/{instance_id}")
    return json.loads(payload) if status == 200 else None


def record(box: Container, instance_id: str) -> dict[str, Any]:
    """``GET /v1/instances/{id}``, which must answer."""
    found = instance(box, instance_id)
    assert found is not None, f"the daemon does not answer for instance {instance_id}"
    return found


def wait_state(
    box: Container, instance_id: str, state: str, timeout: float = 90.0
) -> dict[str, Any]:
    """Wait until ``instance_id`` is in ``state``; its record."""

    def check() -> dict[str, Any] | None:
        record = instance(box, instance_id)
        return record if record is not None and record["state"] == state else None

    return wait_until(check, timeout, f"{instance_id} in state {state}", step=0.5)


STATUS_LINE = re.compile(
    r"(?P<connected>\d+) connected, (?P<qr>\d+) qr, (?P<backoff>\d+) backoff, "
    r"(?P<open>\d+) open, (?P<parked>\d+) parked"
)


def status_counts(box: Container) -> dict[str, int] | None:
    """The counts in the unit's ``StatusText``, or None if it is not wasup's summary line."""
    match = STATUS_LINE.match(box.show(UNIT, "StatusText")["StatusText"])
    return {k: int(v) for k, v in match.groupdict().items()} if match else None


def unit_processes(box: Container) -> list[dict[str, str]]:
    """Every process in wasup.service's cgroup: pid, uid, command line, user namespace,
    seccomp filter count."""
    cgroup = box.show(UNIT, "ControlGroup")["ControlGroup"]
    if not cgroup:
        return []
    script = f"""
for pid in $(cat /sys/fs/cgroup{cgroup}/cgroup.procs 2>/dev/null); do
  [ -r /proc/$pid/cmdline ] || continue
  printf '%s\\t%s\\t%s\\t%s\\t%s\\n' "$pid" \
    "$(awk '/^Uid:/ {{print $2}}' /proc/$pid/status)" \
    "$(readlink /proc/$pid/ns/user)" \
    "$(awk '/^Seccomp_filters:/ {{print $2}}' /proc/$pid/status)" \
    "$(tr '\\0' ' ' < /proc/$pid/cmdline)"
done
"""
    rows = []
    for line in box.sh(script).text.splitlines():
        pid, uid, userns, filters, cmdline = line.split("\t", 4)
        rows.append(
            {"pid": pid, "uid": uid, "userns": userns, "filters": filters, "cmdline": cmdline}
        )
    return rows
