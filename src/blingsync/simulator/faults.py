"""Injected faults: 5xx answers, latency, timeouts, truncated bodies and 429 bursts.

A fault spec is a comma-separated list of `name=value`, e.g.
`5xx=0.1,timeout=0.05,hang=2s,latency=20-80ms,truncate=0.02,429=0.03,burst=4,seed=7`:

| name      | value                        | effect                                                  |
|-----------|------------------------------|---------------------------------------------------------|
| 5xx       | probability                  | 500 SERVER_ERROR JSON, or 502/503 HTML from the proxy   |
| timeout   | probability                  | the request hangs `hang` seconds, then 504 HTML         |
| hang      | duration (default 30s)       | how long a timed-out request hangs                      |
| latency   | duration or range            | added to every answer                                   |
| truncate  | probability                  | the JSON body is cut short (status stays 200)           |
| 429       | probability                  | starts a burst of `burst` 429 answers for that account  |
| burst     | count (default 5)            | length of a 429 burst                                   |
| seed      | integer (default 0)          | the faults' own random stream: same seed, same faults   |

Every draw comes from one seeded stream, so the same sequence of requests meets the same faults.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Literal

FaultKind = Literal["none", "5xx", "timeout", "truncate", "429"]


class FaultSpecError(ValueError):
    """A fault spec that cannot be understood; the message names the offending part."""


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s)?$")


def _duration(text: str, name: str) -> float:
    m = _DURATION.match(text.strip())
    if not m:
        raise FaultSpecError(f"{name}: {text!r} is not a duration (e.g. 50ms, 0.2s, 2)")
    value = float(m.group(1))
    return value / 1000 if m.group(2) == "ms" else value


def _probability(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise FaultSpecError(f"{name}: {text!r} is not a probability between 0 and 1") from None
    if not 0.0 <= value <= 1.0:
        raise FaultSpecError(f"{name}: {value} is not a probability between 0 and 1")
    return value


@dataclass
class FaultSpec:
    error_5xx: float = 0.0
    timeout: float = 0.0
    hang: float = 30.0
    latency_min: float = 0.0
    latency_max: float = 0.0
    truncate: float = 0.0
    burst_429: float = 0.0
    burst_length: int = 5
    seed: int = 0

    @classmethod
    def parse(cls, spec: str) -> FaultSpec:
        out = cls()
        for raw in spec.split(","):
            part = raw.strip()
            if not part:
                continue
            name, sep, value = part.partition("=")
            name = name.strip().lower()
            if not sep:
                raise FaultSpecError(f"{part!r}: expected name=value")
            if name == "5xx":
                out.error_5xx = _probability(value, name)
            elif name == "timeout":
                out.timeout = _probability(value, name)
            elif name == "hang":
                out.hang = _duration(value, name)
            elif name == "latency":
                low, _, high = value.strip().partition("-")
                if high and low and low[-1].isdigit():
                    low += high.lstrip("0123456789.")  # "20-80ms": the unit is written once
                out.latency_min = _duration(low, name)
                out.latency_max = _duration(high, name) if high else out.latency_min
                if out.latency_max < out.latency_min:
                    raise FaultSpecError(f"latency: {value!r} has its maximum below its minimum")
            elif name == "truncate":
                out.truncate = _probability(value, name)
            elif name == "429":
                out.burst_429 = _probability(value, name)
            elif name == "burst":
                if not value.strip().isdigit() or int(value) < 1:
                    raise FaultSpecError(f"burst: {value!r} is not a positive integer")
                out.burst_length = int(value)
            elif name == "seed":
                try:
                    out.seed = int(value)
                except ValueError:
                    raise FaultSpecError(f"seed: {value!r} is not an integer") from None
            else:
                raise FaultSpecError(
                    f"unknown fault {name!r}; known: 5xx, timeout, hang, latency, truncate, "
                    "429, burst, seed"
                )
        if out.error_5xx + out.timeout + out.truncate + out.burst_429 > 1.0:
            raise FaultSpecError("the probabilities of 5xx, timeout, truncate and 429 add up to over 1")
        return out

    def describe(self) -> str:
        parts = []
        if self.error_5xx:
            parts.append(f"5xx={self.error_5xx:g}")
        if self.timeout:
            parts.append(f"timeout={self.timeout:g},hang={self.hang:g}s")
        if self.latency_max:
            parts.append(f"latency={self.latency_min * 1000:g}-{self.latency_max * 1000:g}ms")
        if self.truncate:
            parts.append(f"truncate={self.truncate:g}")
        if self.burst_429:
            parts.append(f"429={self.burst_429:g},burst={self.burst_length}")
        if parts:
            parts.append(f"seed={self.seed}")
        return ",".join(parts) or "none"


@dataclass
class FaultDecision:
    kind: FaultKind = "none"
    latency: float = 0.0
    status: int = 0  # for 5xx
    cut: float = 0.5  # fraction of the body kept, for truncate


@dataclass
class FaultInjector:
    spec: FaultSpec = field(default_factory=FaultSpec)
    injected: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.spec.seed)

    def configure(self, spec: FaultSpec) -> None:
        self.spec = spec
        self._rng = random.Random(spec.seed)
        self.injected = {}

    @property
    def active(self) -> bool:
        s = self.spec
        return bool(s.error_5xx or s.timeout or s.truncate or s.burst_429 or s.latency_max)

    def decide(self) -> FaultDecision:
        s = self.spec
        if not self.active:
            return FaultDecision()
        rng = self._rng
        latency = rng.uniform(s.latency_min, s.latency_max) if s.latency_max else 0.0
        roll = rng.random()
        decision = FaultDecision(latency=latency)
        threshold = s.error_5xx
        if roll < threshold:
            decision.kind = "5xx"
            decision.status = rng.choice((500, 500, 502, 503))
        elif roll < (threshold := threshold + s.timeout):
            decision.kind = "timeout"
        elif roll < (threshold := threshold + s.truncate):
            decision.kind = "truncate"
            decision.cut = rng.uniform(0.1, 0.9)
        elif roll < threshold + s.burst_429:
            decision.kind = "429"
        if decision.kind != "none":
            self.injected[decision.kind] = self.injected.get(decision.kind, 0) + 1
        return decision
