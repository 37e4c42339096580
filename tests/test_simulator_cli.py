"""``wasup simulator`` as a user runs it: prints its URL, serves, stops cleanly on a signal."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from simulator import PhoneClient


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_serves_until_a_signal_then_exits_0(signum: signal.Signals) -> None:
    command = [sys.executable, "-m", "supervisor.cli", "simulator", "--port", "0", "--fast"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert url.endswith("/")
        assert PhoneClient(url).settings().ref_ttl == 0.5  # --fast
        process.send_signal(signum)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_a_busy_port_exits_1_with_a_message() -> None:
    first = [sys.executable, "-m", "supervisor.cli", "simulator", "--port", "0"]
    server = subprocess.Popen(first, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert server.stdout is not None
        port = server.stdout.readline().strip().rsplit(":", 1)[1].rstrip("/")
        second = [sys.executable, "-m", "supervisor.cli", "simulator", "--port", port]
        result = subprocess.run(second, capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode == 1
        assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)
        assert server.stdout is not None
        server.stdout.close()
