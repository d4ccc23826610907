"""The run's clock: every wait of a procedure goes through it.

With simulators, ``speed`` N makes every wait N times shorter so a 30-minute procedure runs
in seconds in CI; the metrology never sees the factor.
"""

from __future__ import annotations

import asyncio
import time


class RunClock:
    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._t0 = time.monotonic()

    def elapsed(self) -> float:
        """Procedure seconds since the clock started (real seconds × speed)."""
        return (time.monotonic() - self._t0) * self.speed

    def real_elapsed(self) -> float:
        return time.monotonic() - self._t0

    def real_seconds(self, procedure_seconds: float) -> float:
        return procedure_seconds / self.speed

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of procedure time (a hold time, a settling wait)."""
        await asyncio.sleep(max(0.0, seconds) / self.speed)
