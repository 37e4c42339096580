"""The ``cluster:`` key of the config file: the issue's contract, defaults, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.errors import ConfigError
from supervisor.config import parse_config

SOURCE = Path("/etc/wasup/wasup.yaml")

CONTRACT = """
state_dir: /var/lib/wasup
cluster:
  etcd: ["http://10.0.0.5:2379", "http://10.0.0.6:2379", "http://10.0.0.7:2379"]
  name: prod
  node_id: host-a
  advertise_url: "http://host-a:8080"
  capacity: 50
  lease_ttl: 15s
  fence_margin: 5s
  profile_dir: /mnt/wasup/profiles
"""


def test_the_contract_of_the_issue_parses() -> None:
    config = parse_config(CONTRACT, SOURCE)
    cluster = config.cluster
    assert cluster is not None
    assert cluster.etcd == ("http://10.0.0.5:2379", "http://10.0.0.6:2379", "http://10.0.0.7:2379")
    assert (cluster.name, cluster.node_id, cluster.capacity) == ("prod", "host-a", 50)
    assert (cluster.lease_ttl, cluster.fence_margin) == (15.0, 5.0)
    assert cluster.prefix == "/wasup/prod/"
    assert config.profiles == Path("/mnt/wasup/profiles")
    assert not cluster.test_only_disable_fencing


def test_without_the_key_the_daemon_is_standalone() -> None:
    for text in ("state_dir: /var/lib/wasup\n", "state_dir: /var/lib/wasup\ncluster: null\n"):
        config = parse_config(text, SOURCE)
        assert config.cluster is None
        assert config.profiles == Path("/var/lib/wasup/profiles")


def test_tls_and_authentication_keys() -> None:
    text = """
state_dir: /s
cluster:
  etcd: [https://e1:2379, https://e2:2379]
  advertise_url: http://a:8080
  profile_dir: /p
  ca_file: pki/ca.crt
  cert_file: pki/node.crt
  key_file: pki/node.key
  username: wasup
  password_file: etcd-password
"""
    cluster = parse_config(text, SOURCE).cluster
    assert cluster is not None and cluster.tls
    assert cluster.ca_file == Path("/etc/wasup/pki/ca.crt")
    assert cluster.key_file == Path("/etc/wasup/pki/node.key")
    assert (cluster.username, cluster.password_file) == ("wasup", Path("/etc/wasup/etcd-password"))


def test_defaults_and_relative_paths() -> None:
    text = """
state_dir: state
cluster:
  etcd: http://127.0.0.1:2379
  advertise_url: http://127.0.0.1:8080
  profile_dir: shared/profiles
  test_only_disable_fencing: true
"""
    cluster = parse_config(text, SOURCE).cluster
    assert cluster is not None
    assert cluster.etcd == ("http://127.0.0.1:2379",)
    assert cluster.profile_dir == Path("/etc/wasup/shared/profiles")
    assert (cluster.name, cluster.capacity, cluster.unowned_grace) == ("wasup", 50, 10.0)
    assert cluster.node_id  # the short hostname
    assert cluster.test_only_disable_fencing


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("  advertise_url: http://a:8080\n  profile_dir: /p\n", "cluster: missing key etcd"),
        ("  etcd: [http://e:2379]\n  profile_dir: /p\n", "cluster: missing key advertise_url"),
        ("  etcd: [http://e:2379]\n  advertise_url: http://a:8080\n", "missing key profile_dir"),
        ("  etcd: []\n  advertise_url: http://a:8080\n  profile_dir: /p\n", "cluster.etcd"),
        (
            "  etcd: [http://e:2379]\n  advertise_url: http://a:8080\n  profile_dir: /p\n"
            "  lease_ttl: 4s\n  fence_margin: 5s\n",
            "cluster.fence_margin: 5.0s must be more than 0 and less than cluster.lease_ttl",
        ),
        (
            "  etcd: [http://e:2379]\n  advertise_url: http://a:8080\n  profile_dir: /p\n"
            "  capacity: -1\n",
            "cluster.capacity: -1 is too small",
        ),
        (
            "  etcd: [http://e:2379]\n  advertise_url: http://a:8080\n  profile_dir: /p\n"
            "  lease_tll: 4s\n",
            "cluster.lease_tll: unknown key; did you mean 'lease_ttl'?",
        ),
        (
            "  etcd: [http://e:2379]\n  advertise_url: ftp://a\n  profile_dir: /p\n",
            "cluster.advertise_url: 'ftp://a' is not an http(s) URL",
        ),
        (
            "  etcd: [http://e:2379, https://f:2379]\n  advertise_url: http://a\n"
            "  profile_dir: /p\n",
            "cluster.etcd: use https:// for every URL or for none",
        ),
        (
            "  etcd: [http://e:2379]\n  advertise_url: http://a\n  profile_dir: /p\n"
            "  ca_file: /ca.crt\n",
            "cluster.ca_file: needs https:// URLs in cluster.etcd",
        ),
        (
            "  etcd: [https://e:2379]\n  advertise_url: http://a\n  profile_dir: /p\n"
            "  cert_file: /c.crt\n",
            "cluster.cert_file and cluster.key_file go together",
        ),
        (
            "  etcd: [http://e:2379]\n  advertise_url: http://a\n  profile_dir: /p\n"
            "  username: root\n",
            "cluster.username and cluster.password_file go together",
        ),
    ],
)
def test_errors_name_the_file_line_and_key(body: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(f"state_dir: /s\ncluster:\n{body}", SOURCE)
    text = str(caught.value)
    assert text.startswith(f"{SOURCE}:"), text
    assert message in text, text
