"""An honest float32 matmul ceiling: numpy's BLAS on its own kernel, and XLA's jnp.dot.

    python benchmarks/ceiling.py                 # all cores
    python benchmarks/ceiling.py --threads=1     # one core (numpy and XLA pinned)
    python benchmarks/ceiling.py --threads=1 --pair   # and what a second process adds

Why: this environment may set OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, which
force OpenBLAS (numpy's BLAS) onto a slower kernel than the one it would pick
for this CPU (2048^3 float32: ~245 GFLOP/s with them, ~465 with both unset, on
the project's 2-core machine). A step compared against that rate looks closer
to the machine's limit than it is. So numpy's rate is measured in a *subprocess*
whose environment lacks those two variables (`NumpyProbe`); the parent's
environment is never changed (tests and CI keep whatever they were given). The
kernel that ran is printed (threadpoolctl's `threadpool_info()` 'architecture';
threadpoolctl is optional: `pip install threadpoolctl`, else 'unknown'). XLA's
own matmul (jit(jnp.dot), 2048^3) is measured too, in the process whose XLA
flags the benchmarked steps use, and the ceiling is max(numpy, XLA).

Library use (benchmarks/train_step.py, benchmarks/sweep.py):

    with ceiling.NumpyProbe(threads=None) as probe:        # clean-env worker
      rates = ceiling.measure(probe)   # {'numpy': .., 'xla': .., 'ceiling': ..}
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any, Callable

import numpy as np

# Environment variables that pin OpenBLAS to a kernel; removed in the probe only.
FORCED_VARS = ('OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE')
# The cores this process could use when it started (before a benchmark pins
# itself to one): `process_scaling` puts its two workers on two of them.
START_CORES = sorted(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else []
THREAD_VARS = ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS')
N = 2048


def median_time(fn: Callable[[], Any], *, min_reps: int, min_seconds: float,
                max_reps: int = 1000) -> float:
  """Median wall time of `fn()` (which must block until its work is done)."""
  times = []
  start = time.perf_counter()
  while len(times) < max_reps and (len(times) < min_reps or
                                   time.perf_counter() - start < min_seconds):
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  return float(np.median(times))


def loadavg() -> str:
  """The 1, 5 and 15 minute load averages, for table headers."""
  try:
    return ', '.join(f'{x:.2f}' for x in os.getloadavg())
  except OSError:
    return '?'


def blas_info() -> dict[str, Any]:
  """numpy's BLAS as threadpoolctl sees it in *this* process: kernel, threads."""
  forced = {k: os.environ[k] for k in FORCED_VARS if k in os.environ}
  try:
    import threadpoolctl  # pylint: disable=g-import-not-at-top
  except ImportError:
    return dict(architecture='unknown (pip install threadpoolctl)', num_threads=None,
                forced=forced)
  np.ones((2, 2)) @ np.ones((2, 2))  # loads the BLAS library
  for pool in threadpoolctl.threadpool_info():
    if pool.get('user_api') == 'blas':
      return dict(architecture=pool.get('architecture', '?'),
                  internal_api=pool.get('internal_api', '?'),
                  version=pool.get('version', '?'), num_threads=pool.get('num_threads'),
                  forced=forced)
  return dict(architecture='no BLAS found by threadpoolctl', num_threads=None, forced=forced)


def numpy_matmul_gflops(n: int = N, reps: int = 7) -> float:
  """float32 (n x n) @ (n x n) GFLOP/s of numpy's BLAS in this process, median of `reps`."""
  a = np.random.default_rng(0).standard_normal((n, n), np.float32)
  b = np.random.default_rng(1).standard_normal((n, n), np.float32)
  a @ b
  return 2 * n ** 3 / median_time(lambda: a @ b, min_reps=reps, min_seconds=0) / 1e9


def xla_matmul_gflops(n: int = N, reps: int = 7) -> float:
  """float32 jit(jnp.dot) GFLOP/s in this process (its XLA flags), median of `reps`."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  a = jnp.asarray(np.random.default_rng(0).standard_normal((n, n), np.float32))
  b = jnp.asarray(np.random.default_rng(1).standard_normal((n, n), np.float32))
  f = jax.jit(jnp.dot)
  f(a, b).block_until_ready()
  return 2 * n ** 3 / median_time(lambda: f(a, b).block_until_ready(), min_reps=reps,
                                  min_seconds=0) / 1e9


def clean_env(threads: int | None = None, clean: bool = True) -> dict[str, str]:
  """A copy of os.environ without FORCED_VARS (and with BLAS threads set if given).

  clean=False keeps FORCED_VARS (to measure the environment as set, threads alike).
  """
  env = {k: v for k, v in os.environ.items() if not (clean and k in FORCED_VARS)}
  if threads is not None:
    env.update({k: str(threads) for k in THREAD_VARS})
  return env


class NumpyProbe:
  """A worker subprocess measuring numpy's matmul without the forced OpenBLAS kernel.

  The worker imports numpy only (no JAX) and stays alive, so a benchmark can
  re-measure the rate right beside each of its timings at the cost of the
  matmuls alone. `threads`: BLAS threads of the worker (None: OpenBLAS's default).
  clean=False: a worker with the environment as set (for comparison only).
  """

  def __init__(self, threads: int | None = None, clean: bool = True,
               core: int | None = None):
    self.threads = threads
    self._proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), '--worker']
        + ([] if core is None else [f'--core={core}']),
        env=clean_env(threads, clean),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    self.info = json.loads(self._proc.stdout.readline())
    # What was removed from the worker's environment (the parent keeps it).
    self.info['removed'] = {k: os.environ[k] for k in FORCED_VARS
                            if clean and k in os.environ}

  def gflops(self, n: int = N, reps: int = 7) -> float:
    self.request(n, reps)
    return self.read()

  def request(self, n: int = N, reps: int = 7) -> None:
    """Starts a measurement without waiting for it (see `concurrent_gflops`)."""
    self._proc.stdin.write(f'{n} {reps}\n')
    self._proc.stdin.flush()

  def read(self) -> float:
    return float(json.loads(self._proc.stdout.readline())['gflops'])

  def close(self) -> None:
    if self._proc.poll() is None:
      self._proc.stdin.close()
      self._proc.wait(timeout=60)

  def __enter__(self) -> 'NumpyProbe':
    return self

  def __exit__(self, *exc) -> None:
    self.close()


def measure(probe: NumpyProbe, n: int = N, reps: int = 7) -> dict[str, float]:
  """numpy (clean-env probe) and XLA (this process) rates side by side, and their max."""
  numpy_rate = probe.gflops(n, reps)
  xla_rate = xla_matmul_gflops(n, reps)
  return dict(numpy=numpy_rate, xla=xla_rate, ceiling=max(numpy_rate, xla_rate))


def concurrent_gflops(probes: list[NumpyProbe], n: int = N, reps: int = 7) -> list[float]:
  """Each probe's rate while all of them multiply at once (released together)."""
  for probe in probes:
    probe.request(n, reps)
  return [probe.read() for probe in probes]


def process_scaling(n: int = N, reps: int = 7) -> dict[str, float]:
  """What a second one-thread process adds on this machine: the hardware's bound.

  Two one-thread clean-env numpy workers: the rate of one alone, then both at
  once. `pair_speedup` = (sum of the two concurrent rates) / (one alone); 2.0 on
  two idle physical cores, less where they share execution units (SMT siblings),
  memory bandwidth or a host's other tenants. A benchmark's "2 processes / 1
  process" ratio is read against it.
  """
  cores = (START_CORES or [None]) * 2
  with NumpyProbe(threads=1, core=cores[0]) as first, \
      NumpyProbe(threads=1, core=cores[1]) as second:
    first.gflops(n, 1)  # warm both
    second.gflops(n, 1)
    alone = max(first.gflops(n, reps), second.gflops(n, reps))
    together = concurrent_gflops([first, second], n, reps)
  return dict(alone=alone, together=sum(together), pair_speedup=sum(together) / alone)


def best(*measurements: dict[str, float]) -> dict[str, float]:
  """Per source the best of several `measure` results (e.g. before and after a timing)."""
  out = {k: max(m[k] for m in measurements) for k in ('numpy', 'xla')}
  out['ceiling'] = max(out.values())
  return out


def header(probe: NumpyProbe) -> list[str]:
  """Lines naming both numpy kernels (this process's and the probe's) and the load."""
  here = blas_info()
  forced = ', '.join(f'{k}={v}' for k, v in here['forced'].items()) or 'none set'
  return [f'Load average (1, 5, 15 min): {loadavg()}.',
          f'numpy BLAS kernel in this process: {here["architecture"]} (forcing variables: '
          f'{forced}); in the clean-env probe: {probe.info["architecture"]} '
          f'(BLAS threads {probe.info.get("num_threads")}).']


# ---------------------------------------------------------------------------
# FLOPs of a step, for the FLOP-time limit.
# ---------------------------------------------------------------------------


def _sub_jaxprs(eqn) -> list[tuple[Any, float]]:
  """(jaxpr, times it runs) of every sub-computation of `eqn` (scan: `length` times)."""
  p = eqn.params
  name = eqn.primitive.name
  if name == 'scan':
    return [(p['jaxpr'], float(p['length']))]
  if name == 'cond':  # the dearest branch
    return [(max(p['branches'], key=lambda b: matmul_flops_of_jaxpr(b)), 1.0)]
  if name == 'while':  # trip count unknown: counted once (none in train_step)
    return [(p['body_jaxpr'], 1.0), (p['cond_jaxpr'], 1.0)]
  out = []
  for v in p.values():
    for j in (v if isinstance(v, (list, tuple)) else [v]):
      if hasattr(j, 'eqns') or hasattr(j, 'jaxpr'):
        out.append((j, 1.0))
  return out


def matmul_flops_of_jaxpr(jaxpr) -> float:
  """2 x multiply-adds of every dot_general / conv in `jaxpr`, scan bodies x length."""
  jaxpr = getattr(jaxpr, 'jaxpr', jaxpr)
  total = 0.0
  for eqn in jaxpr.eqns:
    name = eqn.primitive.name
    if name == 'dot_general':
      (lc, _), _ = eqn.params['dimension_numbers']
      lhs = eqn.invars[0].aval.shape
      out = eqn.outvars[0].aval.shape
      total += 2.0 * np.prod(out, dtype=np.float64) * np.prod(
          [lhs[d] for d in lc], dtype=np.float64)
    elif name == 'conv_general_dilated':
      rhs = eqn.invars[1].aval.shape
      dn = eqn.params['dimension_numbers']
      out = eqn.outvars[0].aval.shape
      # rhs: (out features, in features / groups, spatial...) in dn.rhs_spec order.
      in_per_group = rhs[dn.rhs_spec[1]]
      spatial = np.prod([rhs[d] for d in dn.rhs_spec[2:]], dtype=np.float64)
      # A transposed convolution is a conv of the input dilated by zeros
      # (lhs_dilation): only 1 / prod(dilation) of its products are real work.
      dilation = np.prod(eqn.params.get('lhs_dilation') or (1,), dtype=np.float64)
      total += 2.0 * np.prod(out, dtype=np.float64) * in_per_group * spatial / dilation
    for sub, times in _sub_jaxprs(eqn):
      total += times * matmul_flops_of_jaxpr(sub)
  return total


def matmul_flops(fn: Callable, *args) -> float:
  """Matmul + convolution FLOPs of one call of `fn(*args)`, read from its jaxpr.

  Why not XLA's cost analysis: it counts a loop body once whatever its trip
  count, so an unrolled lookahead (a `lax.scan` of K D updates, and its
  transpose in the backward pass) is undercounted K-fold, and no correction
  from two K's separates the scanned work from the K-proportional work outside
  the scan (G on the K batches). The jaxpr walk multiplies each scan body by its
  length. Elementwise work is left out: it is bandwidth-bound and is not what a
  matmul ceiling measures.
  """
  import jax  # pylint: disable=g-import-not-at-top
  return matmul_flops_of_jaxpr(jax.make_jaxpr(fn)(*args))


def _worker(core: int | None) -> None:
  if core is not None:
    os.sched_setaffinity(0, {core})
  print(json.dumps(blas_info()), flush=True)
  for line in sys.stdin:
    n, reps = (int(t) for t in line.split())
    print(json.dumps(dict(gflops=numpy_matmul_gflops(n, reps))), flush=True)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--threads', type=int, default=None,
                      help='BLAS and XLA threads (default: the libraries\' own)')
  parser.add_argument('--n', type=int, default=N)
  parser.add_argument('--reps', type=int, default=7)
  parser.add_argument('--pair', action='store_true',
                      help='also: two 1-thread numpy processes at once against one alone')
  parser.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
  parser.add_argument('--core', type=int, default=None, help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.worker:
    _worker(args.core)
    return
  if args.threads == 1:  # XLA reads its flags once, at import.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from gan_jax import xla_flags  # pylint: disable=g-import-not-at-top
    os.environ.setdefault('XLA_FLAGS', xla_flags.CPU_SINGLE_THREAD)
    xla_flags.pin_to_core(0)  # the flag alone leaves XLA on every core
  with NumpyProbe(args.threads) as probe, NumpyProbe(args.threads, clean=False) as set_probe:
    lines = header(probe)
    as_set = set_probe.gflops(args.n, args.reps)
    rates = measure(probe, args.n, args.reps)
    as_set_kernel = set_probe.info['architecture']
  lines += ['', f'| float32 {args.n}^3 matmul | kernel | GFLOP/s (median of {args.reps}) |',
            '|---|---|---|',
            f'| numpy, environment as set | {as_set_kernel} | {as_set:.1f} |',
            f'| numpy, {" and ".join(FORCED_VARS)} removed | {probe.info["architecture"]} | '
            f'{rates["numpy"]:.1f} |',
            f'| XLA jit(jnp.dot) | - | {rates["xla"]:.1f} |',
            f'| **ceiling = max(numpy removed, XLA)** | | **{rates["ceiling"]:.1f}** |']
  if args.pair:
    pair = process_scaling(args.n, args.reps)
    lines += ['', f'Two single-threaded numpy processes at once: {pair["together"]:.1f} GFLOP/s '
              f'together, one alone {pair["alone"]:.1f}: **{pair["pair_speedup"]:.2f}x** '
              '(2.00x = two free cores).']
  lines += ['', f'Load average at the end: {loadavg()}.']
  print('\n'.join(lines))


if __name__ == '__main__':
  main()
