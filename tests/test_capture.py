"""Unknown-screen captures: redaction of what must never reach the disk, and ``wasup ctl
screens`` over real files."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from actors._capture import list_captures, redact, safe_name
from supervisor import ctl

REF = "2@Xk8bQ1c9f0aVnW+u/abc==,K1abcdefgh=,K2abcdefgh=,K3abcdefgh=,WEB"
PAGE = (
    f'<div data-ref="{REF}"><canvas></canvas></div>'
    '<div data-link-code="A,B,C,D,E,F,G,H"><span>A</span></div>'
    "<p>Code ABCD-EFGH, cells A,B,C,D,E,F,G,H</p>"
    '<input value="+49 151 12345678"><p>Linking WhatsApp account +44 7700 900123</p>'
    f"<script>var r = '{REF}';</script>"
    "<p>wa.me/settings/linked_devices#" + REF + "</p>"
)
SECRETS = ["Xk8bQ1c9", "ABCD-EFGH", "A,B,C,D,E,F,G,H", "12345678", "7700 900123", "K1abcdefgh"]


def test_the_raw_page_holds_every_secret() -> None:
    # Negative control: the checks below would see a leak.
    assert all(secret in PAGE for secret in SECRETS)


def test_redaction_leaves_no_ref_code_or_phone_number() -> None:
    clean = redact(PAGE)
    for secret in SECRETS:
        assert secret not in clean, secret
    assert "<canvas></canvas>" in clean  # the structure stays readable
    assert "Linking WhatsApp account" in clean


def test_ordinary_numbers_stay() -> None:
    assert redact("<p>Downloading messages: 45%</p><b>12:05</b>") == (
        "<p>Downloading messages: 45%</p><b>12:05</b>"
    )


def test_fingerprints_cannot_name_paths() -> None:
    assert safe_name("0badc0de") == "0badc0de"
    assert safe_name("../../etc/passwd") == "unnamed"


def run_screens(tmp_path: Path, instance_id: str) -> int:
    parser = argparse.ArgumentParser()
    ctl.add_arguments(parser)
    args = parser.parse_args(["screens", instance_id, "--state-dir", str(tmp_path)])
    return ctl.run(args, environ={})


def test_ctl_screens_lists_captures_oldest_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_screens(tmp_path, "sales") == 0
    assert "no unknown screens captured" in capsys.readouterr().out
    folder = tmp_path / "screens" / "sales"
    folder.mkdir(parents=True)
    for i, stem in enumerate(["bbbb", "aaaa"]):
        (folder / f"{stem}.png").write_bytes(b"png")
        (folder / f"{stem}.html").write_text("<p/>")
        os.utime(folder / f"{stem}.png", (1_700_000_000 + i, 1_700_000_000 + i))
    assert [p.stem for p, _ in list_captures(folder)] == ["bbbb", "aaaa"]
    assert run_screens(tmp_path, "sales") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and "bbbb.png" in lines[0] and "bbbb.html" in lines[0]


def test_ctl_screens_refuses_a_bad_id(tmp_path: Path) -> None:
    assert run_screens(tmp_path, "../x") == 1
