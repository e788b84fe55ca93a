"""Runs a config's sweep of 2-D mixture GANs: variants x seeds, one table, a few figures.

    python -m gan_jax.sweep --config experiments/mode_collapse_ring.py --workdir runs/ring_sweep

The config file defines, next to `get_config()`, a `sweep(add)` function in the
style of flax's `hparam_sweep.py`: every call `add(**overrides)` is one variant,
its overrides keyed by flattened config field names,

    def sweep(add):
      for loss in ('minimax', 'non_saturating', 'wasserstein_gp'):
        for k in (0, 1, 5, 10):
          add(loss=loss, **{'unroll.steps': k})

and every variant is trained for `config.sweep.num_seeds` seeds (config.seed,
config.seed + 1, ...). The seeds of a variant are vmapped into one compiled
program (`gan_jax.seeds`), real data is drawn on the device, and the program
runs `config.sweep.eval_every` steps per call; after each call all seeds are
evaluated on `config.eval.num_samples` samples from a fixed z with
`metrics.mixture_metrics` (VEEGAN / PacGAN protocol).

The workdir receives, as variants finish:
  results.csv               one row per (variant, seed): final modes, high-quality
                            fraction, KL, status ('ok', 'nan' with the step it
                            diverged at, or 'failed' with the error), wall time
  results.md                mean +- std over seeds per variant
  samples.png               final samples, one row per variant, one column per seed
  modes_over_training.png   modes covered and high-quality % over training
  strip.png                 Metz et al. (2016) Fig. 1: samples of the plain and the
                            most-unrolled GAN of the first loss over training (seed 0)
  variants/<name>.npz       each variant's evaluation history (for the plots)

Training and evaluation of one variant's seeds is `seeds.train_and_evaluate`;
this module keeps the variants, the CSV, the tables and the figures.

Rerunning the same command skips the variants already in results.csv, so an
interrupted sweep resumes at the variant it was in. A run that goes NaN or a
variant that raises is recorded as such, never dropped. Only the 2-D mixtures
(data.name ring / grid) are supported: that is where vmapping seeds pays off.

XLA's CPU backend is pinned to one thread unless XLA_FLAGS is already set (1.5-1.7x
faster for these nets); run the ring and grid sweeps as two processes to use two cores.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import inspect
import math
import os
import re
import sys
import time
import traceback
from typing import Any, Callable

from gan_jax import xla_flags

if __name__ == '__main__':
  # Must happen before JAX is imported; the tiny nets run faster on one thread.
  xla_flags.pin_cpu_to_one_thread()

import ml_collections  # pylint: disable=g-import-not-at-top
import numpy as np

from gan_jax import config_base
from gan_jax import input_pipeline
from gan_jax import plotting
from gan_jax import seeds as seeds_lib

CSV_FIELDS = ('variant', 'seed', 'status', 'step', 'modes', 'high_quality', 'kl',
              'kl_all', 'diverged_at', 'wall_s', 'steps_per_s', 'error', 'overrides')


@dataclasses.dataclass(frozen=True)
class Variant:
  """One point of the sweep: a name and its flattened config overrides."""
  name: str
  overrides: dict[str, Any]


def variant_name(overrides: dict[str, Any]) -> str:
  """'loss=minimax,unroll.steps=10': stable, readable, usable as a file name."""
  def fmt(v):
    if isinstance(v, (tuple, list)):
      return 'x'.join(str(x) for x in v)
    return str(v)
  return ','.join(f'{k}={fmt(v)}' for k, v in overrides.items()) or 'base'


def expand(sweep_fn: Callable[..., None],
           config: ml_collections.ConfigDict | None = None) -> list[Variant]:
  """Calls `sweep_fn(add)` (or `sweep_fn(add, config)`) and returns the variants in order.

  A two-argument `sweep(add, config)` sees the (overridden) config, so variants
  can depend on it, e.g. a batch scaled with PacGAN's pack size.
  """
  variants: list[Variant] = []

  def add(**overrides):
    variant = Variant(variant_name(overrides), dict(overrides))
    if any(v.name == variant.name for v in variants):
      raise ValueError(f'sweep(): variant {variant.name!r} was added twice.')
    variants.append(variant)

  if len(inspect.signature(sweep_fn).parameters) >= 2:
    sweep_fn(add, config)
  else:
    sweep_fn(add)
  if not variants:
    raise ValueError('sweep() added no variant; call add(**overrides) at least once.')
  return variants


def load_config_module(path: str):
  """The config file as a module (`path` may carry a ':variant' suffix)."""
  module, _ = config_base.load_config_file(path)
  if not hasattr(module, 'sweep'):
    raise ValueError(f'--config {path!r} defines no sweep(add) function; see '
                     'gan_jax/sweep.py for the format.')
  return module


def apply_overrides(config: ml_collections.ConfigDict,
                    overrides: dict[str, Any]) -> ml_collections.ConfigDict:
  """A copy of `config` with flattened overrides; unknown fields are a ValueError."""
  # deepcopy keeps references such as optim.g.decay_steps -> train.num_steps.
  config = copy.deepcopy(config)
  config.lock()
  flat = config.to_dict()
  for key in overrides:
    node = flat
    for part in key.split('.'):
      if not isinstance(node, dict) or part not in node:
        raise ValueError(f'sweep(): {key!r} is not a config field.')
      node = node[part]
  config.update_from_flattened_dict(dict(overrides))
  return config


# ---------------------------------------------------------------------------
# Results on disk.
# ---------------------------------------------------------------------------


def _rows(variant: Variant, seeds: list[int], result: seeds_lib.RunResult) -> list[dict]:
  rows = []
  for i, seed in enumerate(seeds):
    diverged = int(result.diverged_at[i])
    rows.append(dict(
        variant=variant.name, seed=seed, status='nan' if diverged else 'ok',
        step=int(result.steps[-1]), modes=int(result.modes[i, -1]),
        high_quality=f'{float(result.high_quality[i, -1]):.4f}',
        kl=f'{float(result.kl[i, -1]):.4f}', kl_all=f'{float(result.kl_all[i, -1]):.4f}',
        diverged_at=diverged, wall_s=f'{result.wall_s:.1f}',
        steps_per_s=f'{result.steps_per_s:.1f}', error='', overrides=repr(variant.overrides)))
  return rows


def _failed_rows(variant: Variant, seeds: list[int], error: str, wall_s: float) -> list[dict]:
  return [dict(variant=variant.name, seed=seed, status='failed', step=0, modes='',
               high_quality='', kl='', kl_all='', diverged_at=0, wall_s=f'{wall_s:.1f}',
               steps_per_s='', error=error, overrides=repr(variant.overrides))
          for seed in seeds]


def read_rows(path: str) -> list[dict]:
  if not os.path.exists(path):
    return []
  with open(path, newline='') as f:
    return list(csv.DictReader(f))


def append_rows(path: str, rows: list[dict]) -> None:
  new = not os.path.exists(path)
  with open(path, 'a', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
    if new:
      writer.writeheader()
    writer.writerows(rows)
    f.flush()
    os.fsync(f.fileno())


def seed_statistics(values) -> tuple[float, float, float]:
  """(mean, std with ddof = 1, standard error std / sqrt(n)) over seeds; nan where undefined."""
  v = np.asarray(values, float)
  if v.size == 0:
    return float('nan'), float('nan'), float('nan')
  std = float(v.std(ddof=1)) if v.size > 1 else float('nan')
  return float(v.mean()), std, std / math.sqrt(v.size)


def _mean_std(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
  if not values:
    return '-'
  mean, std, se = seed_statistics(scale * np.asarray(values, float))
  if math.isnan(std):
    return f'{mean:.{digits}f}'
  return f'{mean:.{digits}f} ± {std:.{digits}f} (s.e. {se:.{digits}f})'


def published_rows(published, variant: Variant) -> list[tuple]:
  """The (source, modes, high quality, KL) rows of `published` whose overrides `variant` has.

  `published` is a config module's PUBLISHED: a list of (overrides, source,
  modes, high-quality fraction, KL or None); an entry matches a variant whose
  overrides include every one of its (field, value) pairs.
  """
  return [tuple(entry[1:]) for entry in published or ()
          if all(k in variant.overrides and variant.overrides[k] == v
                 for k, v in entry[0].items())]


def _published_cell(entries) -> str:
  """'PacGAN Table 1, GAN: 6.3 / 98.2 % / 0.45' for each published row of a variant."""
  cells = []
  for source, modes, hq, kl in entries or ():
    kl_text = '-' if kl is None else f'{kl:.2f}'
    cells.append(f'{source}: {modes:g} / {100 * hq:.1f} % / {kl_text}')
  return '<br>'.join(cells) or '-'


def summary_table(rows: list[dict], variants: list[Variant], *, num_modes: int,
                  published: list | None = None) -> str:
  """Markdown: mean ± std (ddof = 1) and standard error over seeds, per variant.

  Runs that went NaN count with their final metrics (a NaN generator covers no
  mode: 0 modes, 0% high quality), so divergence lowers the mean instead of
  vanishing from it; failed runs have no metrics and are only counted.
  `published` (see `published_rows`) puts published rows beside the measurement.
  """
  lines = [f'| variant | runs (ok / nan / failed) | modes (of {num_modes}) | '
           'high quality % | KL(modes ‖ uniform) | published: modes / HQ / KL | '
           'steps/s (all seeds) |',
           '|---|---|---|---|---|---|---|']
  for variant in variants:
    rs = [r for r in rows if r['variant'] == variant.name]
    if not rs:
      continue
    counts = {s: sum(r['status'] == s for r in rs) for s in ('ok', 'nan', 'failed')}
    scored = [r for r in rs if r['status'] != 'failed']
    speed = scored[0]['steps_per_s'] if scored else '-'
    lines.append(
        f'| {variant.name} | {counts["ok"]} / {counts["nan"]} / {counts["failed"]} | '
        f'{_mean_std([float(r["modes"]) for r in scored])} | '
        f'{_mean_std([float(r["high_quality"]) for r in scored], 100.0, 1)} | '
        f'{_mean_std([float(r["kl"]) for r in scored], 1.0, 3)} | '
        f'{_published_cell(published_rows(published, variant))} | {speed} |')
  return '\n'.join(lines) + '\n'


def _save_result(path: str, result: seeds_lib.RunResult) -> None:
  np.savez_compressed(path, **{f.name: getattr(result, f.name)
                               for f in dataclasses.fields(result)})


def _load_result(path: str) -> seeds_lib.RunResult | None:
  if not os.path.exists(path):
    return None
  with np.load(path) as data:
    values = {f.name: data[f.name] for f in dataclasses.fields(seeds_lib.RunResult)}
  values['wall_s'] = float(values['wall_s'])
  values['steps_per_s'] = float(values['steps_per_s'])
  return seeds_lib.RunResult(**values)


def _file_name(name: str) -> str:
  return ''.join(c if c.isalnum() or c in '=.,-_' else '_' for c in name)


def write_figures(workdir: str, variants: list[Variant], results: dict[str, seeds_lib.RunResult],
                  centers: np.ndarray, strip_pair: tuple[str, str] | None,
                  published: list | None = None) -> None:
  done = [v.name for v in variants if v.name in results]
  if not done:
    return
  plotting.modes_vs_quality(
      {n: (results[n].modes[:, -1], results[n].high_quality[:, -1]) for n in done},
      os.path.join(workdir, 'modes_vs_quality.png'), num_modes=len(centers),
      published={v.name: published_rows(published, v) for v in variants
                 if v.name in results})
  label = lambda n: n.replace(',', '\n')  # row titles fit beside the panels
  panels = {label(n): list(results[n].final_samples) for n in done}
  subtitles = {label(n): [f'{int(m)} modes, {100 * h:.0f}% HQ' for m, h in
                          zip(results[n].modes[:, -1], results[n].high_quality[:, -1])]
               for n in done}
  plotting.mixture_sample_grid(panels, centers, os.path.join(workdir, 'samples.png'),
                               subtitles=subtitles)
  plotting.mode_curves({n: (results[n].steps, results[n].modes, results[n].high_quality)
                        for n in done},
                       os.path.join(workdir, 'modes_over_training.png'),
                       num_modes=len(centers))
  if strip_pair and all(n in results for n in strip_pair):
    rows = {}
    for n in strip_pair:
      r = results[n]
      # At most 6 snapshots, evenly spaced, always including the last.
      idx = np.unique(np.linspace(0, len(r.steps) - 1, min(6, len(r.steps))).round()
                      .astype(int))
      rows[label(n)] = [(int(r.steps[i]), r.strip_samples[i]) for i in idx]
    plotting.mixture_strip(rows, centers, os.path.join(workdir, 'strip.png'))


def _strip_pair(variants: list[Variant]) -> tuple[str, str] | None:
  """The plain and the most-unrolled variant that share every other override."""
  def rest(v):
    return {k: x for k, x in v.overrides.items() if k != 'unroll.steps'}
  plain = [v for v in variants if v.overrides.get('unroll.steps', 0) == 0]
  for p in plain:
    partners = [v for v in variants if rest(v) == rest(p)
                and v.overrides.get('unroll.steps', 0) > 0]
    if partners:
      best = max(partners, key=lambda v: v.overrides['unroll.steps'])
      return p.name, best.name
  return None


def _seeds(config: ml_collections.ConfigDict) -> list[int]:
  """config.seed, config.seed + 1, ...: `config.sweep.num_seeds` of them."""
  num_seeds = int(config.sweep.num_seeds)
  if num_seeds < 1:
    raise ValueError(f'config.sweep.num_seeds={num_seeds} must be >= 1.')
  return [int(config.seed) + i for i in range(num_seeds)]


def run_sweep(config: ml_collections.ConfigDict, sweep_fn: Callable, workdir: str,
              *, only: str | None = None,
              published: list | None = None) -> str:
  """Runs every variant not yet in `workdir`/results.csv; returns the markdown table.

  `only`, if given, is a regular expression: only variants whose name it matches
  (re.search) are run, e.g. 'non_saturating,unroll.steps=(0|10)$'; one that
  matches no variant is an error. A variant may override `sweep.num_seeds`.
  `published` (a config module's PUBLISHED) puts published rows beside the
  measured ones in results.md and modes_vs_quality.png.
  """
  variants = expand(sweep_fn, config)
  if only is not None and not any(re.search(only, v.name) for v in variants):
    raise ValueError(f'--only={only!r} matches no variant; the variants are: '
                     + '; '.join(v.name for v in variants))
  configs = {v.name: apply_overrides(config, v.overrides) for v in variants}
  for cfg in configs.values():
    _seeds(cfg)  # every variant's seed count is checked before anything is written
  os.makedirs(os.path.join(workdir, 'variants'), exist_ok=True)
  csv_path = os.path.join(workdir, 'results.csv')
  centers, _ = input_pipeline.mixture_modes(config.data)
  strip_pair = _strip_pair(variants)
  sweep_start = time.perf_counter()

  results: dict[str, seeds_lib.RunResult] = {}
  todo = []
  finished = {r['variant'] for r in read_rows(csv_path)}
  for v in variants:
    npz = os.path.join(workdir, 'variants', _file_name(v.name) + '.npz')
    if v.name in finished:
      loaded = _load_result(npz)
      if loaded is not None:
        results[v.name] = loaded
    elif only is None or re.search(only, v.name):
      todo.append(v)
  if finished:
    print(f'{len(finished)} variants already in {csv_path}; {len(todo)} to run.')

  for i, v in enumerate(todo):
    t0 = time.perf_counter()
    seeds = _seeds(configs[v.name])
    try:
      result = seeds_lib.train_and_evaluate(configs[v.name], seeds, desc=f'[{i + 1}/{len(todo)}] {v.name}')
    except Exception as e:  # pylint: disable=broad-except
      # A broken variant is a result too; the rest of the sweep goes on.
      error = f'{type(e).__name__}: {e}'.replace('\n', ' ')[:500]
      traceback.print_exc()
      append_rows(csv_path, _failed_rows(v, seeds, error, time.perf_counter() - t0))
      print(f'[{i + 1}/{len(todo)}] {v.name}: FAILED ({error})', flush=True)
      continue
    _save_result(os.path.join(workdir, 'variants', _file_name(v.name) + '.npz'), result)
    append_rows(csv_path, _rows(v, seeds, result))
    results[v.name] = result
    print(f'[{i + 1}/{len(todo)}] {v.name}: modes {result.modes[:, -1].tolist()}, '
          f'high quality {np.round(100 * result.high_quality[:, -1], 1).tolist()}%, '
          f'{result.wall_s:.0f} s', flush=True)
    write_figures(workdir, variants, results, centers, strip_pair, published)

  write_figures(workdir, variants, results, centers, strip_pair, published)
  rows = read_rows(csv_path)
  table = summary_table(rows, variants, num_modes=len(centers), published=published)
  # Wall time of every variant (compilation included), whichever invocation ran it.
  ran = [v for v in variants if any(r['variant'] == v.name for r in rows)]
  wall = sum(float(next(r for r in rows if r['variant'] == v.name)['wall_s']) for v in ran)
  seed_counts = sorted({len(_seeds(configs[v.name])) for v in ran})
  header = (f'# {config.data.name} ({config.sweep.get("protocol", "")} protocol): '
            f'{len(ran)} of {len(variants)} variants x '
            f'{"/".join(str(n) for n in seed_counts)} seeds\n\n'
            f'{int(config.train.num_steps)} steps, batch {int(config.train.batch_size)}, '
            f'{int(config.eval.num_samples)} samples per evaluation from one fixed z; '
            'high quality = within 3 std of the nearest mode (strict); a mode is covered '
            'if it is the nearest mode of at least one high-quality sample; KL of the '
            'high-quality samples\' mode histogram to uniform (PacGAN\'s definitions). '
            'Mean ± std (ddof = 1) over seeds, and the standard error. Published rows: '
            'their own protocol (see the config). Training wall time, all variants: '
            f'{wall:.0f} s.\n\n')
  with open(os.path.join(workdir, 'results.md'), 'w') as f:
    f.write(header + table)
  print(f'Sweep done in {time.perf_counter() - sweep_start:.0f} s (this invocation).')
  return table


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  try:
    if FLAGS.config is None:
      raise ValueError('--config is required, e.g. --config experiments/mode_collapse_ring.py')
    FLAGS.config.keys()  # ml_collections loads the file lazily; its errors surface here
    if FLAGS.workdir is None:
      FLAGS.workdir = main_lib.default_workdir(FLAGS['config'].config_filename)
      print(f'gan_jax.sweep: writing to --workdir={FLAGS.workdir}', file=sys.stderr)
    main_lib.check_workdir(FLAGS.workdir)
    module = load_config_module(FLAGS['config'].config_filename)
    table = run_sweep(FLAGS.config, module.sweep, FLAGS.workdir, only=FLAGS.only,
                      published=getattr(module, 'PUBLISHED', None))
  except (ValueError, FileNotFoundError, main_lib.CommandLineError) as e:
    print(f'gan_jax.sweep: error: {" ".join(str(e).split())}', file=sys.stderr)
    sys.exit(2)
  print(table)


if __name__ == '__main__':
  # Flags live here, not at import time, so that tests can import this module
  # next to gan_jax.main (which defines --config too).
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  from gan_jax import main as main_lib  # pylint: disable=g-import-not-at-top

  FLAGS = flags.FLAGS
  config_flags.DEFINE_config_file('config', None, 'A config file with a sweep(add) '
                                  'function, e.g. experiments/mode_collapse_ring.py.',
                                  lock_config=True)
  flags.DEFINE_string('workdir', None, 'Directory for results.csv, results.md and plots '
                      '(default: runs/<config file name>[_<variant>]).')
  flags.DEFINE_string('only', None, 'A regular expression: run only the variants whose '
                      "name it matches, e.g. 'non_saturating,unroll.steps=(0|10)$'.")

  def parse_or_exit(argv):
    # The one-paragraph handler of gan_jax.main: a bad override is no traceback.
    try:
      return main_lib.parse_flags(argv, FLAGS)
    except main_lib.CommandLineError as e:
      print(f'gan_jax.sweep: error: {e}', file=sys.stderr)
      sys.exit(2)

  app.run(main, flags_parser=parse_or_exit)
