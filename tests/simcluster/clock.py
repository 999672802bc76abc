"""Simulated time. `speed` simulated seconds pass per real second, so tests can run slow things fast.

Everything in the simulator that has a duration (container start delay, job run time, HPA
stabilisation, node provisioning, etcd compaction) measures it with this clock, never with time.time().
Timestamps written into objects are this clock's wall time, in RFC 3339 UTC as the API server writes them.
"""
from __future__ import annotations

import datetime
import threading
import time


class Clock(object):
    def __init__(self, speed=1.0, start=None):
        if speed <= 0:
            raise ValueError("clock speed must be positive")
        self.speed = float(speed)
        self._wall0 = time.time() if start is None else float(start)
        self._mono0 = time.monotonic()
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self):
        """Simulated seconds since the epoch."""
        with self._lock:
            return self._wall0 + (time.monotonic() - self._mono0) * self.speed + self._offset

    def advance(self, seconds):
        """Jump simulated time forward (tests use this to skip waits without sleeping)."""
        with self._lock:
            self._offset += float(seconds)

    def set_speed(self, speed):
        """Change how fast simulated time runs from now on (what already passed stays as it was). Waits already
        scheduled in real seconds keep their length."""
        if speed <= 0:
            raise ValueError("clock speed must be positive")
        with self._lock:
            mono = time.monotonic()
            self._wall0 += (mono - self._mono0) * self.speed
            self._mono0 = mono
            self.speed = float(speed)

    def real_seconds(self, sim_seconds):
        return max(0.0, float(sim_seconds) / self.speed)

    def sleep(self, sim_seconds):
        time.sleep(self.real_seconds(sim_seconds))

    def timestamp(self, when=None):
        when = self.now() if when is None else when
        return datetime.datetime.fromtimestamp(int(when), tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def micro_timestamp(self, when=None):
        when = self.now() if when is None else when
        return datetime.datetime.fromtimestamp(when, tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text):
    """RFC 3339 (as written by the API server) -> seconds since the epoch; None for empty input."""
    if not text:
        return None
    text = text.replace("Z", "+00:00")
    return datetime.datetime.fromisoformat(text).timestamp()
