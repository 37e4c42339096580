"""The resource sampler: every browser's memory, CPU and process count, on a timer.

A round reads /proc for every process on the host (through psutil): about half a second
with 500 instances (bench/bench_resources.py), so it runs on a thread of its own, never on
the io loop that carries every page's events. PSS is read for a budget of processes per
round and estimated for the rest (:mod:`actors.usage`). Each round writes the
``resources`` field of the board records (the only field it writes) and hands the samples
to the root supervisor, which applies the memory caps.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from actors.errors import UnknownInstance
from actors.instance import profile_dir
from actors.lifecycle import RUNNING
from actors.status import InstanceStatus, StatusBoard
from actors.usage import PssBase, Usage, estimate_memory, pick_pss, sample_trees
from supervisor._messages import Sampled

log = logging.getLogger("wasup.resources")

#: Processes whose PSS one round reads: at about 2 ms each for Chromium, ~0.3 s a round.
PSS_BUDGET = 150


class ResourceSampler:
    """Samples every running instance every ``interval`` seconds on a thread of its own."""

    def __init__(
        self,
        board: StatusBoard,
        state_dir: Path,
        interval: float,
        deliver: Callable[[Sampled], None],
        clock: Callable[[], float] = time.time,
        pss_budget: int = PSS_BUDGET,
        profiles: Path | None = None,
    ) -> None:
        self._board = board
        self._state_dir = state_dir
        self._profiles = profiles
        self._interval = interval
        self._deliver = deliver
        self._clock = clock
        self._budget = pss_budget
        self._bases: dict[str, PssBase] = {}
        self._processes: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rounds = 0
        """Completed sampling rounds."""
        self.last_duration = 0.0
        """Seconds the last round took."""

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="resources", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            started = time.monotonic()
            try:
                self._deliver(self.sample_once())
            except Exception:
                # One bad round (a /proc race, a stopping root) must not end sampling.
                log.exception("resource sampling round failed; trying again next round")
            self.last_duration = time.monotonic() - started
            self.rounds += 1

    def _profile(self, instance_id: str) -> Path:
        if self._profiles is None:
            return profile_dir(self._state_dir, instance_id)
        return self._profiles / instance_id

    def sample_once(self) -> Sampled:
        """Measure every instance with a browser and write ``resources`` on the board."""
        now = self._clock()
        records = self._board.snapshot()
        running = {iid: r for iid, r in records.items() if r.state in RUNNING}
        generations = {iid: r.generation for iid, r in running.items()}
        pss_for = pick_pss(self._bases, generations, self._processes, self._budget)
        samples = sample_trees({iid: self._profile(iid) for iid in running}, pss_for=pss_for)
        usage: dict[str, Usage] = {}
        for iid, sample in samples.items():
            generation = generations[iid]
            memory, kind = estimate_memory(sample, self._bases.get(iid), generation)
            if sample.pss_bytes is not None:
                self._bases[iid] = PssBase(generation, sample.pss_bytes, sample.private_bytes, now)
            self._processes[iid] = sample.processes
            usage[iid] = Usage(memory, kind, sample.cpu_seconds, sample.processes, now)
        for gone in set(self._bases) - set(running):
            del self._bases[gone]
        for gone in set(self._processes) - set(running):
            del self._processes[gone]
        for iid, record in records.items():
            found = usage.get(iid)
            if found is None and record.resources is None:
                continue  # nothing new to say about an instance without a browser
            self._write(iid, found, record.generation)
        return Sampled({iid: (generations[iid], u) for iid, u in usage.items()})

    def _write(self, iid: str, found: Usage | None, generation: int) -> None:
        def edit(current: InstanceStatus) -> InstanceStatus:
            # The browser may have closed or restarted while we measured: a sample of the
            # old one must not stick to the new record.
            still = current.state in RUNNING and current.generation == generation
            return dataclasses.replace(current, resources=found if still else None)

        with contextlib.suppress(UnknownInstance):  # removed since the snapshot
            self._board.change(iid, edit)
