"""Where a train step's time goes on XLA:CPU: the ops it executes, by kind.

    python benchmarks/profile_step.py                         # issue #15's nets, K = 0 and 10 (exact)
    python benchmarks/profile_step.py --nets ring --unroll 5  # the study's ring nets (D 3 x 200, z 2)
    python benchmarks/profile_step.py --unroll 10 --first_order --top 15
    python benchmarks/profile_step.py --unroll 0,10 --seeds 1,8   # the sweep's vmapped-seeds program

One process confined to one core (`xla_flags.pin_to_core`). For each K the step
(`steps.train_step`, batch 128, the nets of `benchmarks/sweep.py`; with --seeds S
the sweep's program instead: S seeds vmapped, --steps steps in one `lax.scan`) is
compiled, timed unprofiled (median of --repeats calls of --steps steps), then run
--steps steps under `jax.profiler`. JAX's profiler records one event per executed HLO
instruction (a "thunk": a fusion, a dot, a copy, a while loop's body ops once per
trip); the events are read back with `jax.profiler.ProfileData` (no TensorFlow)
and grouped by what their instruction is in the compiled module:

  * matmul: dot / convolution, or a fusion that contains one (XNNPACK's
    `ynn_fusion`s included);
  * random: `jax.random`'s work: the threefry hash behind every split, fold_in
    and draw (on CPU JAX lowers it to a rolled while loop: 5 trips of ~16 ops) and
    the transforms of its bits to uniform and normal draws;
  * scan residuals: dynamic-update-slice / dynamic-slice, which a differentiated
    `lax.scan` uses to stack each step's residuals and read them back;
  * copy: copies and transposes (loop-carry copies, layout changes);
  * elementwise: every other instruction (loop fusions, reductions, ...).

While loops, calls and conditionals are containers (their events span their body's
events) and are not counted. The profiled step runs slower than the unprofiled one
(the profiler costs about a microsecond per event), so the table gives each kind's
share of the profiled op time and its op count; the wall column is unprofiled (the
profiled ops' summed durations can exceed it: they are no bound on the step). The
FLOP limit is the step's matmul FLOPs (`ceiling.matmul_flops`) at XLA's one-core
2048^3 matmul rate measured in the same process: what the step would take if it
were nothing but large matmuls.
"""

from __future__ import annotations

import argparse
import collections
import functools
import glob
import os
import re
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
from gan_jax import xla_flags  # pylint: disable=g-import-not-at-top,wrong-import-position

KINDS = ('matmul', 'random', 'scan residuals', 'copy', 'elementwise')
CONTAINERS = ('while', 'call', 'conditional')
_INSTRUCTION = re.compile(r'^\s*(?:ROOT )?%?([\w.\-]+) = .*?\s([a-z][\w\-]*)\((.*)$')
_COMPUTATION = re.compile(r'^(?:ENTRY )?%?([\w.\-]+) .*\{\s*$')
# jax.random's own jitted functions, as they appear in an instruction's op_name.
_RANDOM = re.compile(r'threefry|random_bits|jit\(_(?:uniform|normal|bernoulli|randint|gumbel|'
                     r'categorical|truncated_normal|choice|permutation)')


_CALLED = re.compile(r'(?:calls|body|condition|to_apply|branch_computations)=\{?([^,}]+(?:, %[\w.\-]+)*)')


class Module:
  """The instructions of a compiled module's HLO text, for classifying profiled ops."""

  def __init__(self, text: str):
    self.opcode, self.rest, self.members = {}, {}, {}
    current = None
    for line in text.splitlines():
      if not line.startswith(' '):
        m = _COMPUTATION.match(line)
        current = m.group(1) if m else None
        if current:
          self.members[current] = []
        continue
      m = _INSTRUCTION.match(line)
      if m and current:
        name, self.opcode[m.group(1)], self.rest[m.group(1)] = m.group(1), m.group(2), m.group(3)
        self.members[current].append(name)
    # Every op run on behalf of a jax.random call: the threefry instructions, all
    # that their loops and calls contain, and the copies that set up a loop's carry
    # (the rolled loop's copies carry no metadata).
    self.random: set[str] = set()
    todo = [n for n, r in self.rest.items() if _RANDOM.search(r)]
    while todo:
      name = todo.pop()
      if name in self.random:
        continue
      self.random.add(name)
      for comp in self.called(name):
        todo.extend(self.members.get(comp, []))
      if self.opcode[name] in ('while', 'call', 'tuple'):
        todo.extend(o for o in self.operands(name)
                    if self.opcode.get(o) in ('tuple', 'copy', 'constant'))

  def operands(self, name: str) -> list[str]:
    """The instructions `name` reads (its argument list)."""
    return re.findall(r'%([\w.\-]+)', self.rest[name].split(')', 1)[0])

  def called(self, name: str) -> list[str]:
    """The computations instruction `name` calls (fusion bodies, loop bodies, ...)."""
    return [c.strip().lstrip('%') for group in _CALLED.findall(self.rest[name])
            for c in group.split(',')]

  def kind(self, name: str) -> str | None:
    """The KINDS entry of instruction `name`; None for containers and unknown names."""
    opcode = self.opcode.get(name)
    if opcode is None or opcode in CONTAINERS:
      return None
    inner = [self.opcode[i] for c in self.called(name) for i in self.members.get(c, [])]
    ops = [opcode] + inner
    if any(o in ('dot', 'convolution') for o in ops):
      return 'matmul'
    if name in self.random:
      return 'random'
    if any(o in ('dynamic-update-slice', 'dynamic-slice') for o in ops):
      return 'scan residuals'
    if opcode in ('copy', 'transpose') or (
        opcode == 'fusion' and inner and set(inner) <= {'parameter', 'copy', 'transpose', 'bitcast'}):
      return 'copy'
    return 'elementwise'


def profile_events(run) -> dict[str, tuple[int, float]]:
  """{event name: (count, total ns)} of every event recorded while `run()` runs."""
  import jax  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as logdir:
    jax.profiler.start_trace(logdir)
    try:
      run()
    finally:
      jax.profiler.stop_trace()
    files = sorted(glob.glob(os.path.join(logdir, '**', '*.xplane.pb'), recursive=True))
    if not files:
      raise RuntimeError(f'jax.profiler wrote no .xplane.pb under {logdir}')
    data = jax.profiler.ProfileData.from_file(files[-1])
  events = collections.defaultdict(lambda: [0, 0.0])
  for plane in data.planes:
    for line in plane.lines:
      for event in line.events:
        e = events[event.name]
        e[0] += 1
        e[1] += event.duration_ns
  return {k: (c, t) for k, (c, t) in events.items()}


def op_rows(events: dict[str, tuple[int, float]], hlo_text: str,
            num_steps: int) -> list[tuple[str, str, float, float]]:
  """(name, kind, calls per step, profiled us per step) of each of the module's own ops.

  Runtime events (ThunkExecutor, Python, 'end: ...') and containers are left out.
  """
  module = Module(hlo_text)
  rows = []
  for name, (count, ns) in events.items():
    kind = module.kind(name)
    if kind is not None:
      rows.append((name, kind, count / num_steps, ns / num_steps / 1e3))
  return rows


def by_kind(rows: list[tuple[str, str, float, float]]) -> dict[str, dict[str, float]]:
  """Per KINDS entry: executed ops and profiled us per step, summed over `op_rows`."""
  out = {k: {'ops': 0.0, 'us': 0.0} for k in KINDS}
  for _, kind, calls, us in rows:
    out[kind]['ops'] += calls
    out[kind]['us'] += us
  return out


def measure(net: str, unroll: int, exact: bool, num_steps: int, repeats: int,
            num_seeds: int = 0) -> dict:
  """Wall time, op classes and FLOP limit of one step program (see the module doc).

  num_seeds = 0: `steps.train_step` called num_steps times. num_seeds = S >= 1: the
  sweep's program, `seeds.make_train_n_steps` (S seeds vmapped, a `lax.scan` of
  num_steps steps, data drawn on device), called once.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import ceiling  # pylint: disable=g-import-not-at-top
  import sweep as sweep_bench  # pylint: disable=g-import-not-at-top
  from gan_jax import factory, input_pipeline, seeds, steps  # pylint: disable=g-import-not-at-top,g-multiple-import
  config = sweep_bench.net_config(net, unroll)
  config.unroll.exact = exact
  info = input_pipeline.get_info(config.data)
  spec = factory.build_spec(config, info)
  state = steps.init_state(spec, jax.random.PRNGKey(0), info.shape)
  sampler = input_pipeline.mixture_sampler(config.data)
  batch_size = int(config.train.batch_size)
  batch = sampler(jax.random.PRNGKey(1), spec.d_steps * batch_size)
  step_fn = functools.partial(steps.train_step, spec=spec)
  if num_seeds:
    fn = seeds.make_train_n_steps(spec, sampler, batch_size=batch_size, num_steps=num_steps,
                                  donate=False)
    seed_list = list(range(num_seeds))
    args = (seeds.init_states(spec, seed_list, info.shape), seeds.data_keys(seed_list))
    compiled = fn.lower(*args).compile()
    run = lambda: jax.block_until_ready(compiled(*args))
  else:
    compiled = jax.jit(step_fn).lower(state, batch).compile()

    def run():
      s = state
      for _ in range(num_steps):
        s, _ = compiled(s, batch)
      jax.block_until_ready(s)

  run()
  walls = []
  for _ in range(repeats):
    start = time.perf_counter()
    run()
    walls.append((time.perf_counter() - start) / num_steps)
  rows = op_rows(profile_events(run), compiled.as_text(), num_steps)
  flops = ceiling.matmul_flops(step_fn, state, batch) * max(num_seeds, 1)
  rate = ceiling.xla_matmul_gflops(reps=3)
  return dict(wall_ms=1e3 * float(np.median(walls)), kinds=by_kind(rows), ops=rows,
              flop_ms=1e3 * flops / (rate * 1e9), gflops=rate,
              seeds=num_seeds)


def table(rows) -> str:
  """Markdown: per program its wall and FLOP-limit time per step and its ops by kind."""
  lines = ['| net | K | lookahead | seeds | wall ms/step | ms/seed-step | FLOP limit ms | '
           'ops/step | ' + ' | '.join(f'{k} (ops, % time)' for k in KINDS) + ' |',
           '|---' * (8 + len(KINDS)) + '|']
  for r in rows:
    kinds = r['kinds']
    total_ops = sum(k['ops'] for k in kinds.values())
    total_us = sum(k['us'] for k in kinds.values()) or 1.0
    cells = [f"{kinds[k]['ops']:.0f}, {100 * kinds[k]['us'] / total_us:.0f} %" for k in KINDS]
    seeds = f"{r['seeds']} vmapped" if r['seeds'] else '1 (train_step)'
    lines.append(f"| {r['net']} | {r['unroll']} | {r['lookahead']} | {seeds} | "
                 f"{r['wall_ms']:.2f} | {r['wall_ms'] / max(r['seeds'], 1):.3f} | "
                 f"{r['flop_ms']:.2f} | {total_ops:.0f} | "
                 + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--nets', default='small_ring', help='comma-separated: small_ring, ring, grid')
  parser.add_argument('--unroll', default='0,10')
  parser.add_argument('--first_order', action='store_true')
  parser.add_argument('--steps', type=int, default=20, help='steps per timed / profiled call')
  parser.add_argument('--repeats', type=int, default=7)
  parser.add_argument('--seeds', default='0',
                      help='0: train_step alone; S: the sweep program with S seeds vmapped')
  parser.add_argument('--top', type=int, default=0, help='also list the N dearest ops')
  args = parser.parse_args(argv)
  import sweep as sweep_bench  # pylint: disable=g-import-not-at-top
  known = sweep_bench.NETS + sweep_bench.EXTRA_NETS
  bad = [n for n in args.nets.split(',') if n not in known]
  if bad:
    parser.error(f'--nets: unknown {", ".join(bad)}; valid: {", ".join(known)}')
  xla_flags.pin_cpu_to_one_thread()
  core = xla_flags.pin_to_core(0)
  lookahead = 'first order' if args.first_order else 'exact'
  print(f'# one core ({core}), load {os.getloadavg()[0]:.2f}')
  rows = []
  for net in args.nets.split(','):
    for k in (int(u) for u in args.unroll.split(',')):
      for num_seeds in (int(n) for n in args.seeds.split(',')):
        r = measure(net, k, not args.first_order, args.steps, args.repeats, num_seeds)
        r.update(net=net, unroll=k, lookahead='-' if k == 0 else lookahead)
        rows.append(r)
        if args.top:
          print(f'\n{net}, K = {k}, seeds {num_seeds}: the {args.top} dearest ops '
                '(profiled us/step)')
          for name, kind, calls, us in sorted(r['ops'], key=lambda o: -o[3])[:args.top]:
            print(f'  {us:8.1f}  x{calls:<4.0f} {kind:15s} {name}')
  print()
  print(table(rows))
  print(f'\nXLA one-core matmul rate (2048^3): {rows[-1]["gflops"]:.1f} GFLOP/s; '
        f'load {os.getloadavg()[0]:.2f}')


if __name__ == '__main__':
  main()
