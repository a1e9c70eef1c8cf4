"""Learning how many requests one Ollama server really runs at once.

``OLLAMA_NUM_PARALLEL`` lives in the *server's* environment (Ollama.app, a
service, another terminal), so a kernel usually cannot read it. But Ollama says
how long it worked on each request (``load_duration``, ``prompt_eval_duration``,
``eval_duration``), and whatever else the client waited is time the request spent
in the server's queue, waiting for a slot. That makes the slot count observable.

Ollama's ``total_duration`` includes that wait and is measured by the server,
so the queue time it gives is not blurred by the network or a busy kernel.

The controller follows TCP Vegas rather than loss-driven AIMD: it compares what
it sees with what an unqueued server would give, and acts on the difference
before anything fails. Per round (one ``limit``'s worth of finished requests):

- **slow start**: while requests run with no queue time, double the limit (a
  server with 8 slots is found in four rounds). ``ramp="step"`` instead adds one
  per settled queue-free round, so the server never holds more than one of ours
  beyond its slots, even while we learn them: the Dask broker ramps so, because a
  cluster's batch is long enough that a few more rounds of discovery cost little,
  and a server someone else also uses should not find its queue filled by us;
- **queue time** at ``N`` requests in flight with mean service time ``S`` and
  mean queue time ``Q`` means the server serves ``N·S/(S+Q)`` of them at once
  (Little's law): the limit drops to that estimate and holds there. The round
  right after the limit grew is a transient (the requests admitted first find
  older ones still running and wait only part of a service, later ones a whole
  one), so its queue time understates the steady state and the estimate
  overstates the slots; the next round, at the lower limit, re-estimates and
  corrects it. Only a round at a limit unchanged since the previous round is
  taken as proof that the limit runs queue-free; below such a limit the
  estimate never goes, nor, when slow start first meets queue time, below the
  half that ran queue-free just before;
- **holding**, every few queue-free rounds it tries one more; a trial that
  queues or brings no throughput goes back;
- **sharing**: queue time at a limit that already ran queue-free (a saturated
  round at that very limit, or the slots we were told) means another client now
  shares the server: our in-flight count did not change, yet each request waits
  and our throughput did not rise. Holding there
  only lengthens the server's queue, and probing up fills it until Ollama answers
  503. So the Little's-law estimate shrinks our limit, but never below a fair
  share, half the server's slots (rounded up): we cannot see how many clients
  there are, and assuming one peer like us lets two of these controllers settle
  side by side without starving each other, while a greedy client that never
  backs off still leaves us half. ``slots`` keeps the server's own count (learned
  alone), not our share;
- **while sharing**, every ``SHARED_REPROBE_ROUNDS`` queue-free rounds it tries
  one more (instead of every ``REPROBE_ROUNDS``): with the peer still there the
  trial queues and goes back to the share; once the peer has left, latency is
  back to the uncontended level, the trial brings throughput and is kept, and the
  limit climbs step by step back to the slots, where sharing ends;
- **503** (the server's queue is full): halve at once, without waiting for the round.

Only rounds where we had more work than the limit allowed ("saturated") may
raise it: a notebook sending one chat at a time says nothing about the server's
capacity. Each decision keeps its reason, shown by ``%ollama status``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Literal

from ..application.ports import Clock

Phase = Literal["slow start", "holding", "probing", "fixed"]
Ramp = Literal["double", "step"]

#: Queue time below this (seconds) is noise on any network, never a queue.
QUEUE_FLOOR_S = 0.003
#: Queue-free rounds at the held limit before trying one more.
REPROBE_ROUNDS = 8
#: Queue-free rounds at a shared limit before trying one more: the other client
#: may have left, and every round below the slots then wastes the server's slots.
SHARED_REPROBE_ROUNDS = 2
#: Decisions kept for ``%ollama status``.
HISTORY = 6


@dataclass(frozen=True, slots=True)
class Observation:
    """One finished request, as the controller needs it."""

    admitted_at: float  # monotonic seconds
    in_flight: int  # our requests running on this server when it was admitted, itself included
    waiting: int  # requests waiting at our gate for this server when it finished
    wall_s: float  # arrival -> last token: Ollama's total_duration, else our own clock
    load_s: float  # Ollama's load_duration (also the wait for its scheduler)
    service_s: float  # Ollama's prompt_eval_duration + eval_duration

    @property
    def queue_s(self) -> float:
        """Time the server held the request without working on it: waiting for a slot."""
        return max(0.0, self.wall_s - self.load_s - self.service_s)


@dataclass(frozen=True, slots=True)
class ControllerStatus:
    limit: int
    phase: Phase
    slots: int | None  # what the server was found to run at once, when known
    reason: str
    decisions: tuple[str, ...]
    busy: int  # 503s seen
    observed: int  # requests observed
    sharing: bool = False  # another client's work was seen queueing ours on this server


class ConcurrencyController:
    """The limit of requests in flight to one server; fed by the gate, read by the gate.

    Not thread-safe and needs no lock: the gate calls it from the runtime's loop.
    ``known`` is a slot count someone told us (the server manager started the
    server with it, or ``OLLAMA_NUM_PARALLEL`` is set here): start there and
    hold instead of slow-starting from 1. ``adaptive=False`` pins the limit.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        known: int | None = None,
        ceiling: int = 32,
        adaptive: bool = True,
        ramp: Ramp = "double",
    ) -> None:
        if ceiling < 1:
            raise ValueError("ceiling must be at least 1")
        self._clock = clock
        self.ceiling = ceiling
        self.ramp = ramp
        self._decisions: deque[str] = deque(maxlen=HISTORY)
        self.busy = 0
        self.observed = 0
        self._baseline: deque[float] = deque(maxlen=256)
        self.restart(known, adaptive=adaptive)

    # --- configuration -------------------------------------------------------------

    def restart(self, known: int | None, *, adaptive: bool = True) -> None:
        """Start over from ``known`` slots (or from 1 when nothing is known)."""
        self.limit = max(1, min(known or 1, self.ceiling) if adaptive else (known or 1))
        self.slots = known
        #: The highest limit seen to run a settled, saturated round without queue time
        #: (or the slots we were told): queue time at or below it is another client's.
        self._clean_limit = self.limit if known else 0
        self._previous_round_limit = 0
        self.phase: Phase
        if not adaptive:
            self.phase = "fixed"
            self._decide(f"fixed at {self.limit} by the `parallel` setting")
        elif known:
            self.phase = "holding"
            self._decide(f"started at {self.limit}: the server was started with that many slots")
        else:
            self.phase = "slow start"
            growth = "doubling" if self.ramp == "double" else "one more per round"
            self._decide(f"started at 1 (slots unknown): {growth} until queue time appears")
        self._held_clean = 0
        self._previous_rate: float | None = None
        self.sharing = False
        self._reset_round()

    def _reset_round(self) -> None:
        self._round_limit = self.limit
        self._round: list[Observation] = []
        self._round_started = self._clock.monotonic()
        self._saturated = True
        self._busy_in_round = False

    # --- signals -------------------------------------------------------------------

    def observe(self, obs: Observation) -> bool:
        """Take one finished request; True when the limit changed."""
        self.observed += 1
        self._baseline.append(obs.queue_s)
        if self.phase == "fixed" or obs.admitted_at < self._round_started:
            return False  # admitted under an earlier limit: says nothing about this one
        self._round.append(obs)
        # A round is saturated only if every request in it found the limit full and
        # more work waiting: otherwise a flat throughput says nothing about the server.
        if obs.in_flight < self.limit or obs.waiting == 0:
            self._saturated = False
        if len(self._round) < max(2, self.limit):
            return False
        before = self.limit
        self._end_round()
        return self.limit != before

    def server_busy(self) -> bool:
        """A 503: the server's queue is full. Halve now; True when the limit changed."""
        self.busy += 1
        if self.phase == "fixed" or self._busy_in_round:
            return False  # one cut per round: the others were already in flight
        before = self.limit
        self.limit = max(1, self.limit // 2)
        self.phase = "holding"
        self._held_clean = 0
        self._decide(f"503 server busy at {before} in flight: halved to {self.limit}")
        self._reset_round()
        self._busy_in_round = True
        return self.limit != before

    # --- decisions -----------------------------------------------------------------

    def _end_round(self) -> None:
        obs = self._round
        elapsed = max(self._clock.monotonic() - self._round_started, 1e-9)
        rate = len(obs) / elapsed
        in_flight = sum(o.in_flight for o in obs) / len(obs)
        service = sum(o.service_s for o in obs) / len(obs)
        # Vegas's base RTT: what an unqueued request still shows (network, our own loop),
        # capped so that a server that is always shared does not look unqueued.
        noise = min(min(self._baseline, default=0.0), 0.1 * service)
        queue = max(0.0, sum(o.queue_s for o in obs) / len(obs) - noise)
        saturated = self._saturated
        # Settled: the previous round ran at this limit too, so no transient of a change.
        settled = self._round_limit == self._previous_round_limit
        self._previous_round_limit = self._round_limit
        # One more request than the server's slots adds about S/N of queue time per
        # request; half of that is the least we call a queue.
        queued = queue > max(QUEUE_FLOOR_S, 0.5 * service / max(in_flight, 1.0))
        if saturated and settled and not queued and not self.sharing:
            # A shared server's quiet round says nothing about its slots.
            self._clean_limit = max(self._clean_limit, self._round_limit)
        if queued:
            self._queued(in_flight, service, queue)
        elif saturated:
            self._clean(rate, settled=settled)
        self._reset_round()  # after the decision: the next round runs at the new limit

    def _queued(self, in_flight: float, service: float, queue: float) -> None:
        served = in_flight * service / (service + queue) if service > 0 else 1.0
        estimate = max(1, math.floor(served + 0.5))
        before = self.limit
        if self.slots is not None and (before <= self._clean_limit or self.sharing):
            self._shared(before, in_flight, queue, estimate, self.slots)
            return
        floor = self._clean_limit
        if self.phase == "slow start":  # the limit before this one ran queue-free
            floor = max(floor, self.limit // 2 if self.ramp == "double" else self.limit - 1)
        self.limit = max(1, floor, min(self.limit - 1, estimate))
        self.slots = self.limit
        self.phase = "holding"
        self._held_clean = 0
        self._previous_rate = None
        self._decide(
            f"queue time {queue * 1000:.0f} ms at {in_flight:.1f} in flight: the server runs "
            f"about {estimate} at once; holding at {self.limit}"
        )

    def _shared(
        self, before: int, in_flight: float, queue: float, estimate: int, slots: int
    ) -> None:
        # Little's law says how many of ours the server runs now; the fair share is
        # the floor, and a queue never raises the limit.
        share = min(before, max(1, math.ceil(slots / 2)))
        self.limit = max(share, min(before - 1, estimate))
        was_sharing, self.sharing = self.sharing, True
        self.phase = "holding"
        self._held_clean = 0
        self._previous_rate = None
        if not was_sharing:
            self._decide(
                f"queue time appeared at {before} (queue-free before): another client shares "
                f"the server's {slots} slots, our share is {self.limit}"
            )
        elif self.limit != before or not self.reason.startswith("sharing"):
            self._decide(
                f"sharing the server's {slots} slots: queue time {queue * 1000:.0f} ms at "
                f"{in_flight:.1f} in flight, holding our share at {self.limit}"
            )

    def _clean(self, rate: float, *, settled: bool) -> None:
        previous, self._previous_rate = self._previous_rate, rate
        if self.phase == "slow start":
            if self.limit >= self.ceiling:
                self._hold(f"reached the ceiling of {self.ceiling} without queue time")
            elif self.ramp == "step":
                # One more only after a settled round: the first round at a new limit
                # shows part of its queue time, and stepping on it could put two of ours
                # beyond the slots before any round showed one.
                if settled:
                    self.limit = min(self.ceiling, self.limit + 1)
                    self._decide(f"no queue time in a settled round: probing {self.limit}")
            else:
                # Throughput is not asked here: the first round at a doubled limit is a
                # transient (it also waits for the rows admitted before it), so its rate
                # understates the new limit. On an 8-slot stand-in "flat from 2 to 4"
                # stopped slow start at 2, and one step per 8 rounds cost a third of
                # the run. No queue time means a slot was free; queue time stops it.
                self.limit = min(self.ceiling, self.limit * 2)
                self._decide(f"no queue time: probing {self.limit}")
        elif self.phase == "probing":
            if previous is not None and rate > previous * (1 + 0.5 / self.limit):
                self.slots = max(self.slots or 0, self.limit)
                if self.sharing and self.limit >= self.slots:
                    self.sharing = False
                    self._hold(f"the other client left: {self.limit} queue-free again")
                elif self.sharing:
                    self._hold(
                        f"sharing: {self.limit} ran without queue time and with more "
                        "throughput, the other client is doing less"
                    )
                else:
                    self._hold(f"{self.limit} ran without queue time and with more throughput")
            else:
                self.limit -= 1
                self._hold(f"{self.limit + 1} brought no throughput")
        else:
            if self.sharing and self.limit >= (self.slots or 0):
                self.sharing = False
                self._decide(f"queue-free at the server's {self.limit} slots: no longer sharing")
            self._held_clean += 1
            rounds = SHARED_REPROBE_ROUNDS if self.sharing else REPROBE_ROUNDS
            if self._held_clean >= rounds and self.limit < self.ceiling:
                self._held_clean = 0
                self.limit += 1
                self.phase = "probing"
                shared = "sharing, " if self.sharing else ""
                self._decide(f"{shared}queue-free for {rounds} rounds: trying {self.limit}")

    def _hold(self, why: str) -> None:
        self.phase = "holding"
        self._held_clean = 0
        self._decide(f"{why}: holding at {self.limit}")

    def _decide(self, reason: str) -> None:
        self._decisions.append(reason)

    @property
    def reason(self) -> str:
        return self._decisions[-1] if self._decisions else ""

    def status(self) -> ControllerStatus:
        return ControllerStatus(
            limit=self.limit,
            phase=self.phase,
            slots=self.slots,
            reason=self.reason,
            decisions=tuple(self._decisions),
            busy=self.busy,
            observed=self.observed,
            sharing=self.sharing,
        )
