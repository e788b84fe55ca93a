"""XLA settings that must be in the environment before JAX is imported (no JAX here).

For the tiny 2-D nets, pinning XLA's CPU backend to one thread was 1.5-1.7x
faster than the default (DESIGN.md); two single-threaded processes then use
two cores.
"""

import os

CPU_SINGLE_THREAD = '--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1'


def pin_cpu_to_one_thread() -> None:
  """Sets XLA_FLAGS to CPU_SINGLE_THREAD unless the user set XLA_FLAGS already."""
  os.environ.setdefault('XLA_FLAGS', CPU_SINGLE_THREAD)
