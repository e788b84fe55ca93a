"""The machine's physical memory, for the up-front size checks of bad input.

A configuration off by orders of magnitude (a batch of 10^7, 10^9 mixture
modes) is rejected with a message naming its fields before numpy raises
MemoryError or XLA aborts deep inside; the checks are lower bounds compared
against this figure.
"""

from __future__ import annotations

import os


def ram_bytes() -> int | None:
  """Physical memory in bytes, or None where the platform does not say."""
  try:
    return os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')
  except (ValueError, OSError, AttributeError):
    return None
