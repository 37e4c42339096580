"""The scenarios' TCP proxy really cuts a store off from a real etcd, and lets it back."""

from __future__ import annotations

import pytest

from tests.cluster.harness import EtcdView
from tests.cluster.tcp_proxy import proxy_to
from tests.etcd_server import Etcd

pytestmark = pytest.mark.cluster


def test_cut_makes_etcd_unreachable_through_the_proxy_and_heal_undoes_it(
    etcd_member: Etcd,
) -> None:
    with proxy_to(etcd_member.port) as proxy:
        through, direct = EtcdView([proxy.url]), EtcdView([etcd_member.url])
        try:
            assert through.snapshot() is not None  # forwarding works, on a kept connection
            proxy.cut()
            assert through.snapshot() is None  # the kept connection was dropped
            assert through.snapshot() is None  # and a new one is refused
            assert direct.snapshot() is not None  # etcd itself is fine
            proxy.heal()
            assert through.snapshot() is not None
            assert proxy.accepted >= 3
        finally:
            through.close()
            direct.close()
