"""Seed-steps/s of the mode-collapse sweep's nets: vmapped, sequential, 1 vs 2 processes.

    python benchmarks/sweep.py                 # the full table (run on a quiet machine)
    python benchmarks/sweep.py --quick         # smoke run, ring, K = 0 / 5, S = 8: ~1 min quiet, 4 min at load 6
    python benchmarks/sweep.py --nets=grid --unroll=10 --seeds=8,32 --steps=10 --repeats=5

Nets: the default (budget) protocol of experiments/mode_collapse_{ring,grid}.py
(ring: G 2 x 128, grid: G 3 x 256; D 3 x 200; latent 2; batch 128), and on request
`small_ring`, issue #15's nets (the ring's G, D 1 x 128, latent 16), with
`unroll.steps` = K (exact lookahead, `unroll.exact=True`). For every net, K and
seed count S one row:

  * vmapped: S seeds in one program (`seeds.make_train_n_steps`: `lax.scan` over
    --steps steps inside one jit, real data drawn on device, as the sweep trains;
    the seeds axis sharded by `seeds.seed_mesh` when there are several devices),
    one process confined to one core (`xla_flags.pin_to_core`: the OS's
    affinity mask; XLA's --xla_cpu_multi_thread_eigen=false alone still ran on
    both cores, so rounds before 8 measured two-core processes here);
  * sequential: S separate 1-seed programs one after another, *extrapolated*
    from a 1-seed program (jit(train_n_steps), no vmap; S runs take S times as
    long) that the vmapped row's own process compiles too and times in
    alternation with the vmapped calls, so the ratio is side by side (round 9 and
    earlier timed it in a separate process, before the vmapped ones: the host's
    drift moved that ratio by 0.94-1.50x at K = 0, S = 8 from run to run);
  * 2 processes: two processes started together, one core each, each training
    S / 2 of the seeds vmapped; each repeat is released to both at once and
    timed as the slower of the two (S = 1: not split, '-');
  * FLOP-time limit: seed-steps/s if every matmul FLOP of a seed-step (its jaxpr,
    scan bodies x K, `ceiling.matmul_flops`) ran at the honest one-thread matmul
    ceiling measured beside the row (benchmarks/ceiling.py: numpy's BLAS without
    OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, in a subprocess, and XLA's own jnp.dot in
    the one-core child; the better), for 1 process and for 2 (twice the
    rate: one core each).

Times are medians over --repeats calls after a warm-up call (compilation
excluded). The load average is printed in the header and at the end; on a
shared CPU only ratios within a row (measured within seconds of each other)
mean much.

GPU mode: when the children see a GPU (jax.devices()), S defaults to
1, 8, 32, 128, 1024, the 2-process column is left out (two processes would
share one device) and no CPU thread pinning is applied; the FLOP limit then
uses XLA's jnp.dot on the device (float32 at JAX's default matmul precision).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)
import ceiling  # pylint: disable=g-import-not-at-top,wrong-import-position
from gan_jax import xla_flags  # pylint: disable=g-import-not-at-top,wrong-import-position

NETS = ('ring', 'grid')
# Issue #15's own nets, on which its seed targets were stated: the ring protocol
# with Metz et al.'s 1 x 128 D and latent 16 (not a study net: that D cannot
# resolve the modes). Opt-in: --nets=small_ring.
EXTRA_NETS = ('small_ring',)
CPU_SEEDS = '1,8,32,128'
GPU_SEEDS = '1,8,32,128,1024'


# ---------------------------------------------------------------------------
# Children: each measures one program in a fresh process (its own XLA flags).
# ---------------------------------------------------------------------------


def net_config(net: str, unroll: int):
  """The config of `net` (NETS + EXTRA_NETS) with an exact K = `unroll` lookahead."""
  from gan_jax import config_base  # pylint: disable=g-import-not-at-top
  study = 'ring' if net == 'small_ring' else net
  c = config_base.load_config(os.path.join(ROOT, 'experiments', f'mode_collapse_{study}.py'))
  if net == 'small_ring':
    c.model.d_widths = (128,)
    c.model.latent_dim = 16
  c.unroll.steps = unroll
  c.unroll.exact = True
  return c


def _plain_program(spec, sampler, info, batch_size: int, seed: int, num_steps: int):
  """call(): one seed, no vmap, num_steps steps in one jit: the sequential program."""
  import jax  # pylint: disable=g-import-not-at-top
  from gan_jax import seeds, steps  # pylint: disable=g-import-not-at-top,g-multiple-import
  # A buffer per leaf: init_state's EMA shares G's, and both are donated.
  state = jax.tree_util.tree_map(lambda x: jax.numpy.array(x, copy=True),
                                 steps.init_state(spec, jax.random.PRNGKey(seed), info.shape))
  fn = jax.jit(functools.partial(seeds.train_n_steps, spec=spec, sampler=sampler,
                                 batch_size=batch_size, num_steps=num_steps),
               donate_argnums=0)
  holder = [state, seeds.data_keys([seed])[0]]

  def call():
    holder[0], metrics = fn(holder[0], holder[1])
    jax.block_until_ready(metrics)
  return call


def _timed(call) -> float:
  t = time.perf_counter()
  call()
  return time.perf_counter() - t


def _child(args) -> None:
  """Compiles one program, warms it up, then times --repeats calls; prints JSON.

  With --alternate (the vmapped child) the 1-seed program is compiled too and
  its calls alternate with the vmapped ones: the row's vmapped / sequential
  ratio is then measured side by side, within seconds, in one process.
  """
  import jax  # pylint: disable=g-import-not-at-top
  from gan_jax import factory, input_pipeline, seeds, steps  # pylint: disable=g-import-not-at-top,g-multiple-import
  if args.child == 'probe':
    print('JSON:' + json.dumps(dict(platform=jax.devices()[0].platform,
                                    device_count=jax.device_count())), flush=True)
    return
  config = net_config(args.net, args.unroll)
  info = input_pipeline.get_info(config.data)
  spec = factory.build_spec(config, info)
  sampler = input_pipeline.mixture_sampler(config.data)
  batch_size = int(config.train.batch_size)
  seed_list = list(range(args.first_seed, args.first_seed + args.num_seeds))
  out = {}
  if args.child == 'flops':  # what the parent sizes every row by; nothing is timed.
    # Matmul FLOPs of one seed-step, from the step's jaxpr (scan bodies x K).
    state = steps.init_state(spec, jax.random.PRNGKey(seed_list[0]), info.shape)
    batch = sampler(jax.random.PRNGKey(0), spec.d_steps * batch_size)
    out['flops'] = ceiling.matmul_flops(functools.partial(steps.train_step, spec=spec),
                                        state, batch)
    out['xla_gflops'] = ceiling.xla_matmul_gflops(reps=3)
    print('JSON:' + json.dumps(out), flush=True)
    return
  # 'vmapped': S seeds in one program, sharded over devices if several.
  mesh = seeds.seed_mesh(len(seed_list))
  fn = seeds.make_train_n_steps(spec, sampler, batch_size=batch_size,
                                num_steps=args.steps, mesh=mesh)
  holder = [seeds.shard_seeds(seeds.init_states(spec, seed_list, info.shape), mesh),
            seeds.shard_seeds(seeds.data_keys(seed_list), mesh)]
  out['devices'] = 1 if mesh is None else mesh.size

  def call():
    holder[0], metrics = fn(holder[0], holder[1])
    jax.block_until_ready(metrics)

  out['compile_s'] = _timed(call)
  plain_call = None
  if args.alternate:
    plain_call = _plain_program(spec, sampler, info, batch_size, seed_list[0], args.steps)
    plain_call()
  # The one-thread XLA matmul rate of this process, beside its timing.
  out['xla_gflops'] = ceiling.xla_matmul_gflops(reps=3)
  times, plain_times = [], []
  if args.sync:
    print('READY', flush=True)
  for _ in range(args.repeats):
    if args.sync and not sys.stdin.readline():  # released by the parent
      break
    if plain_call is not None:
      plain_times.append(_timed(plain_call))
    times.append(_timed(call))
    if args.sync:
      print(f'TIME {times[-1]}', flush=True)
  out['times'] = times
  if plain_times:
    out['plain_times'] = plain_times
  print('JSON:' + json.dumps(out), flush=True)


def _command(args, kind: str, net: str, unroll: int, num_seeds: int, steps: int,
             first_seed: int = 0, sync: bool = False, alternate: bool = False) -> list[str]:
  cmd = [sys.executable, os.path.abspath(__file__), f'--child={kind}', f'--net={net}',
         f'--unroll_one={unroll}', f'--num_seeds={num_seeds}', f'--first_seed={first_seed}',
         f'--steps={steps}', f'--repeats={args.repeats}']
  return cmd + (['--sync'] if sync else []) + (['--alternate'] if alternate else [])


def _json(stdout: str) -> dict:
  return json.loads(stdout.split('JSON:')[-1])


def _pinned(env: dict[str, str], core: int | None) -> dict[str, str]:
  """`env` for a child confined to `core` (None: unpinned, as on a GPU)."""
  return env if core is None else dict(env, **{xla_flags.PIN_CORE_ENV: str(core)})


def _run(cmd: list[str], env: dict[str, str]) -> dict:
  proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
  if proc.returncode:
    raise RuntimeError(f'{" ".join(cmd)} failed:\n{proc.stderr[-3000:]}')
  return _json(proc.stdout)


def _run_pair(cmds: list[list[str]], env: dict[str, str], repeats: int) -> list[float]:
  """Runs the children side by side, releasing each repeat to all at once.

  Returns per repeat the slowest child's time: the wall time of that repeat.
  """
  # Child i on core i: two processes, one core each.
  procs = [subprocess.Popen(c, env=_pinned(env, i), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for i, c in enumerate(cmds)]
  try:
    for p in procs:  # both compiled and warmed up
      line = p.stdout.readline()
      if line.strip() != 'READY':
        raise RuntimeError(f'child did not start: {line!r} {p.stderr.read()[-3000:]}')
    walls = []
    for _ in range(repeats):
      for p in procs:
        p.stdin.write('go\n')
        p.stdin.flush()
      walls.append(max(float(p.stdout.readline().split()[1]) for p in procs))
    for p in procs:
      p.stdin.close()
      p.wait(timeout=120)
    return walls
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()


# ---------------------------------------------------------------------------
# The parent: the table.
# ---------------------------------------------------------------------------


def _ints(text: str) -> list[int]:
  return [int(t) for t in text.split(',') if t]


def _steps_for(args, num_seeds: int, flops: float, rate_gflops: float) -> int | None:
  """Steps per call so that a call takes about --call_seconds at half the ceiling.

  None when even one step would take longer than --max_call_seconds.
  """
  per_step = num_seeds * flops / (0.5 * rate_gflops * 1e9)
  if per_step > args.max_call_seconds:
    return None
  return int(max(1, min(args.steps, args.call_seconds // per_step)))


def table(rows: list[dict], gpu: bool) -> str:
  two = '' if gpu else ' 2 processes |'
  lines = ['| nets | K | seeds S | steps/call | matmul MFLOP per seed-step | compile s '
           f'| seed-steps/s vmapped | sequential (1 seed, same process) |{two} vmapped / sequential '
           f'|{" 2 proc / 1 proc |" if not gpu else ""} one-thread ceiling GFLOP/s '
           '(numpy, XLA) | FLOP limit, 1 proc | of limit, vmapped |'
           f'{" FLOP limit, 2 proc |" if not gpu else ""}']
  lines.append('|' + '---|' * (lines[0].count('|') - 1))
  for r in rows:
    two_cells = ''
    if not gpu:
      pair = r.get('pair')
      two_cells = (f' {pair:,.0f} |' if pair else ' - |')
    if 'skipped' in r:
      lines.append(f'| {r["net"]} | {r["unroll"]} | {r["seeds"]} | skipped: {r["skipped"]} '
                   '|' + ' - |' * (lines[0].count('|') - 5))
      continue
    ratio2 = ''
    if not gpu:
      ratio2 = f' {r["pair"] / r["vmapped"]:.2f}x |' if r.get('pair') else ' - |'
    limit1 = r['ceiling'] * 1e9 / r['flops']
    lines.append(
        f'| {r["net"]} | {r["unroll"]} | {r["seeds"]} | {r["steps"]} | {r["flops"] / 1e6:.1f} '
        f'| {r["compile_s"]:.1f} | {r["vmapped"]:,.0f} | {r["sequential"]:,.0f} |{two_cells} '
        f'{r["vmapped"] / r["sequential"]:.2f}x |{ratio2} {r["ceiling"]:.1f} '
        f'({r["numpy"]:.1f}, {r["xla"]:.1f}) | {limit1:,.0f} | '
        f'{100 * r["vmapped"] / limit1:.1f}% |' + ('' if gpu else f' {2 * limit1:,.0f} |'))
  return '\n'.join(lines)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--nets', default=','.join(NETS),
                      help=f'comma-separated, of {", ".join(NETS + EXTRA_NETS)}')
  parser.add_argument('--unroll', default='0,5,10')
  parser.add_argument('--seeds', default='', help=f'default {CPU_SEEDS} ({GPU_SEEDS} on GPU)')
  parser.add_argument('--steps', type=int, default=20, help='most steps per timed call')
  parser.add_argument('--repeats', type=int, default=5, help='timed calls (median)')
  parser.add_argument('--call_seconds', type=float, default=5.0,
                      help='aim a call at this long (fewer steps per call for big S / K)')
  parser.add_argument('--max_call_seconds', type=float, default=60.0,
                      help='skip a row whose single step is estimated to take longer')
  parser.add_argument('--quick', action='store_true',
                      help='ring, K = 0 / 5, S = 8, 10 steps, 3 repeats (a smoke run)')
  parser.add_argument('--out', default='')
  # Children.
  parser.add_argument('--child', default='', help=argparse.SUPPRESS)
  parser.add_argument('--net', default='ring', help=argparse.SUPPRESS)
  parser.add_argument('--unroll_one', type=int, default=0, help=argparse.SUPPRESS)
  parser.add_argument('--num_seeds', type=int, default=1, help=argparse.SUPPRESS)
  parser.add_argument('--first_seed', type=int, default=0, help=argparse.SUPPRESS)
  parser.add_argument('--sync', action='store_true', help=argparse.SUPPRESS)
  parser.add_argument('--alternate', action='store_true', help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.child:
    xla_flags.pin_to_core_from_env()  # before _child imports JAX
    args.unroll = args.unroll_one
    _child(args)
    return
  bad = [n for n in args.nets.split(',') if n not in NETS + EXTRA_NETS]
  if bad:
    parser.error(f'--nets: unknown {", ".join(bad)}; valid: {", ".join(NETS + EXTRA_NETS)}')
  if args.quick:
    args.nets, args.unroll, args.seeds = 'ring', '0,5', args.seeds or '8'
    args.steps, args.repeats, args.call_seconds = 10, 3, 2.0

  # The parent never imports JAX (on a GPU it would hold the device's memory).
  env = dict(os.environ)
  probe_info = _run([sys.executable, os.path.abspath(__file__), '--child=probe'], env)
  gpu = probe_info['platform'] != 'cpu'
  core = None  # on a GPU the children are not pinned
  if not gpu:
    env['XLA_FLAGS'] = (env.get('XLA_FLAGS', '') + ' ' + xla_flags.CPU_SINGLE_THREAD).strip()
    core = 0
  seed_counts = _ints(args.seeds or (GPU_SEEDS if gpu else CPU_SEEDS))
  rows = []
  with ceiling.NumpyProbe(threads=1) as probe:
    head = [f'benchmarks/sweep.py: {probe_info["device_count"]} {probe_info["platform"]} '
            f'device(s), {os.cpu_count()} CPU cores; XLA flags of the children: '
            f'{env.get("XLA_FLAGS", "(none)")}.', *ceiling.header(probe)]
    if not gpu:  # the bound of the "2 proc / 1 proc" column, measured now
      pair = ceiling.process_scaling(reps=3)
      head.append(f'Hardware bound of the 2-process column: two 1-thread numpy matmul '
                  f'processes at once run {pair["pair_speedup"]:.2f}x one alone '
                  f'({pair["together"]:.1f} vs {pair["alone"]:.1f} GFLOP/s).')
    print('\n'.join(head), flush=True)
    for net in args.nets.split(','):
      for unroll in _ints(args.unroll):
        numpy_rate = probe.gflops(reps=3)
        plain = _run(_command(args, 'flops', net, unroll, 1, args.steps), _pinned(env, core))
        rate = max(numpy_rate, plain['xla_gflops'])
        for s in seed_counts:
          row = dict(net=net, unroll=unroll, seeds=s, flops=plain['flops'])
          steps = _steps_for(args, s, plain['flops'], rate)
          if steps is None:
            row['skipped'] = f'one step estimated > {args.max_call_seconds:.0f} s'
            rows.append(row)
            print(table([row], gpu).splitlines()[-1], flush=True)
            continue
          numpy_rate = probe.gflops(reps=3)
          one = _run(_command(args, 'vmapped', net, unroll, s, steps, alternate=True),
                     _pinned(env, core))
          row.update(steps=steps, compile_s=one['compile_s'],
                     vmapped=s * steps / float(np.median(one['times'])),
                     sequential=steps / float(np.median(one['plain_times'])),
                     numpy=numpy_rate, xla=one['xla_gflops'],
                     ceiling=max(numpy_rate, one['xla_gflops']))
          if not gpu and s >= 2 and s % 2 == 0:
            half = s // 2
            walls = _run_pair([_command(args, 'vmapped', net, unroll, half, steps, 0, True),
                               _command(args, 'vmapped', net, unroll, half, steps, half,
                                        True)], env, args.repeats)
            row['pair'] = s * steps / float(np.median(walls))
          rows.append(row)
          print(table([row], gpu).splitlines()[-1], flush=True)
  text = '\n'.join(head + ['', table(rows, gpu), '',
                           f'Load average at the end: {ceiling.loadavg()}.'])
  print('\n' + text)
  if args.out:
    with open(args.out, 'w') as f:
      f.write(text + '\n')


if __name__ == '__main__':
  main()
