"""Throughput of the train step, of vmapped seeds and of the input pipeline.

    python benchmarks/train_step.py                    # the full grid (~15-25 min on 2 cores)
    python benchmarks/train_step.py --quick            # batch 64 and 256, fewer repeats
    python benchmarks/train_step.py --models=cgan_mlp --batch_sizes=256 --unroll=0

Prints markdown tables (and writes them to --out):

1. The train step of each model (MLP GAN, CGAN MLP and DCGAN on 28x28 images,
   the 2-D MLP of Metz et al. on the ring) with unroll K = 0 and 10, at each
   batch size: median ms/step, steps/s, examples/s, GFLOP per step (XLA's cost
   analysis) and the fraction of this machine's honest float32 matmul ceiling
   (benchmarks/ceiling.py, 2048^3: max of numpy's BLAS measured in a subprocess
   without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, which force a slower kernel,
   and XLA's own jnp.dot in this process) that the step reaches; both rates are
   measured right before and after each step's timing (the better of the two),
   so a shared, variably loaded CPU slows both sides of the ratio alike.
2. S = 1, 8, 32 seeds of the 2-D GAN in one vmapped program
   (`seeds.make_multi_seed_step`) against S separate runs one after another,
   measured in a child process confined to one core (`xla_flags.pin_to_core`,
   with `seeds.cpu_single_thread_flags()`) and in this one.
3. The data iterator of every dataset: batches/s against the fastest train step
   on that data (the loop needs >= 10x: JAX dispatch is asynchronous, so the
   next batch is read while the step runs).

FLOPs: the matmul and convolution FLOPs of the step's jaxpr, each scan body
times its length (`ceiling.matmul_flops`). XLA's cost analysis counts a loop
body once whatever its trip count, and the earlier correction from it,
F(0) + K (F'(K) - F(0)), multiplied the K-proportional work *outside* the scan
(G run once on the K lookahead batches) by K again: ~9x too many FLOPs for the
2-D GAN at K = 10. Steps whose estimated time exceeds
--max_step_seconds are skipped (shown as such), to keep the run bounded.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import subprocess
import sys
import time
from typing import Any, Callable

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ceiling  # pylint: disable=g-import-not-at-top,wrong-import-position

MODELS = ('mlp_gan', 'cgan_mlp', 'dcgan', 'toy_2d')
IMAGE_SHAPE = (28, 28, 1)
FASHION_DIR = '/usr/share/datasets/fashion-mnist'


median_time = ceiling.median_time


def make_config(model: str, unroll: int):
  """The experiment config of `model` (as in experiments/), with K = `unroll`."""
  from gan_jax import config_base  # pylint: disable=g-import-not-at-top
  c = config_base.get_base()
  if model == 'toy_2d':
    config_base.ring(c)
    config_base.toy_2d(c)
  elif model == 'mlp_gan':
    config_base.images(c, 'fashion_mnist')
    config_base.mlp_gan(c)
  elif model == 'cgan_mlp':
    config_base.images(c, 'fashion_mnist', value_range=(0.0, 1.0))
    config_base.cgan_mlp(c)
    c.matching_aware = True  # as experiments/cgan_*.py
    c.label_noise = 0.05
  elif model == 'dcgan':
    config_base.images(c, 'fashion_mnist')
    c.model.update(dict(name='dcgan', conditional=True, latent_dim=100, base_width=64,
                        d_base_width=64, batch_norm=True, out_activation='tanh'))
  else:
    raise ValueError(f'--models: unknown model {model!r}; valid: {", ".join(MODELS)}.')
  c.unroll.steps = unroll
  return c


def _data_info(config):
  from gan_jax import input_pipeline  # pylint: disable=g-import-not-at-top
  if config.data.name in ('ring', 'grid'):
    return input_pipeline.get_info(config.data)
  # The shape of Fashion-MNIST, without needing its files for the step itself.
  return input_pipeline.DataInfo(IMAGE_SHAPE, 10, tuple(config.data.value_range), 'image')


def _batch(spec, info, batch_size: int, rng: np.random.Generator):
  n = spec.d_steps * batch_size
  batch = {'x': rng.uniform(-1, 1, (n,) + tuple(info.shape)).astype(np.float32)}
  if spec.conditional:
    batch['label'] = (np.arange(n) % spec.num_classes).astype(np.int32)
  return batch


def bench_step(model: str, unroll: int, batch_size: int, *, probe: ceiling.NumpyProbe,
               ceiling_rate: float, max_step_seconds: float,
               min_seconds: float) -> dict[str, Any]:
  """One row of table 1."""
  import jax  # pylint: disable=g-import-not-at-top
  from gan_jax import factory, steps  # pylint: disable=g-import-not-at-top,g-multiple-import
  config = make_config(model, unroll)
  info = _data_info(config)
  spec = factory.build_spec(config, info)
  step = jax.jit(functools.partial(steps.train_step, spec=spec), donate_argnums=0)
  state = steps.init_state(spec, jax.random.PRNGKey(0), info.shape)
  batch = jax.device_put(_batch(spec, info, batch_size, np.random.default_rng(0)))
  lowered = step.lower(state, batch)
  flops = ceiling.matmul_flops(functools.partial(steps.train_step, spec=spec), state, batch)
  row = dict(model=model, unroll=unroll, batch=batch_size, gflop=flops / 1e9)
  estimate = flops / (0.5 * ceiling_rate * 1e9)
  if estimate > max_step_seconds:
    row['skipped'] = f'~{estimate:.0f} s/step at half the matmul ceiling'
    return row
  t = time.perf_counter()
  compiled = lowered.compile()
  row['compile_s'] = time.perf_counter() - t
  holder = [state]

  def run():
    holder[0], metrics = compiled(holder[0], batch)
    jax.block_until_ready(metrics)

  run()
  # The CPU is shared: the matmul rates are measured right before and after the
  # step, and the step is compared with the better of the two.
  before = ceiling.measure(probe, reps=3)
  t = time.perf_counter()
  run()
  seconds = time.perf_counter() - t
  if seconds < max_step_seconds:  # slower steps: one timed run is enough.
    seconds = median_time(run, min_reps=3, min_seconds=min_seconds)
  rates = ceiling.best(before, ceiling.measure(probe, reps=3))
  row.update(ms=1e3 * seconds, steps_s=1 / seconds, examples_s=batch_size / seconds,
             gflops=flops / seconds / 1e9, numpy_gflops=rates['numpy'],
             xla_gflops=rates['xla'], frac_ceiling=flops / seconds / 1e9 / rates['ceiling'])
  return row


def bench_seeds(seed_counts: list[int], unrolls: list[int], batch_size: int,
                min_seconds: float) -> list[dict[str, Any]]:
  """Table 2 rows: S seeds of the 2-D GAN vmapped vs S runs one after another."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from gan_jax import factory, seeds, steps  # pylint: disable=g-import-not-at-top,g-multiple-import
  rows = []
  for unroll in unrolls:
    config = make_config('toy_2d', unroll)
    info = _data_info(config)
    spec = factory.build_spec(config, info)
    rng = np.random.default_rng(0)
    single = jax.jit(functools.partial(steps.train_step, spec=spec), donate_argnums=0)
    holder = [steps.init_state(spec, jax.random.PRNGKey(0), info.shape)]
    batch = jax.device_put(_batch(spec, info, batch_size, rng))

    def run_single():
      holder[0], metrics = single(holder[0], batch)
      jax.block_until_ready(metrics)

    run_single()
    t_single = median_time(run_single, min_reps=5, min_seconds=min_seconds)
    for num_seeds in seed_counts:
      multi = seeds.make_multi_seed_step(spec, num_seeds)
      states = [seeds.init_states(spec, list(range(num_seeds)), info.shape)]
      x = jnp.asarray(np.stack([_batch(spec, info, batch_size, rng)['x']
                                for _ in range(num_seeds)]))

      def run_multi():
        states[0], metrics = multi(states[0], {'x': x})
        jax.block_until_ready(metrics)

      t = time.perf_counter()
      run_multi()
      compile_s = time.perf_counter() - t
      t_multi = median_time(run_multi, min_reps=5, min_seconds=min_seconds)
      rows.append(dict(unroll=unroll, seeds=num_seeds, compile_s=compile_s,
                       ms=1e3 * t_multi, seed_steps_s=num_seeds / t_multi,
                       separate_seed_steps_s=1 / t_single,
                       speedup=(num_seeds / t_multi) / (1 / t_single)))
  return rows


def bench_data(batch_sizes: list[int], min_seconds: float) -> list[dict[str, Any]]:
  """Table 3 rows: batches/s of the train iterator of every dataset."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  from gan_jax import input_pipeline  # pylint: disable=g-import-not-at-top
  fashion = dict(name='fashion_mnist', dir=FASHION_DIR, value_range=(-1.0, 1.0))
  datasets = {
      'ring': dict(name='ring', num_modes=8, radius=1.0, std=0.01),
      'grid': dict(name='grid', grid_size=5, spacing=2.0, std=0.05),
      'fashion_mnist': fashion,
      'stacked_fashion_mnist': dict(name='stacked', base=fashion, value_range=(-1.0, 1.0)),
      'mnist (tfds)': dict(name='mnist', tfds_name='mnist', value_range=(-1.0, 1.0)),
  }
  rows = []
  for name, cfg in datasets.items():
    cfg = ml_collections.ConfigDict(cfg)
    for batch_size in batch_sizes:
      try:
        it = input_pipeline.make_iterator(cfg, split='train', batch_size=batch_size, seed=0)
      except (FileNotFoundError, ValueError) as e:
        rows.append(dict(dataset=name, batch=batch_size,
                         skipped=str(e).split('.')[0][:80]))
        break
      next(it)
      seconds = median_time(lambda: next(it), min_reps=20, min_seconds=min_seconds)
      rows.append(dict(dataset=name, batch=batch_size, batches_s=1 / seconds))
  return rows


# ---------------------------------------------------------------------------
# Tables.
# ---------------------------------------------------------------------------


def _fmt(value, spec: str = '.1f') -> str:
  return '-' if value is None else format(value, spec)


def step_table(rows) -> str:
  lines = ['| model | K | batch | compile s | ms/step | steps/s | examples/s '
           '| matmul GFLOP/step '
           '| GFLOP/s | numpy matmul GFLOP/s (own kernel, same moment) '
           '| XLA matmul GFLOP/s (same moment) | of max(numpy, XLA) |',
           '|---|---|---|---|---|---|---|---|---|---|---|---|']
  for r in rows:
    if 'skipped' in r:
      lines.append(f'| {r["model"]} | {r["unroll"]} | {r["batch"]} | - | skipped: '
                   f'{r["skipped"]} | - | - | {r["gflop"]:.2f} | - | - | - | - |')
      continue
    lines.append(
        f'| {r["model"]} | {r["unroll"]} | {r["batch"]} | {r["compile_s"]:.1f} | '
        f'{r["ms"]:.2f} | {r["steps_s"]:.1f} | {r["examples_s"]:,.0f} | {r["gflop"]:.3f} | '
        f'{r["gflops"]:.1f} | {r["numpy_gflops"]:.1f} | {r["xla_gflops"]:.1f} | '
        f'{100 * r["frac_ceiling"]:.1f}% |')
  return '\n'.join(lines)


def seeds_table(rows) -> str:
  lines = [f'| K | seeds S | XLA CPU threads | ms per vmapped step | seed-steps/s vmapped '
           '| seed-steps/s, S runs one after another | speed-up |',
           '|---|---|---|---|---|---|---|']
  for r in rows:
    lines.append(f'| {r["unroll"]} | {r["seeds"]} | {r["threads"]} | {r["ms"]:.2f} | '
                 f'{r["seed_steps_s"]:,.0f} | {r["separate_seed_steps_s"]:,.0f} | '
                 f'{r["speedup"]:.1f}x |')
  return '\n'.join(lines)


DATA_MODELS = {'ring': ('toy_2d',), 'grid': ('toy_2d',),
               'fashion_mnist': ('mlp_gan', 'cgan_mlp', 'dcgan'),
               'stacked_fashion_mnist': ('mlp_gan', 'cgan_mlp', 'dcgan'),
               'mnist (tfds)': ('mlp_gan', 'cgan_mlp', 'dcgan')}


def data_table(rows, step_rows) -> str:
  lines = ['| dataset | batch | iterator batches/s | fastest train step on it (steps/s) '
           '| ratio |', '|---|---|---|---|---|']
  for r in rows:
    if 'skipped' in r:
      lines.append(f'| {r["dataset"]} | {r["batch"]} | not available here: {r["skipped"]} '
                   '| - | - |')
      continue
    rates = [s['steps_s'] for s in step_rows if 'steps_s' in s and s['batch'] == r['batch']
             and s['model'] in DATA_MODELS[r['dataset']]]
    fastest = max(rates) if rates else None
    ratio = None if fastest is None else r['batches_s'] / fastest
    lines.append(f'| {r["dataset"]} | {r["batch"]} | {r["batches_s"]:,.0f} | '
                 f'{_fmt(fastest)} | {_fmt(ratio, ".0f")}{"x" if ratio else ""} |')
  return '\n'.join(lines)


_loadavg = ceiling.loadavg


def _ints(text: str) -> list[int]:
  return [int(t) for t in text.split(',') if t]


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--models', default=','.join(MODELS))
  parser.add_argument('--batch_sizes', default='64,256,1024')
  parser.add_argument('--unroll', default='0,10')
  parser.add_argument('--seeds', default='1,8,32')
  parser.add_argument('--seeds_batch_size', type=int, default=256)
  parser.add_argument('--max_step_seconds', type=float, default=15.0)
  parser.add_argument('--min_seconds', type=float, default=3.0,
                      help='time each measurement at least this long')
  parser.add_argument('--quick', action='store_true', help='batch 64 and 256, 1 s per timing')
  parser.add_argument('--skip', default='', help='comma list of: steps, seeds, data')
  parser.add_argument('--out', default='')
  parser.add_argument('--seeds_child', action='store_true', help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.quick:
    args.batch_sizes, args.min_seconds = '64,256', 1.0
  skip = set(args.skip.split(',')) - {''}

  if args.seeds_child:  # the one-core seeds measurement, run by the parent.
    from gan_jax import xla_flags  # pylint: disable=g-import-not-at-top
    xla_flags.pin_to_core(0)  # before JAX starts: the flag alone leaves XLA on every core
    rows = bench_seeds(_ints(args.seeds), _ints(args.unroll), args.seeds_batch_size,
                       args.min_seconds)
    print('JSON:' + json.dumps(rows))
    return

  import jax  # pylint: disable=g-import-not-at-top
  # numpy's matmul without the kernel-forcing variables, in a worker subprocess
  # for the whole run (this process's environment is left as it is).
  probe = ceiling.NumpyProbe()
  load_start = _loadavg()
  as_set = ceiling.numpy_matmul_gflops()
  rates = ceiling.measure(probe)
  out = [f'Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, '
         f'jax {jax.__version__}, numpy {np.__version__}; load average at start {load_start}.',
         *ceiling.header(probe)[1:],
         f'float32 matmul 2048^3 (medians of 7, side by side): numpy as set {as_set:.1f} '
         f'GFLOP/s, numpy with {" and ".join(ceiling.FORCED_VARS)} removed '
         f'{rates["numpy"]:.1f}, XLA jnp.dot {rates["xla"]:.1f}; each step is compared '
         'with max(numpy removed, XLA) measured beside it.', '']
  print('\n'.join(out), flush=True)

  step_rows = []
  if 'steps' not in skip:
    for model in args.models.split(','):
      for unroll in _ints(args.unroll):
        for batch_size in _ints(args.batch_sizes):
          row = bench_step(model, unroll, batch_size, probe=probe,
                           ceiling_rate=rates['ceiling'],
                           max_step_seconds=args.max_step_seconds,
                           min_seconds=args.min_seconds)
          step_rows.append(row)
          print(step_table([row]).splitlines()[-1], flush=True)
    out += ['### Train step', '', step_table(step_rows), '']

  if 'seeds' not in skip:
    from gan_jax import seeds  # pylint: disable=g-import-not-at-top
    env = dict(os.environ, XLA_FLAGS=seeds.cpu_single_thread_flags())
    child = subprocess.run(
        [sys.executable, os.path.abspath(__file__), '--seeds_child', f'--seeds={args.seeds}',
         f'--unroll={args.unroll}', f'--seeds_batch_size={args.seeds_batch_size}',
         f'--min_seconds={args.min_seconds}'], env=env, capture_output=True, text=True,
        check=True)
    one_thread = [dict(r, threads='1') for r in json.loads(child.stdout.split('JSON:')[-1])]
    default = [dict(r, threads='default') for r in bench_seeds(
        _ints(args.seeds), _ints(args.unroll), args.seeds_batch_size, args.min_seconds)]
    out += [f'### Seeds of the 2-D GAN in one program (batch {args.seeds_batch_size})', '',
            seeds_table(one_thread + default), '']
    print('\n'.join(out[-3:]), flush=True)

  if 'data' not in skip:
    data_rows = bench_data(_ints(args.batch_sizes), min(args.min_seconds, 1.0))
    out += ['### Input pipeline', '', data_table(data_rows, step_rows), '']
  probe.close()
  out.append(f'Load average at the end: {_loadavg()}.')
  text = '\n'.join(out)
  print('\n' + text)
  if args.out:
    with open(args.out, 'w') as f:
      f.write(text + '\n')


if __name__ == '__main__':
  main()
