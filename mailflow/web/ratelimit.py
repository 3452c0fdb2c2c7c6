"""Per-client rate limits for the public endpoints (a token bucket per client address)."""

from __future__ import annotations

from collections import OrderedDict


class RateLimiter:
    """`rate` requests per second on average, bursts up to `burst`; remembers at most
    `clients` addresses (the least recently seen are forgotten)."""

    def __init__(self, rate: float, burst: int, clients: int = 10_000) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.clients = clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, client: str, now: float) -> bool:
        """``now`` in seconds from the injected clock; a clock stepped back refills nothing."""
        tokens, last = self._buckets.pop(client, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - last) * self.rate)
        allowed = tokens >= 1.0
        self._buckets[client] = (tokens - 1.0 if allowed else tokens, now)
        while len(self._buckets) > self.clients:
            self._buckets.popitem(last=False)
        return allowed
