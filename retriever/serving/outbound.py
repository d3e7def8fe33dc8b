"""Bytes of responses the server holds for clients that have not read them yet, bounded.

A unary handler returns its response before gRPC has sent it: a client that never opens its
HTTP/2 window keeps every answer in server memory. So each call reserves, before any work, an
estimate of its answer (hits times the running mean of answer bytes per hit), per connection and
in total; the reservation becomes the real size once the answer is built and is released only
when the call ends, that is once gRPC has written the answer (or the call died). A call that
would go over a limit is refused with RESOURCE_EXHAUSTED, unless it would be the connection's
(or the server's) only one: one answer is bounded by the message size limit anyway.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from thoughtbank.retriever.errors import ServerOverloadedError

#: The first estimate of an answer's bytes per hit, until answers have been measured.
INITIAL_BYTES_PER_HIT = 1_024
# Weight of each measured answer in the running mean; a mean, not a maximum, so one answer with
# an unusually long template does not make every later large batch look too big.
LEARNING_RATE = 0.1


class OutboundBudget:
    """Unsent answer bytes per connection (by peer address) and in total, with their limits."""

    def __init__(
        self, per_connection: int, total: int, on_change: Callable[[int], None] = lambda _: None
    ) -> None:
        self.per_connection = per_connection
        self.total = total
        self.bytes_per_hit = float(INITIAL_BYTES_PER_HIT)
        self._by_peer: dict[str, int] = {}
        self._all = 0
        self._on_change = on_change

    def held(self, peer: str | None = None) -> int:
        """Bytes reserved or held for ``peer``'s connection, or for all when None."""
        return self._all if peer is None else self._by_peer.get(peer, 0)

    def reserve(self, peer: str, hits: int) -> Reservation:
        """Reserve the estimated answer of a call returning ``hits`` hits, or refuse the call."""
        estimate = math.ceil(max(1, hits) * self.bytes_per_hit)
        mine = self.held(peer)
        if mine and mine + estimate > self.per_connection:
            raise ServerOverloadedError(
                f"this connection already has {mine} bytes of answers it has not read, over the "
                f"limit of {self.per_connection} (max_unsent_bytes_per_connection); read them "
                "before sending more calls"
            )
        if self._all and self._all + estimate > self.total:
            raise ServerOverloadedError(
                f"the server holds {self._all} bytes of answers clients have not read, over the "
                f"limit of {self.total} (max_unsent_bytes); retry with backoff"
            )
        reservation = Reservation(self, peer)
        reservation.resize(estimate)
        return reservation

    def adjust(self, peer: str, change: int) -> None:
        """Move ``peer``'s bytes by ``change``; reservations call it."""
        left = self._by_peer.get(peer, 0) + change
        if left:
            self._by_peer[peer] = left
        else:
            self._by_peer.pop(peer, None)
        self._all += change
        self._on_change(self._all)

    def learn(self, size: int, hits: int) -> None:
        """Move the estimate per hit towards an answer of ``size`` bytes with ``hits`` hits."""
        observed = size / max(1, hits)
        self.bytes_per_hit += LEARNING_RATE * (observed - self.bytes_per_hit)


class Reservation:
    """One call's share of the budget: an estimate, then its answer's size, then nothing."""

    def __init__(self, budget: OutboundBudget, peer: str) -> None:
        self._budget = budget
        self._peer = peer
        self.size = 0

    def resize(self, size: int) -> None:
        self._budget.adjust(self._peer, size - self.size)
        self.size = size

    def release(self) -> None:
        """Idempotent: gRPC's done callback and an early failure may both call it."""
        self.resize(0)
