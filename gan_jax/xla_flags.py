"""XLA settings that must be in the environment before JAX is imported (no JAX here).

For the tiny 2-D nets, pinning XLA's CPU backend to one thread was 1.5-1.7x
faster than the default (DESIGN.md); two single-threaded processes then use
two cores.
"""

import os

# Only --flags: XLA stops reading XLA_FLAGS at a bare token (an earlier version ended
# in TF's 'intra_op_parallelism_threads=1', which XLA ignores and which cut off any
# flag appended after it, such as a forced device count).
CPU_SINGLE_THREAD = '--xla_cpu_multi_thread_eigen=false'


def pin_cpu_to_one_thread() -> None:
  """Sets XLA_FLAGS to CPU_SINGLE_THREAD unless the user set XLA_FLAGS already."""
  os.environ.setdefault('XLA_FLAGS', CPU_SINGLE_THREAD)
