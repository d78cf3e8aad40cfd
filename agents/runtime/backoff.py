"""The capped doubling delay every retry loop waits between attempts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Backoff:
    """0.2 s doubling to 5 s by default; `reset()` once the other side answers."""

    first: float = 0.2
    cap: float = 5.0
    current: float = 0.0

    def next(self) -> float:
        self.current = self.first if self.current <= 0 else min(self.cap, self.current * 2)
        return self.current

    def reset(self) -> None:
        self.current = 0.0
