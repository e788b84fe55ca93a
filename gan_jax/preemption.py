"""Preemption: SIGTERM / SIGINT become a flag the loop polls between steps.

    with preemption.StopSignals() as stop:
      for step in ...:
        ...
        if stop.signal is not None:   # checkpoint, then leave
          ...

The previous handlers come back when the block exits, however it exits.
"""

from __future__ import annotations

import signal


class StopSignals:
  """Turns SIGTERM / SIGINT into a flag the loop polls between steps."""

  def __init__(self):
    self.signal = None
    self._previous = {}

  def __enter__(self):
    for sig in (signal.SIGTERM, signal.SIGINT):
      try:
        self._previous[sig] = signal.signal(sig, self._handle)
      except ValueError:  # not the main thread (e.g. in some test runners)
        pass
    return self

  def _handle(self, signum, frame):
    del frame
    self.signal = signal.Signals(signum).name

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)
