"""The YAML loader: what it accepts, what it refuses, and that refusals name file, line and key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.errors import ConfigError
from supervisor.config import (
    check_config_main,
    is_safe_id,
    load_config,
    parse_config,
    parse_instance,
)
from supervisor.durations import format_duration, parse_duration, parse_size
from supervisor.settings import (
    BackoffConfig,
    BreakerConfig,
    BrowserConfig,
    BudgetConfig,
    DaemonConfig,
    HttpConfig,
    InstanceConfig,
    InstanceDefaults,
    Jitter,
    SimulatorConfig,
    StartPolicy,
    SupervisionConfig,
)

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str, name: str = "wasup.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


FULL = """\
state_dir: /srv/wasup
http:
  listen: "0.0.0.0:9090"
  api_key_file: keys.txt
  api_key_env: MY_KEYS
  qr_requires_key: false
  metrics_requires_key: true
  max_body: 1MiB
browser:
  executable: /opt/chromium/chrome
  headless: false
  extra_args: ["--lang=de-DE", "--window-size=800,600"]
  launch_timeout: 45s
  close_timeout: 5s
  max_concurrent_launches: 3
supervision:
  backoff: {base: 1s, cap: 2m, jitter: decorrelated, reset_after: 20m}
  breaker:
    crash_threshold: 4
    crash_window: 10m
    conflict_threshold: 2
    conflict_window: 30m
    conflict_cooldown: 90s
    conflict_jitter: 0.1
    open_base: 5m
    open_cap: 1h
    open_jitter: 0
    probe_stable: 2m
    max_opens: 3
  budget: {max_restarts: 10, window: 30s}
  stop_timeout: 15s
simulator: {enabled: true, listen: "[::1]:7000", fast: true}
selectors_file: sel/selectors.yaml
defaults: {start: always, url: "{simulator}/", qr_idle_timeout: 5m}
instances:
  - id: sales
  - id: Support_2
    start: on_demand
    url: "https://web.whatsapp.com/?lang=en"
    qr_idle_timeout: 1500ms
"""


def test_a_full_file_round_trips_into_the_records(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    expected = DaemonConfig(
        source=path,
        state_dir=Path("/srv/wasup"),
        http=HttpConfig(
            host="0.0.0.0",
            port=9090,
            api_key_file=tmp_path / "keys.txt",
            api_key_env="MY_KEYS",
            qr_requires_key=False,
            metrics_requires_key=True,
            max_body_bytes=1024 * 1024,
        ),
        browser=BrowserConfig(
            executable="/opt/chromium/chrome",
            headless=False,
            extra_args=("--lang=de-DE", "--window-size=800,600"),
            launch_timeout=45.0,
            close_timeout=5.0,
            max_concurrent_launches=3,
        ),
        supervision=SupervisionConfig(
            backoff=BackoffConfig(
                base=1.0, cap=120.0, jitter=Jitter.DECORRELATED, reset_after=1200.0
            ),
            breaker=BreakerConfig(
                crash_threshold=4,
                crash_window=600.0,
                conflict_threshold=2,
                conflict_window=1800.0,
                conflict_cooldown=90.0,
                conflict_jitter=0.1,
                open_base=300.0,
                open_cap=3600.0,
                open_jitter=0.0,
                probe_stable=120.0,
                max_opens=3,
            ),
            budget=BudgetConfig(max_restarts=10, window=30.0),
            stop_timeout=15.0,
        ),
        simulator=SimulatorConfig(enabled=True, host="::1", port=7000, fast=True),
        selectors_file=tmp_path / "sel" / "selectors.yaml",
        defaults=InstanceDefaults(
            start=StartPolicy.ALWAYS, url="{simulator}/", qr_idle_timeout=300.0
        ),
        instances=(
            InstanceConfig(
                id="sales", start=StartPolicy.ALWAYS, url="{simulator}/", qr_idle_timeout=300.0
            ),
            InstanceConfig(
                id="Support_2",
                start=StartPolicy.ON_DEMAND,
                url="https://web.whatsapp.com/?lang=en",
                qr_idle_timeout=1.5,
            ),
        ),
    )
    assert load_config(path) == expected


def test_a_minimal_file_gets_every_default(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "state_dir: state\n"))
    assert config == DaemonConfig(source=tmp_path / "wasup.yaml", state_dir=tmp_path / "state")


def test_empty_sections_mean_defaults(tmp_path: Path) -> None:
    text = "state_dir: s\nhttp:\nbrowser: {}\nsupervision: {backoff: }\ninstances:\n"
    config = load_config(write(tmp_path, text))
    assert config.http == HttpConfig()
    assert config.supervision == SupervisionConfig()
    assert config.instances == ()


def test_the_shipped_example_loads_with_the_documented_defaults() -> None:
    config = load_config(ROOT / "conf" / "wasup.yaml")
    assert config.state_dir == Path("/var/lib/wasup")
    # The example spells out every default: it must agree with the records.
    assert config.http == HttpConfig()
    assert config.browser == BrowserConfig()
    assert config.supervision == SupervisionConfig()
    assert config.simulator == SimulatorConfig()
    assert config.defaults == InstanceDefaults()
    assert [i.id for i in config.instances] == ["sales", "support", "billing"]


def test_the_demo_runs_on_the_simulator_without_a_key() -> None:
    config = load_config(ROOT / "conf" / "demo.yaml")
    assert config.state_dir == ROOT / "state" / "demo"
    assert config.simulator.enabled
    assert not config.simulator.fast
    assert (config.http.host, config.http.port) == ("127.0.0.1", 8080)
    assert not config.http.qr_requires_key
    assert 3 <= len(config.instances) <= 4
    for instance in config.instances:
        assert instance.start is StartPolicy.ALWAYS
        assert instance.url.startswith("{simulator}")


def test_relative_paths_resolve_against_the_files_folder(tmp_path: Path) -> None:
    conf = tmp_path / "etc" / "wasup"
    conf.mkdir(parents=True)
    text = "state_dir: ../../var/state\nselectors_file: sel.yaml\nhttp: {api_key_file: ./k/keys}\n"
    config = load_config(write(conf, text))
    assert config.state_dir == tmp_path / "var" / "state"
    assert config.selectors_file == conf / "sel.yaml"
    assert config.http.api_key_file == conf / "k" / "keys"


def test_a_relative_config_path_still_gives_absolute_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "state_dir: state\n")
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("wasup.yaml"))
    assert config.source == tmp_path / "wasup.yaml"
    assert config.state_dir == tmp_path / "state"


def test_instances_take_the_defaults_and_override_them(tmp_path: Path) -> None:
    text = """\
        state_dir: s
        defaults: {start: always, qr_idle_timeout: 2m}
        instances:
          - id: a
          - {id: b, start: on_demand, url: "https://example.test/wa"}
    """
    a, b = load_config(write(tmp_path, text)).instances
    assert a == InstanceConfig(id="a", start=StartPolicy.ALWAYS, qr_idle_timeout=120.0)
    assert b == InstanceConfig(
        id="b", start=StartPolicy.ON_DEMAND, url="https://example.test/wa", qr_idle_timeout=120.0
    )


@pytest.mark.parametrize(
    ("listen", "host", "port"),
    [
        ("127.0.0.1:8080", "127.0.0.1", 8080),
        ("0.0.0.0:0", "0.0.0.0", 0),
        ("localhost:65535", "localhost", 65535),
        ("[::1]:8080", "::1", 8080),
        ("[::]:80", "::", 80),
    ],
)
def test_listen_addresses(tmp_path: Path, listen: str, host: str, port: int) -> None:
    config = load_config(write(tmp_path, f'state_dir: s\nhttp: {{listen: "{listen}"}}\n'))
    assert (config.http.host, config.http.port) == (host, port)


# (yaml, key path, words the message must hold)
REFUSED = [
    ("state_dir: s\nstatedir: t\n", "statedir", "unknown key"),
    ("state_dir: s\nsupervision: {breaker: {opne_cap: 1h}}\n", "supervision.breaker.opne_cap",
     "did you mean 'open_cap'"),
    ("state_dir: s\nhttp: {qr_requires_key: 'yes please'}\n", "http.qr_requires_key",
     "expected true or false"),
    ("state_dir: s\nbrowser: {max_concurrent_launches: two}\n",
     "browser.max_concurrent_launches", "whole number"),
    ("state_dir: s\nbrowser: {max_concurrent_launches: 0}\n",
     "browser.max_concurrent_launches", "at least 1"),
    ("state_dir: s\nsupervision: {breaker: {crash_threshold: true}}\n",
     "supervision.breaker.crash_threshold", "whole number"),
    ("state_dir: s\nsupervision: {breaker: {crash_threshold: -1}}\n",
     "supervision.breaker.crash_threshold", "at least 1"),
    ("state_dir: s\nbrowser: {extra_args: --lang=de}\n", "browser.extra_args", "list of strings"),
    ("state_dir: s\nbrowser: {extra_args: [ok, 3]}\n", "browser.extra_args[1]", "string"),
    ("state_dir: s\nbrowser: {launch_timeout: 10 min}\n", "browser.launch_timeout",
     "500ms, 90s, 5m, 6h, 1d"),
    ("state_dir: s\nbrowser: {launch_timeout: 1h30m}\n", "browser.launch_timeout", "90s"),
    ("state_dir: s\nbrowser: {launch_timeout: 5 m}\n", "browser.launch_timeout", "not a duration"),
    ("state_dir: s\nbrowser: {launch_timeout: soon}\n", "browser.launch_timeout", "not a duration"),
    ("state_dir: s\nbrowser: {launch_timeout: -5}\n", "browser.launch_timeout", "negative"),
    ("state_dir: s\nbrowser: {close_timeout: -5s}\n", "browser.close_timeout", "negative"),
    ("state_dir: s\nbrowser: {launch_timeout: 0}\n", "browser.launch_timeout", "more than 0"),
    ("state_dir: s\nsupervision: {stop_timeout: [1]}\n", "supervision.stop_timeout",
     "not a duration"),
    ("state_dir: s\nsupervision: {backoff: {jitter: none}}\n", "supervision.backoff.jitter",
     "full, decorrelated"),
    ("state_dir: s\nsupervision: {backoff: {base: 10m}}\n", "supervision.backoff.base",
     "cap (5m) is below base (10m)"),
    ("state_dir: s\nsupervision: {breaker: {open_cap: 1m}}\n", "supervision.breaker.open_cap",
     "open_cap (1m) is below open_base (15m)"),
    ("state_dir: s\nsupervision: {breaker: {conflict_jitter: 1}}\n",
     "supervision.breaker.conflict_jitter", "below 1"),
    ("state_dir: s\nsupervision: {breaker: {open_jitter: -0.1}}\n",
     "supervision.breaker.open_jitter", "at least 0"),
    ("state_dir: s\nsupervision: {budget: {max_restarts: 0}}\n",
     "supervision.budget.max_restarts", "at least 1"),
    ("state_dir: s\nsupervision: 5\n", "supervision", "expected a mapping"),
    ("state_dir: s\nhttp: {listen: localhost}\n", "http.listen", "HOST:PORT"),
    ("state_dir: s\nhttp: {listen: '::1:8080'}\n", "http.listen", "brackets"),
    ("state_dir: s\nhttp: {listen: '[::1]'}\n", "http.listen", "port"),
    ("state_dir: s\nhttp: {listen: '[zz]:80'}\n", "http.listen", "not an IPv6 address"),
    ("state_dir: s\nhttp: {listen: '1.2.3.4:99999'}\n", "http.listen", "0 to 65535"),
    ("state_dir: s\nhttp: {listen: ':8080'}\n", "http.listen", "not a host name"),
    ("state_dir: s\nhttp: {listen: 8080}\n", "http.listen", "not an address"),
    ("state_dir: s\nsimulator: {listen: 'a b:1'}\n", "simulator.listen", "not a host name"),
    ("state_dir: s\nhttp: {api_key_env: 1BAD}\n", "http.api_key_env", "environment variable"),
    ("state_dir: s\nhttp: {max_body: 64 KiB}\n", "http.max_body", "64KiB"),
    ("state_dir: s\nhttp: {max_body: 0}\n", "http.max_body", "more than 0"),
    ("state_dir: s\nhttp: {api_key_file: ''}\n", "http.api_key_file", "non-empty"),
    ("state_dir: 5\n", "state_dir", "non-empty string"),
    ("http: {}\n", "(top level)", "missing key state_dir"),
    ("state_dir: s\ninstances: {id: a}\n", "instances", "list of instances"),
    ("state_dir: s\ninstances: [a]\n", "instances[0]", "expected a mapping"),
    ("state_dir: s\ninstances: [{start: always}]\n", "instances[0]", "missing key id"),
    ("state_dir: s\ninstances: [{id: a}, {id: b}, {id: a}]\n", "instances[2].id",
     "duplicate id 'a' (already used by instances[0])"),
    ("state_dir: s\ninstances: [{id: a}, {id: 'a b'}]\n", "instances[1].id", "not a safe id"),
    ("state_dir: s\ninstances: [{id: ../etc}]\n", "instances[0].id", "not a safe id"),
    ("state_dir: s\ninstances: [{id: " + "x" * 65 + "}]\n", "instances[0].id", "not a safe id"),
    ("state_dir: s\ninstances: [{id: 'café'}]\n", "instances[0].id", "not a safe id"),
    ("state_dir: s\ninstances: [{id: 7}]\n", "instances[0].id", "non-empty string"),
    ("state_dir: s\ninstances: [{id: a, start: sometimes}]\n", "instances[0].start",
     "always, on_demand"),
    ("state_dir: s\ninstances: [{id: a, colour: red}]\n", "instances[0].colour", "unknown key"),
    ("state_dir: s\ninstances: [{id: a, url: '{simulator}/'}]\n", "instances[0].url",
     "simulator.enabled is false"),
    ("state_dir: s\ndefaults: {url: '{simulator}/'}\n", "defaults.url",
     "simulator.enabled is false"),
    ("state_dir: s\nsimulator: {enabled: true}\ninstances: [{id: a, url: '{sim}/'}]\n",
     "instances[0].url", "unknown placeholder {sim}"),
    ("state_dir: s\ninstances: [{id: a, url: 'ftp://host/'}]\n", "instances[0].url",
     "not an http(s) URL"),
    ("state_dir: s\ndefaults: {qr_idle_timeout: 0s}\n", "defaults.qr_idle_timeout", "more than 0"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "key", "words"), REFUSED)
def test_refusals_name_the_file_the_key_and_the_problem(
    tmp_path: Path, text: str, key: str, words: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:"), message
    assert f": {key}: " in message, message
    assert words in message, message


def test_the_line_of_the_fault_is_named(tmp_path: Path) -> None:
    text = """\
        state_dir: s
        instances:
          - id: a
          - id: b
            start: always
          - id: c
            qr_idle_timeout: 10 minutes
    """
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=rf"^{path}:7: instances\[2\]\.qr_idle_timeout: "):
        load_config(path)


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "state_dir: s\nhttp:\n  listen: [127.0.0.1\n  qr_requires_key: true\n")
    with pytest.raises(ConfigError, match=rf"^{path}:\d+: invalid YAML: ") as caught:
        load_config(path)
    line = int(str(caught.value).split(":")[1])
    assert 3 <= line <= 5


def test_a_duplicate_key_is_refused_not_overwritten(tmp_path: Path) -> None:
    path = write(tmp_path, "state_dir: s\nhttp: {}\nstate_dir: t\n")
    with pytest.raises(ConfigError, match=rf"^{path}:3: invalid YAML: duplicate key 'state_dir'"):
        load_config(path)


@pytest.mark.parametrize(("text", "words"), [("", "empty"), ("- a\n", "expected a mapping")])
def test_a_file_that_is_not_a_mapping(tmp_path: Path, text: str, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=words) as caught:
        load_config(path)
    assert str(caught.value).startswith(str(path))


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=rf"^{path}: cannot read"):
        load_config(path)


def test_parse_config_names_the_source_it_is_given(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=rf"^{tmp_path}/x.yaml:1: browser: "):
        parse_config("browser: 3\n", tmp_path / "x.yaml")


def test_check_config_main_reports_ok_and_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write(tmp_path, "state_dir: s\ninstances: [{id: a}, {id: b}]\n", "good.yaml")
    assert check_config_main(good) == 0
    out, err = capsys.readouterr()
    assert (out, err) == (f"{good}: ok, 2 instances\n", "")

    bad = write(tmp_path, "state_dir: s\ninstances: [{id: a}, {id: a}]\n", "bad.yaml")
    assert check_config_main(bad) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"{bad}:2: instances[1].id: duplicate id")


def test_check_config_main_reads_the_selectors_file_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    selectors = tmp_path / "selectors.yaml"
    selectors.write_text("texts: {use_here: [Hier verwenden]}\n")
    config = write(tmp_path, "state_dir: s\nselectors_file: selectors.yaml\n", "c.yaml")
    assert check_config_main(config) == 0
    assert capsys.readouterr().out == f"{config}: ok, 0 instances\n"

    selectors.write_text("texts: {use_here: 3}\n")
    assert check_config_main(config) == 2
    assert capsys.readouterr().err.startswith(f"{selectors}: texts.use_here")
    selectors.unlink()
    assert check_config_main(config) == 2
    assert capsys.readouterr().err.startswith(f"{selectors}: cannot read selectors file")


def test_parse_instance_checks_a_put_body_like_the_file() -> None:
    defaults = InstanceDefaults(start=StartPolicy.ALWAYS)
    made = parse_instance({"id": "new_1", "qr_idle_timeout": "2m"}, source="PUT", defaults=defaults)
    assert made == InstanceConfig(id="new_1", start=StartPolicy.ALWAYS, qr_idle_timeout=120.0)
    with pytest.raises(ConfigError, match=r"^PUT /v1/instances/x: url: .*simulator.enabled"):
        parse_instance({"id": "x", "url": "{simulator}/"}, source="PUT /v1/instances/x")
    assert parse_instance({"id": "x", "url": "{simulator}/"}, source="PUT", simulator=True).url == (
        "{simulator}/"
    )
    with pytest.raises(ConfigError, match=r"^PUT: id: 'a/b' is not a safe id"):
        parse_instance({"id": "a/b"}, source="PUT")
    with pytest.raises(ConfigError, match=r"^PUT: \(top level\): expected a mapping"):
        parse_instance(["x"], source="PUT")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (30, 30.0),
        (1.5, 1.5),
        ("45", 45.0),
        ("500ms", 0.5),
        ("90s", 90.0),
        ("5m", 300.0),
        ("1.5m", 90.0),
        ("6h", 21600.0),
        ("1d", 86400.0),
        (" 2s ", 2.0),
        (0, 0.0),
    ],
)
def test_duration_forms(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["10 min", "10min", "1h30m", "5 m", "m", "", "1e3", "-1s", True])
def test_durations_refused(text: object) -> None:
    with pytest.raises(ValueError, match=repr(text).replace("(", r"\(")):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [(512, 512), ("512B", 512), ("64KiB", 65536), ("64KB", 64000), ("1MiB", 1 << 20)],
)
def test_size_forms(text: object, size: int) -> None:
    assert parse_size(text) == size


@given(st.integers(min_value=0, max_value=10**7))
def test_format_duration_reads_back(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@given(st.text(max_size=70))
def test_safe_ids_are_exactly_the_documented_alphabet(text: str) -> None:
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
    assert is_safe_id(text) == (1 <= len(text) <= 64 and set(text) <= alphabet)


def test_browser_sandbox_setting(tmp_path: Path) -> None:
    from supervisor.settings import Sandbox

    cfg = parse_config("state_dir: s\nbrowser: {sandbox: off}\n", tmp_path / "w.yaml")
    assert cfg.browser.sandbox is Sandbox.OFF
    assert parse_config("state_dir: s\n", tmp_path / "w.yaml").browser.sandbox is Sandbox.AUTO
    with pytest.raises(ConfigError, match=r"browser\.sandbox"):
        parse_config("state_dir: s\nbrowser: {sandbox: maybe}\n", tmp_path / "w.yaml")
    quoted = parse_config("state_dir: s\nbrowser: {sandbox: 'on'}\n", tmp_path / "w.yaml")
    assert quoted.browser.sandbox is Sandbox.ON
