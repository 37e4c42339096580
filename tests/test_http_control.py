"""Control routes, API keys, and what the server does with bad input."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from actors.errors import Busy, ConfigError, WasupError
from actors.lifecycle import State
from supervisor.http._auth import load_keys
from supervisor.settings import HttpConfig, InstanceConfig, InstanceDefaults, StartPolicy
from supervisor.verbs import ROUTED
from tests.http_harness import KEY, Harness, running


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    async with running() as harness:
        harness.board.add("a")
        yield harness


@pytest.mark.parametrize("action", ROUTED)
async def test_each_action_calls_control_and_answers_202(h: Harness, action: str) -> None:
    async with h.request("POST", f"/v1/instances/a/{action}") as response:
        assert response.status == 202
        assert await response.json() == {"instance_id": "a", "action": action, "accepted": True}
    assert h.control.called() == [(action, ("a",))]


async def test_start_moves_the_board_through_control(h: Harness) -> None:
    async with h.request("POST", "/v1/instances/a/start") as response:
        assert response.status == 202
    assert h.board.require("a").state is State.STARTING


async def test_unknown_instance_is_404(h: Harness) -> None:
    async with h.request("POST", "/v1/instances/ghost/restart") as response:
        assert response.status == 404
        assert (await response.json())["instance_id"] == "ghost"


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({}, ""),
        ({"Authorization": "Bearer not-the-key"}, ""),
        ({"X-API-Key": "not-the-key"}, ""),
        ({"Authorization": f"Basic {KEY}"}, ""),
        ({}, f"?key={KEY}"),  # the query key is for GET only
    ],
)
async def test_control_without_a_good_key_is_401_and_control_is_not_called(
    h: Harness, headers: dict[str, str], query: str
) -> None:
    async with h.request("POST", f"/v1/instances/a/stop{query}", key=False, headers=headers) as r:
        assert r.status == 401
        assert r.headers["WWW-Authenticate"] == 'Bearer realm="wasup"'
        assert KEY not in await r.text()
    assert h.control.called() == []


async def test_x_api_key_header_is_accepted(h: Harness) -> None:
    async with h.request(
        "POST", "/v1/instances/a/stop", key=False, headers={"X-API-Key": KEY}
    ) as r:
        assert r.status == 202


async def test_with_no_key_configured_control_is_refused_with_403() -> None:
    async with running(keys=None) as h:
        h.board.add("a")
        async with h.request("POST", "/v1/instances/a/start") as response:
            assert response.status == 403
            assert "api_key_file" in (await response.json())["error"]
        async with h.request("GET", "/v1/instances/a", key=False) as response:
            assert response.status == 403  # qr_requires_key defaults to True
        assert h.control.called() == []


def test_keys_come_from_the_file_and_the_environment(tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text("# operators\nfile-key-1\n\n  file-key-2  \n")
    ring = load_keys(HttpConfig(api_key_file=key_file, api_key_env="K"), {"K": "env-1, env-2,,"})
    for key in ("file-key-1", "file-key-2", "env-1", "env-2"):
        assert ring.accepts(key)
    for key in ("", "# operators", "file-key", "env-1, env-2"):
        assert not ring.accepts(key)


def test_a_bad_key_file_is_a_config_error_naming_the_file_and_line(tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text("good\nsecret with-space\n")
    with pytest.raises(ConfigError, match=r"keys' line 2") as info:
        load_keys(HttpConfig(api_key_file=key_file), {})
    assert "secret" not in str(info.value)
    with pytest.raises(ConfigError, match="missing"):
        load_keys(HttpConfig(api_key_file=tmp_path / "missing"), {})


async def test_put_adds_an_instance_with_its_options(h: Harness) -> None:
    body = {"start": "always", "url": "http://127.0.0.1:9/", "qr_idle_timeout": "5m"}
    async with h.request("PUT", "/v1/instances/new-1", json=body) as response:
        assert response.status == 201
        assert response.headers["Location"] == "/v1/instances/new-1"
        assert await response.json() == {
            "id": "new-1",
            "start": "always",
            "url": "http://127.0.0.1:9/",
            "qr_idle_timeout": 300.0,
            "progress_timeout": 90.0,
            "sync_timeout": 600.0,
            "action_timeout": 20.0,
            "max_memory": None,
            "max_memory_for": 300.0,
            "proxy": None,
            "priority": 0,
        }
    expected = InstanceConfig(
        id="new-1", start=StartPolicy.ALWAYS, url="http://127.0.0.1:9/", qr_idle_timeout=300.0
    )
    assert h.control.called("add") == [("add", (expected,))]
    assert h.board.get("new-1") is not None


async def test_put_with_defaults_and_put_of_an_existing_id(h: Harness) -> None:
    async with h.request("PUT", "/v1/instances/b") as response:
        assert response.status == 201
    assert h.control.called("add") == [("add", (InstanceConfig(id="b"),))]
    async with h.request("PUT", "/v1/instances/b", json={}) as response:
        assert response.status == 409
        assert "exists" in (await response.json())["error"]


async def test_put_takes_the_config_files_defaults_and_simulator_rule() -> None:
    defaults = InstanceDefaults(start=StartPolicy.ALWAYS, url="{simulator}/", qr_idle_timeout=60)
    async with running(instance_defaults=defaults, simulator=True) as h:
        async with h.request("PUT", "/v1/instances/c", json={"qr_idle_timeout": 30}) as response:
            assert response.status == 201
        added = InstanceConfig(
            id="c", start=StartPolicy.ALWAYS, url="{simulator}/", qr_idle_timeout=30.0
        )
        assert h.control.called("add") == [("add", (added,))]


async def test_put_refuses_the_simulator_when_it_is_not_running(h: Harness) -> None:
    async with h.request("PUT", "/v1/instances/c", json={"url": "{simulator}/"}) as response:
        assert response.status == 400
        error = (await response.json())["error"]
    assert error.startswith("PUT /v1/instances/c: url:")
    assert "simulator.enabled is false" in error
    assert h.control.called() == []


@pytest.mark.parametrize(
    "body",
    [
        {"start": "sometimes"},
        {"url": "file:///etc/passwd"},
        {"url": "web.whatsapp.com"},
        {"qr_idle_timeout": 0},
        {"qr_idle_timeout": "soon"},
        {"qr_idle_timeout": True},
        {"headless": False},
        {"id": "someone-else"},
        ["start"],
    ],
)
async def test_put_rejects_bad_options(h: Harness, body: object) -> None:
    async with h.request("PUT", "/v1/instances/b", json=body) as response:
        assert response.status == 400
        assert "error" in await response.json()
    assert h.control.called() == []


async def test_delete_removes_and_unknown_is_404(h: Harness) -> None:
    async with h.request("DELETE", "/v1/instances/a") as response:
        assert response.status == 202
    assert h.board.get("a") is None
    async with h.request("DELETE", "/v1/instances/a") as response:
        assert response.status == 404


async def test_pairing_code_is_returned_with_a_dash(h: Harness) -> None:
    async with h.request(
        "POST", "/v1/instances/a/pairing-code", json={"phone": "+4915112345678"}
    ) as response:
        assert response.status == 200
        assert await response.json() == {"instance_id": "a", "code": "ABCD-2345"}
    assert h.control.called() == [("pairing_code", ("a", "4915112345678"))]


@pytest.mark.parametrize(
    "body",
    [
        {"phone": "123456"},
        {"phone": "+1234567890123456"},
        {"phone": "+49 151 1234567"},
        {"phone": "++4915112345678"},
        {"phone": "+49151123456a"},
        {"phone": "\u0664\u0669\u0661\u0665\u0661\u0661\u0662\u0663\u0664"},  # Arabic digits
        {"phone": 4915112345678},
        {},
    ],
)
async def test_pairing_code_rejects_bad_phones(h: Harness, body: dict[str, object]) -> None:
    async with h.request("POST", "/v1/instances/a/pairing-code", json=body) as response:
        assert response.status == 400
        assert "phone" in (await response.json())["error"]
    assert h.control.called() == []


async def test_pairing_code_needs_a_body(h: Harness) -> None:
    async with h.request("POST", "/v1/instances/a/pairing-code") as response:
        assert response.status == 400


async def test_an_oversized_body_is_413(h: Harness) -> None:
    big = {"phone": "1" * 5000}
    async with h.request("POST", "/v1/instances/a/pairing-code", json=big) as response:
        assert response.status == 413
        assert "4096" in (await response.json())["error"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: caught while reading
        for _ in range(10):
            yield b" " * 1000

    async with h.request("POST", "/v1/instances/a/restart", data=chunks()) as response:
        assert response.status == 413
    assert h.control.called() == []


@pytest.mark.parametrize(
    "raw_id",
    ["..%2Fx", "%2E%2E", "a.b", "a%20b", "%C3%A9", "\u0661", "x" * 65, "a%00"],
)
async def test_invalid_ids_are_400_and_control_is_not_called(h: Harness, raw_id: str) -> None:
    for method, suffix in (("POST", "/start"), ("PUT", ""), ("DELETE", ""), ("GET", "/qr")):
        async with h.request(method, f"/v1/instances/{raw_id}{suffix}") as response:
            assert response.status in (400, 404), (method, raw_id)
            assert "error" in await response.json()
    assert h.control.called() == []


async def test_an_empty_id_is_no_route(h: Harness) -> None:
    async with h.request("POST", "/v1/instances//start") as response:
        assert response.status == 404
    assert h.control.called() == []


async def test_64_characters_is_still_a_valid_id(h: Harness) -> None:
    long_id = "a" * 64
    async with h.request("PUT", f"/v1/instances/{long_id}") as response:
        assert response.status == 201


@pytest.mark.parametrize("raw", [b"{", b"[1,", b'{"phone": "1234567"', b"\xff\xfe"])
async def test_malformed_json_is_400_with_a_reason(h: Harness, raw: bytes) -> None:
    async with h.request("POST", "/v1/instances/a/pairing-code", data=raw) as response:
        assert response.status == 400
        assert "malformed JSON" in (await response.json())["error"]
    assert h.control.called() == []


async def test_wrong_method_is_405_and_unknown_route_is_404(h: Harness) -> None:
    async with h.request("GET", "/v1/instances/a/start") as response:
        assert response.status == 405
        assert response.headers["Allow"] == "POST"
        assert "error" in await response.json()
    async with h.request("PATCH", "/v1/instances/a") as response:
        assert response.status == 405
    async with h.request("GET", "/v2/anything", key=False) as response:
        assert response.status == 404
        assert response.content_type == "application/json"


async def test_a_crashing_control_is_a_500_without_details_and_is_logged(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    h.control.fail_with = RuntimeError("secret internals")
    with caplog.at_level(logging.ERROR, logger="wasup.http"):
        async with h.request("POST", "/v1/instances/a/restart") as response:
            assert response.status == 500
            text = await response.text()
    assert "secret internals" not in text
    assert "Traceback" not in text
    assert "internal server error" in text
    logged = [r for r in caplog.records if r.name == "wasup.http"]
    assert logged
    assert "/v1/instances/a/restart" in logged[0].getMessage()
    assert logged[0].exc_info is not None


async def test_the_access_log_never_shows_a_key(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="wasup.http.access"):
        async with h.request("GET", f"/v1/instances/a?key={KEY}&x=1", key=False) as response:
            assert response.status == 200
        async with h.request("POST", "/v1/instances/a/stop") as response:
            assert response.status == 202
    lines = [r.getMessage() for r in caplog.records if r.name == "wasup.http.access"]
    assert len(lines) == 2
    assert "key=***" in lines[0]
    assert all(KEY not in line for line in lines)
    assert all(KEY not in r.getMessage() for r in caplog.records)


async def test_a_supervisor_that_does_not_answer_in_time_is_a_503_with_retry_after(
    h: Harness,
) -> None:
    h.control.fail_with = Busy("restart a: no answer within 60 s; try again", retry_after=4.2)
    async with h.request("POST", "/v1/instances/a/restart") as response:
        assert response.status == 503
        assert response.headers["Retry-After"] == "5"
        assert "no answer within 60 s" in (await response.json())["error"]
    # A refusal on purpose stays a 409.
    h.control.fail_with = WasupError("refused")
    async with h.request("POST", "/v1/instances/a/restart") as response:
        assert response.status == 409
