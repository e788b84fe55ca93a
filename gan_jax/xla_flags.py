"""CPU thread settings that must be made before JAX is imported (no JAX here).

Two different things:

* `pin_cpu_to_one_thread` sets XLA_FLAGS=--xla_cpu_multi_thread_eigen=false. It
  turns off Eigen's threaded kernels, but it does **not** keep XLA on one core:
  with this JAX (0.10) the CPU runtime still spreads a compiled program over every
  core. Measured on the 2-core machine (a jitted loop of 256 x 256 matmuls):
  CPU time / wall time 1.94 with the flag, 1.91 without it, 1.00 under
  `taskset -c 0`. JAX has no flag that pins it (jax-ml/jax#1539, #743).
* `pin_to_core` confines the whole process, every thread of it, to one core
  through the OS's affinity mask. This is what "one single-threaded process per
  core" needs: `gan_jax.sweep --processes N` gives child i core i (mod the cores
  this process may use) through the PIN_CORE_ENV variable, and the benchmarks'
  "one thread" children pin themselves the same way.
"""

from __future__ import annotations

import os

# Only --flags: XLA stops reading XLA_FLAGS at a bare token (an earlier version ended
# in TF's 'intra_op_parallelism_threads=1', which XLA ignores and which cut off any
# flag appended after it, such as a forced device count).
CPU_SINGLE_THREAD = '--xla_cpu_multi_thread_eigen=false'

# A process started with this variable set to i pins itself to core i (mod the
# cores it may use) when it calls `pin_to_core_from_env`, before JAX starts.
PIN_CORE_ENV = 'GAN_JAX_PIN_CORE'


def pin_cpu_to_one_thread() -> None:
  """Sets XLA_FLAGS to CPU_SINGLE_THREAD unless the user set XLA_FLAGS already."""
  os.environ.setdefault('XLA_FLAGS', CPU_SINGLE_THREAD)


def pin_to_core(index: int = 0) -> int | None:
  """Confines this process to one CPU core: the `index`-th (mod their count) it may use.

  Call it before JAX is imported (XLA sizes and binds its thread pool when it
  starts; threads created later inherit the mask anyway). Returns the core, or
  None where the OS has no affinity call (macOS): the process then runs unpinned.
  """
  if not hasattr(os, 'sched_setaffinity'):
    return None
  allowed = sorted(os.sched_getaffinity(0))
  core = allowed[index % len(allowed)]
  os.sched_setaffinity(0, {core})
  return core


def pin_to_core_from_env() -> int | None:
  """`pin_to_core(int($GAN_JAX_PIN_CORE))` if the variable is set, else nothing."""
  value = os.environ.get(PIN_CORE_ENV, '')
  if not value:
    return None
  try:
    index = int(value)
  except ValueError:
    raise ValueError(f'the environment variable {PIN_CORE_ENV}={value!r} must be a '
                     'core index (an integer).') from None
  return pin_to_core(index)
