"""The cluster's state in etcd, through ``aetcd`` (asyncio, gRPC).

One :class:`EtcdStore` per node. Every write that only an owner may make is a transaction
conditioned on the owner key's ``create_revision`` (the fencing token), so a deposed owner
that wakes up late cannot overwrite its successor's status or delete its owner key.

The endpoints of ``cluster.etcd`` are tried in order; after a failed call the next call
reconnects, starting with the endpoint after the one that failed. A failed call raises
:class:`StoreUnavailable`; a lease that etcd no longer knows raises :class:`LeaseGone`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

import aetcd
from aetcd import rpc

from supervisor.cluster._config import ClusterConfig, etcd_endpoints
from supervisor.cluster._errors import ClusterError, StoreUnavailable
from supervisor.cluster._etcd_keys import Keys, Kind
from supervisor.cluster._records import (
    Change,
    NodeRecord,
    Ownership,
    Snapshot,
    StatusRecord,
    entry_from_bytes,
    entry_to_bytes,
)
from supervisor.cluster._tls import SecureClient, load_secrets

log = logging.getLogger("wasup.cluster.store")

T = TypeVar("T")

CLOSE_TIMEOUT = 5.0
"""Seconds a dropped connection gets to close."""


class LeaseGone(ClusterError):
    """etcd no longer knows the lease (it expired or was revoked): the node must fence."""


def _lease_missing(exc: BaseException) -> bool:
    cause = exc.__cause__
    # aetcd maps only some gRPC codes to its own errors; "lease not found" stays generic.
    return isinstance(cause, rpc.AioRpcError) and cause.code() is rpc.StatusCode.NOT_FOUND


class EtcdStore:
    """Reads and writes one cluster's keys (see :mod:`supervisor.cluster._etcd_keys`)."""

    def __init__(self, cfg: ClusterConfig, *, request_timeout: float | None = None) -> None:
        self._cfg = cfg
        self._keys = Keys(cfg.prefix)
        self._endpoints = etcd_endpoints(cfg)
        self._next = 0
        # A request may not outlive one renewal interval: a hung call must not hide that
        # the lease is running out.
        self._timeout = request_timeout or max(cfg.fence_after / 3, 0.5)
        self._client: aetcd.Client | None = None
        self._secrets = load_secrets(cfg)
        # The keeper, the claim loop and the watch share one store: one connect at a time.
        self._connecting = asyncio.Lock()
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def keys(self) -> Keys:
        """The key layout."""
        return self._keys

    async def close(self) -> None:
        """Close the connection (watches end)."""
        client, self._client = self._client, None
        if client is not None:
            await self._close_quietly(client)

    # --- connection ---------------------------------------------------------------------

    async def _connected(self) -> aetcd.Client:
        async with self._connecting:
            if self._client is not None:
                return self._client
            return await self._connect()

    async def _connect(self) -> aetcd.Client:
        failures = []
        for offset in range(len(self._endpoints)):
            index = (self._next + offset) % len(self._endpoints)
            host, port = self._endpoints[index]
            client = self._new_client(host, port)
            try:
                await client.connect()
                await client.status()
            except aetcd.ClientError as exc:
                failures.append(f"{host}:{port}: {exc or type(exc).__name__}")
                self._close_later(client)
                continue
            self._client, self._next = client, index
            return client
        raise StoreUnavailable("no etcd endpoint answered: " + "; ".join(failures))

    async def _call(self, what: str, op: Callable[[aetcd.Client], Awaitable[T]]) -> T:
        client = await self._connected()
        try:
            return await op(client)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the caller is being cancelled (a timeout, a shutdown)
            # Nobody cancelled us: grpc ends the calls of a channel that another call's
            # failure closed (below) with CancelledError. That is this call failing too.
            raise StoreUnavailable(f"{what}: the connection to etcd was closed") from None
        except aetcd.ClientError as exc:
            if _lease_missing(exc):
                raise LeaseGone(f"{what}: etcd no longer knows the lease") from exc
            # Drop the connection and start the next attempt with the next endpoint (once,
            # however many calls failed on it together).
            if self._client is client:
                self._client = None
                self._next += 1
            self._close_later(client)
            raise StoreUnavailable(f"{what}: etcd did not answer ({exc!r})") from exc

    def _new_client(self, host: str, port: int) -> aetcd.Client:
        secrets = self._secrets
        # aetcd counts its timeout in (float) seconds, whatever its annotation says.
        timeout: Any = self._timeout
        auth = {"username": secrets.username, "password": secrets.password()}
        if secrets.credentials is None:
            return aetcd.Client(host=host, port=port, timeout=timeout, **auth)
        return SecureClient(secrets.credentials, host=host, port=port, timeout=timeout, **auth)

    def _close_later(self, client: aetcd.Client) -> None:
        # Not awaited here: closing shuts the client's watcher down, which can wait on an
        # unreachable etcd and swallows a cancellation on the way, so a caller bounded by a
        # timeout (the lease keeper) would wait with it.
        task = asyncio.get_running_loop().create_task(self._close_quietly(client))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close_quietly(self, client: aetcd.Client) -> None:
        try:
            await asyncio.wait_for(client.close(), CLOSE_TIMEOUT)
        except Exception as exc:
            log.debug("closing an etcd connection failed: %r", exc)

    # --- leases and nodes ---------------------------------------------------------------

    async def grant_lease(self) -> int:
        """A new lease of ``lease_ttl`` seconds; returns its id."""
        ttl = int(self._cfg.lease_ttl)
        lease = await self._call("grant lease", lambda c: c.lease(ttl))
        return int(lease.id)

    async def renew(self, lease_id: int) -> int:
        """Renew the lease; returns the TTL etcd granted. Raises :class:`LeaseGone`."""
        reply = await self._call("renew lease", lambda c: c.refresh_lease(lease_id))
        ttl = int(getattr(reply, "TTL", 0)) if reply is not None else 0
        if ttl <= 0:
            raise LeaseGone(f"renew lease {lease_id:x}: etcd no longer knows it")
        return ttl

    async def revoke(self, lease_id: int) -> None:
        """Give the lease up: every key under it (registration, owner keys) goes at once."""
        await self._call("revoke lease", lambda c: c.revoke_lease(lease_id))

    async def register_node(self, record: NodeRecord, lease_id: int) -> None:
        """Put ``nodes/<node_id>`` under the node's lease."""
        key = self._keys.of(Kind.NODES, record.node_id)
        await self._call("register node", lambda c: c.put(key, record.to_bytes(), lease=lease_id))

    # --- ownership ----------------------------------------------------------------------

    async def claim(self, instance_id: str, lease_id: int) -> Ownership | None:
        """Become the owner of ``instance_id`` if nobody is; None if another node is.

        One transaction: if ``owners/<id>`` does not exist, create it with this node's id
        under this node's lease. Its create_revision is the transaction's revision.
        """
        key = self._keys.of(Kind.OWNERS, instance_id)
        node = self._cfg.node_id

        async def txn(c: aetcd.Client) -> tuple[bool, int]:
            t = c.transactions
            ok, responses = await c.transaction(
                compare=[t.create(key) == 0],
                success=[t.put(key, node.encode(), lease=lease_id)],
                failure=[],
            )
            revision = responses[0].response_put.header.revision if ok else 0
            return bool(ok), int(revision)

        ok, token = await self._call(f"claim {instance_id}", txn)
        return Ownership(instance_id, node, token, lease_id) if ok else None

    async def release(self, ownership: Ownership) -> bool:
        """Delete the owner key and its status if still ours (same token); False if not.

        The status goes with the key: only an owner may write it, so one left behind (an
        instance removed, or handed over) would show its last state to every reader, forever.
        """
        key = self._keys.of(Kind.OWNERS, ownership.instance_id)
        status = self._keys.of(Kind.STATUS, ownership.instance_id)

        async def txn(c: aetcd.Client) -> bool:
            t = c.transactions
            ok, _ = await c.transaction(
                compare=[t.create(key) == ownership.token],
                success=[t.delete(key), t.delete(status)],
                failure=[],
            )
            return bool(ok)

        return await self._call(f"release {ownership.instance_id}", txn)

    async def write_status(self, ownership: Ownership, record: StatusRecord) -> bool:
        """Publish the instance's status, only while ``ownership`` holds; False otherwise."""
        owner_key = self._keys.of(Kind.OWNERS, ownership.instance_id)
        key = self._keys.of(Kind.STATUS, ownership.instance_id)

        async def txn(c: aetcd.Client) -> bool:
            t = c.transactions
            ok, _ = await c.transaction(
                compare=[t.create(owner_key) == ownership.token],
                success=[t.put(key, record.to_bytes())],
                failure=[],
            )
            return bool(ok)

        return await self._call(f"status of {ownership.instance_id}", txn)

    # --- the instance list --------------------------------------------------------------

    async def import_instances(self, entries: Mapping[str, Mapping[str, Any]]) -> list[str]:
        """Add each config entry whose id is not in the list yet; returns the ids added."""
        added = []
        for instance_id, entry in sorted(entries.items()):
            if await self._put_if_absent(self._keys.of(Kind.INSTANCES, instance_id), entry):
                added.append(instance_id)
        return added

    async def _put_if_absent(self, key: bytes, entry: Mapping[str, Any]) -> bool:
        async def txn(c: aetcd.Client) -> bool:
            t = c.transactions
            ok, _ = await c.transaction(
                compare=[t.create(key) == 0],
                success=[t.put(key, entry_to_bytes(entry))],
                failure=[],
            )
            return bool(ok)

        return await self._call(f"import {key.decode()}", txn)

    async def put_instance(self, instance_id: str, entry: Mapping[str, Any]) -> None:
        """Add or replace an instance in the cluster's list (``PUT`` on any node)."""
        key = self._keys.of(Kind.INSTANCES, instance_id)
        await self._call(f"put {instance_id}", lambda c: c.put(key, entry_to_bytes(entry)))

    async def delete_instance(self, instance_id: str) -> bool:
        """Remove an instance from the list (its owner then releases it); False if absent."""
        key = self._keys.of(Kind.INSTANCES, instance_id)
        deleted = await self._call(f"delete {instance_id}", lambda c: c.delete(key))
        return deleted is not None and bool(deleted.deleted)

    # --- reading and watching -----------------------------------------------------------

    async def snapshot(self) -> Snapshot:
        """Everything under the cluster's prefix, in one read (one revision)."""
        prefix = self._cfg.prefix.encode()
        found = await self._call("read cluster", lambda c: c.get_prefix(prefix))
        nodes: dict[str, NodeRecord] = {}
        instances: dict[str, dict[str, Any]] = {}
        owners: dict[str, Ownership] = {}
        status: dict[str, StatusRecord] = {}
        for kv in found:
            parsed = self._keys.parse(kv.key)
            if parsed is None:
                continue
            kind, ident = parsed
            name = kv.key.decode(errors="replace")
            try:
                if kind is Kind.NODES:
                    nodes[ident] = NodeRecord.from_bytes(name, ident, kv.value)
                elif kind is Kind.INSTANCES:
                    instances[ident] = entry_from_bytes(name, kv.value)
                elif kind is Kind.OWNERS:
                    owner = kv.value.decode(errors="replace")
                    owners[ident] = Ownership(ident, owner, kv.create_revision, kv.lease)
                else:
                    status[ident] = StatusRecord.from_bytes(name, kv.value)
            except ClusterError as exc:
                # One bad value must not blind the node to the rest of the cluster.
                log.error("cluster: skipping a key it cannot read: %s", exc)
        return Snapshot(int(found.header.revision), nodes, instances, owners, status)

    async def watch(self, start_revision: int) -> AsyncGenerator[Change, None]:
        """Every change under the cluster's prefix from ``start_revision`` on, in order."""
        prefix = self._cfg.prefix.encode()
        watch = await self._call(
            "watch cluster", lambda c: c.watch_prefix(prefix, start_revision=start_revision)
        )
        try:
            async for event in watch:
                parsed = self._keys.parse(event.kv.key)
                if parsed is None:
                    continue
                deleted = event.kind == aetcd.EventKind.DELETE
                yield Change(
                    parsed[0],
                    parsed[1],
                    deleted,
                    b"" if deleted else event.kv.value,
                    int(event.kv.mod_revision),
                    0 if deleted else int(event.kv.create_revision),
                    0 if deleted else int(event.kv.lease),
                )
            # A watch has no end of its own: this one's connection was closed under it (a
            # failed call on the shared client), and changes from now on would be missed.
            raise StoreUnavailable("watch cluster: the watch ended with its connection")
        except aetcd.ClientError as exc:
            raise StoreUnavailable(f"watch cluster: the watch broke ({exc!r})") from exc
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            # As in _call: the channel was closed under the watch.
            raise StoreUnavailable("watch cluster: the connection to etcd was closed") from None
        finally:
            await watch.cancel()
