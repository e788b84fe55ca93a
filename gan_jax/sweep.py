"""Runs a config's sweep of GANs on any dataset: variants x seeds, one table, a few figures.

    python -m gan_jax.sweep --config experiments/mode_collapse_ring.py --workdir runs/ring_sweep
    python -m gan_jax.sweep --config experiments/mode_collapse_stacked.py --workdir runs/stacked_sweep

The config file defines, next to `get_config()`, a `sweep(add)` function in the
style of flax's `hparam_sweep.py`: every call `add(**overrides)` is one variant,
its overrides keyed by flattened config field names,

    def sweep(add):
      for loss in ('minimax', 'non_saturating', 'wasserstein_gp'):
        for k in (0, 1, 5, 10):
          add(loss=loss, **{'unroll.steps': k})

and every variant is trained for `config.sweep.num_seeds` seeds (config.seed,
config.seed + 1, ...). How depends on the data's kind
(`input_pipeline.get_info(config.data).kind`, never its name):

  'mixture' (2-D ring / grid): the seeds of a variant are vmapped into one
    compiled program (`gan_jax.seeds`), real data is drawn on the device, and
    the program runs `config.sweep.eval_every` steps per call; after each call
    all seeds are evaluated on `config.eval.num_samples` samples from a fixed z
    with `metrics.mixture_metrics` (VEEGAN / PacGAN protocol).
  'image' (Fashion-MNIST, MNIST, stacked data, the CGAN configs): each seed is
    one ordinary `gan_jax.main` run, `train.train_and_evaluate(config with
    seed s, <workdir>/runs/<variant>/seed_<s>)`, one after the other
    (`gan_jax.image_seeds` says why they are not vmapped); its final
    evaluation (`gan_jax.evaluation`: label accuracy for a CGAN, the
    classifier Fréchet distance and score, stacked modes and KL for stacked
    data, whatever config.eval.classifier allows) is the seed's row.

The workdir of a mixture sweep receives, as variants finish:
  sweep.json                the variants, their seeds and what the tables need
  results.csv               one row per (variant, seed): final modes, high-quality
                            fraction, KL, status ('ok', 'nan' with the step it
                            diverged at, or 'failed' with the error), wall time
  results.md                mean +- std over seeds per variant
  drs.csv                   with config.eval.drs.enabled: each seed scored on its
                            discriminator-rejection-sampled samples (rejection.py),
                            a '<variant> + DRS' row of its own in results.md
  samples.png               final samples, one row per variant, one column per seed
  modes_over_training.png   modes covered and high-quality % over training
  strip.png                 Metz et al. (2016) Fig. 1: samples of the plain and the
                            most-unrolled GAN of the first loss over training (seed 0)
  variants/<name>.npz       each variant's evaluation history (for the plots)

An image sweep's workdir receives sweep.json, results.csv (IMAGE_CSV_FIELDS:
the same bookkeeping columns, the image metrics in place of the mixture ones,
empty where the data or config has none, and each seed's workdir), results.md
(`image_summary_table`: mean +- std over the ok seeds per variant; a metric no
row has is no column), samples.png (each seed's final sample grid, a row per
variant) and runs/<variant>/seed_<s>/, each a complete main workdir (samples/,
curves.png, metrics.jsonl, results.json, checkpoints/).

Training and evaluation of one variant's seeds is `seeds.train_and_evaluate`
(mixtures) or `image_seeds.run_seed` per seed (images); this module keeps the
variants, the CSV, the tables and the figures.

Rerunning the same command skips the (variant, seed) pairs already in a results
file, so an interrupted sweep resumes at the variant it was in (an image seed
stopped mid-run resumes from its own last checkpoint). A run that goes NaN or a
variant (for images: a seed) that raises is recorded as such, never dropped.
A variant must not change the data's kind: the base config's kind decides.

Splitting a sweep over jobs and hosts, with no coordinator: `--num_shards N
--shard_index i` (or a SLURM array's SLURM_ARRAY_TASK_COUNT / SLURM_ARRAY_TASK_ID)
runs every N-th (variant, seed) pair (`--shard_by=variant`: whole variants,
balanced by cost) into results.shard-00i-of-00N.csv of the shared workdir;
`--merge --workdir W` builds results.md and the figures from whatever shards
have finished and lists the missing pairs. On a CPU the default
is one process per core, each confined to its core (`--processes`), merged at the end, for
sweeps long enough that training, not compilation, dominates.
"""

from __future__ import annotations

import ast
import copy
import csv
import dataclasses
import glob
import inspect
import json
import math
import os
import re
import subprocess
import sys
import time
import traceback
from typing import Any, Callable

from gan_jax import xla_flags

if __name__ == '__main__':
  # Must happen before JAX is imported. A child of `run_processes` also gets its
  # own core ($GAN_JAX_PIN_CORE): the XLA flag alone leaves XLA on every core.
  xla_flags.pin_cpu_to_one_thread()
  xla_flags.pin_to_core_from_env()

import ml_collections  # pylint: disable=g-import-not-at-top
import numpy as np

from gan_jax import config_base
from gan_jax import image_seeds
from gan_jax import input_pipeline
from gan_jax import plotting
from gan_jax import rejection
from gan_jax import seeds as seeds_lib
from gan_jax import train
from gan_jax.datasets import base as data_base

# The data kinds `run_sweep` and `merge` dispatch on (`DataInfo.kind`), never a name.
MIXTURE, IMAGE = data_base.MIXTURE, data_base.IMAGE

CSV_FIELDS = ('variant', 'seed', 'status', 'step', 'modes', 'high_quality', 'kl',
              'kl_all', 'diverged_at', 'wall_s', 'steps_per_s', 'error', 'overrides')
# A mixture sweep with config.eval.drs.enabled also writes drs.csv (per shard, like
# results.csv): the same seeds scored on their DRS-accepted samples, a file of its
# own so that raw and rejection-sampled numbers are never mixed (`merge` shows
# them as separate rows).
DRS_CSV_FIELDS = ('variant', 'seed', 'status', 'modes', 'high_quality', 'kl', 'kl_all',
                  'accepted', 'candidates', 'acceptance', 'gamma_percentile', 'wall_s')
# An image sweep's results.csv: the same bookkeeping columns, the image metrics
# instead of the mixture ones (empty where the data or the config has none, e.g.
# every metric without eval.classifier) and each seed's main workdir. A second
# layout rather than extra empty columns in CSV_FIELDS, so that the mixture
# results files (and sweeps resuming into them) keep their header.
IMAGE_CSV_FIELDS = (('variant', 'seed', 'status', 'step') + image_seeds.METRICS
                    + ('diverged_at', 'wall_s', 'steps_per_s', 'error', 'overrides',
                       'workdir'))


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


def _drs_rows(variant: Variant, seeds: list[int], result: seeds_lib.RunResult,
              drs: rejection.DRSResult, metrics: dict[str, np.ndarray],
              gamma_percentile: float, wall_s: float) -> list[dict]:
  return [dict(
      variant=variant.name, seed=seed, status='nan' if int(result.diverged_at[i]) else 'ok',
      modes=int(metrics['modes'][i]), high_quality=f'{float(metrics["high_quality"][i]):.4f}',
      kl=f'{float(metrics["kl"][i]):.4f}', kl_all=f'{float(metrics["kl_all"][i]):.4f}',
      accepted=int(drs.accepted[i]), candidates=int(drs.candidates[i]),
      acceptance=f'{float(drs.acceptance[i]):.4f}', gamma_percentile=gamma_percentile,
      wall_s=f'{wall_s:.1f}') for i, seed in enumerate(seeds)]


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


def append_rows(path: str, rows: list[dict], fields: tuple[str, ...] = CSV_FIELDS) -> None:
  new = not os.path.exists(path)
  with open(path, 'a', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=fields)
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


def _speed_cell(rows: list[dict]) -> str:
  """steps/s of the programs that trained `rows`: one value, or 'min-max' if they differ.

  A variant's seeds may come from several programs (all seeds vmapped in one, or
  shards of a few): each row carries its own program's rate, for all of that
  program's seeds together, so the first row's rate alone would misstate the rest.
  """
  speeds = sorted({float(r['steps_per_s']) for r in rows if r.get('steps_per_s')})
  if not speeds:
    return '-'
  if len(speeds) == 1:
    return f'{speeds[0]:.1f}'
  return f'{speeds[0]:.1f}-{speeds[-1]:.1f}'


def summary_table(rows: list[dict], variants: list[Variant], *, num_modes: int,
                  published: list | None = None, drs_rows: list[dict] = ()) -> str:
  """Markdown: mean ± std (ddof = 1) and standard error over seeds, per variant.

  Runs that went NaN count with their final metrics (a NaN generator covers no
  mode: 0 modes, 0% high quality), so divergence lowers the mean instead of
  vanishing from it; failed runs have no metrics and are only counted.
  `published` (see `published_rows`) puts published rows beside the measurement.
  `drs_rows` (drs.csv) add a row '<variant> + DRS' under a variant that has them:
  the same seeds scored on their rejection-sampled samples, with the acceptance
  rate in the last column.
  """
  lines = [f'| variant | runs (ok / nan / failed) | modes (of {num_modes}) | '
           'high quality % | KL(modes ‖ uniform) | published: modes / HQ / KL | '
           'steps/s (all seeds of a program) |',
           '|---|---|---|---|---|---|---|']
  for variant in variants:
    rs = [r for r in rows if r['variant'] == variant.name]
    if not rs:
      continue
    counts = {s: sum(r['status'] == s for r in rs) for s in ('ok', 'nan', 'failed')}
    scored = [r for r in rs if r['status'] != 'failed']
    speed = _speed_cell(scored)
    lines.append(
        f'| {variant.name} | {counts["ok"]} / {counts["nan"]} / {counts["failed"]} | '
        f'{_mean_std([float(r["modes"]) for r in scored])} | '
        f'{_mean_std([float(r["high_quality"]) for r in scored], 100.0, 1)} | '
        f'{_mean_std([float(r["kl"]) for r in scored], 1.0, 3)} | '
        f'{_published_cell(published_rows(published, variant))} | {speed} |')
    ds = [r for r in drs_rows if r['variant'] == variant.name]
    if ds:
      percentiles = sorted({float(r['gamma_percentile']) for r in ds})
      lines.append(
          f'| {variant.name} + DRS (gamma: percentile '
          f'{"/".join(f"{p:g}" for p in percentiles)}) | '
          f'{sum(r["status"] == "ok" for r in ds)} / {sum(r["status"] == "nan" for r in ds)}'
          f' / 0 | {_mean_std([float(r["modes"]) for r in ds])} | '
          f'{_mean_std([float(r["high_quality"]) for r in ds], 100.0, 1)} | '
          f'{_mean_std([float(r["kl"]) for r in ds], 1.0, 3)} | - | accepts '
          f'{_mean_std([float(r["acceptance"]) for r in ds], 100.0, 1)} % |')
  return '\n'.join(lines) + '\n'


def _save_result(path: str, result: seeds_lib.RunResult, seeds: list[int]) -> None:
  np.savez_compressed(path, seeds=np.asarray(seeds), **{
      f.name: getattr(result, f.name) for f in dataclasses.fields(result)})


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


def final_points(rows: list[dict], variants: list[Variant]
                 ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """{variant: (final modes (S,), final high-quality fraction (S,))} of its 'ok' rows.

  From the results files, not the per-step histories (variants/*.npz), so that
  modes_vs_quality.png shows every variant measured, also those whose
  histories stayed on the machine that ran them.
  """
  points = {}
  for v in variants:
    ok = [r for r in rows if r['variant'] == v.name and r['status'] == 'ok']
    if ok:
      points[v.name] = (np.array([float(r['modes']) for r in ok]),
                        np.array([float(r['high_quality']) for r in ok]))
  return points


def write_figures(workdir: str, variants: list[Variant], results: dict[str, seeds_lib.RunResult],
                  centers: np.ndarray, strip_pair: tuple[str, str] | None,
                  published: list | None = None,
                  points: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> None:
  """modes_vs_quality.png of `points` (default: the results' last evaluation); the
  samples, per-step curves and strip of the variants in `results`."""
  if points is None:
    points = {v.name: (results[v.name].modes[:, -1], results[v.name].high_quality[:, -1])
              for v in variants if v.name in results}
  if points:
    plotting.modes_vs_quality(
        points, os.path.join(workdir, 'modes_vs_quality.png'), num_modes=len(centers),
        published={v.name: published_rows(published, v) for v in variants
                   if v.name in points})
  done = [v.name for v in variants if v.name in results]
  if not done:
    return
  _write_figures(workdir, results, done, centers, strip_pair)


def _write_figures(workdir, results, done, centers, strip_pair):
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
  if 'sweep' not in config or 'num_seeds' not in config.sweep:
    raise ValueError('the config has no sweep.num_seeds field; a sweep config sets '
                     'c.sweep = ml_collections.ConfigDict(dict(num_seeds=...)) in '
                     'get_config() (see experiments/mode_collapse_stacked.py).')
  num_seeds = int(config.sweep.num_seeds)
  if num_seeds < 1:
    raise ValueError(f'config.sweep.num_seeds={num_seeds} must be >= 1.')
  return [int(config.seed) + i for i in range(num_seeds)]


def shard_file(workdir: str, num_shards: int, shard_index: int, suffix: str = '.csv',
               prefix: str = 'results') -> str:
  """results.csv for an unsharded sweep, results.shard-002-of-004.csv for shard 2 of 4."""
  if num_shards == 1:
    return os.path.join(workdir, prefix + suffix)
  return os.path.join(workdir, f'{prefix}.shard-{shard_index:03d}-of-{num_shards:03d}{suffix}')


def _npz_path(workdir: str, name: str, num_shards: int, shard_index: int) -> str:
  tag = '' if num_shards == 1 else f'.shard-{shard_index:03d}-of-{num_shards:03d}'
  return os.path.join(workdir, 'variants', _file_name(name) + tag + '.npz')


def all_rows(workdir: str, prefix: str = 'results') -> list[dict]:
  """The rows of every results file in `workdir` (any shard layout), first one per pair.

  A (variant, seed) pair measured twice (a rerun under another layout) keeps the
  row that was written first. `prefix='drs'`: the DRS rows instead.
  """
  rows, seen = [], set()
  for path in sorted(glob.glob(os.path.join(workdir, prefix + '*.csv'))):
    for r in read_rows(path):
      key = (r['variant'], int(r['seed']))
      if key not in seen:
        seen.add(key)
        rows.append(dict(r, _file=os.path.basename(path)))
  return rows


SHARD_BY = ('pair', 'variant')

# The cost of one training step with a K-step lookahead, in K = 0 steps: 1 + K c.
# Measured on one core with issue #15's ring nets (README, "The K = 10 step"):
# K = 0 0.33 ms, K = 10 exact 2.28 ms, first order 1.18 ms per step.
LOOKAHEAD_COST_PER_STEP = {True: 0.6, False: 0.26}  # keyed by unroll.exact

# `by='variant'` falls back to pairs when its busiest shard would carry more than
# this share above an equal split (e.g. one variant costing most of the sweep).
MAX_VARIANT_IMBALANCE = 0.1


def variant_cost(config: ml_collections.ConfigDict) -> float:
  """A variant's training cost in K = 0 seed-steps: steps x seeds x (1 + K c)."""
  unroll = config.get('unroll', ml_collections.ConfigDict())
  k = int(unroll.get('steps', 0))
  per_step = 1.0 + k * LOOKAHEAD_COST_PER_STEP[bool(unroll.get('exact', True))]
  return float(config.train.num_steps) * len(_seeds(config)) * per_step


def _whole_variants(variants: list[Variant], configs: dict[str, ml_collections.ConfigDict],
                    num_shards: int) -> list[dict[str, list[int]]] | None:
  """Whole variants per shard, the costliest first onto the least loaded shard.

  None where that leaves a shard idle or the busiest shard more than
  MAX_VARIANT_IMBALANCE above total / num_shards.
  """
  if len(variants) < num_shards:
    return None
  costs = {v.name: variant_cost(configs[v.name]) for v in variants}
  loads = [0.0] * num_shards
  shards: list[dict[str, list[int]]] = [{} for _ in range(num_shards)]
  # Ties keep sweep order (a stable sort), so every shard computes the same split.
  for v in sorted(variants, key=lambda v: -costs[v.name]):
    i = loads.index(min(loads))
    loads[i] += costs[v.name]
    shards[i][v.name] = _seeds(configs[v.name])
  if max(loads) > (1 + MAX_VARIANT_IMBALANCE) * sum(loads) / num_shards:
    return None
  return shards


def shard_pairs(variants: list[Variant], configs: dict[str, ml_collections.ConfigDict],
                num_shards: int, shard_index: int, *, by: str = 'pair',
                only: str | None = None) -> dict[str, list[int]]:
  """The seeds of each variant that shard `shard_index` of `num_shards` runs.

  by='pair': the (variant, seed) pairs are numbered in sweep order, variant-major,
  and a shard takes every num_shards-th one, so the shards of a sweep get equal
  shares of every variant (and of its cost) whatever the number of seeds; but
  every shard then compiles every variant's program.
  by='variant': each shard trains whole variants (of those `only` selects),
  balanced by `variant_cost`, so each program is compiled once; the pair split
  where whole variants cannot be balanced (`_whole_variants`). `--processes`
  uses this one.
  """
  if not (isinstance(num_shards, int) and num_shards >= 1):
    raise ValueError(f'--num_shards={num_shards!r} must be an integer >= 1.')
  if not (isinstance(shard_index, int) and 0 <= shard_index < num_shards):
    raise ValueError(f'--shard_index={shard_index!r} must lie in [0, --num_shards='
                     f'{num_shards}).')
  if by not in SHARD_BY:
    raise ValueError(f'--shard_by={by!r} is not one of {", ".join(SHARD_BY)}.')
  if by == 'variant':
    chosen = [v for v in variants if only is None or re.search(only, v.name)]
    split = _whole_variants(chosen, configs, num_shards)
    if split is not None:
      return split[shard_index]
  pairs = [(v.name, seed) for v in variants for seed in _seeds(configs[v.name])]
  mine: dict[str, list[int]] = {}
  for j, (name, seed) in enumerate(pairs):
    if j % num_shards == shard_index:
      mine.setdefault(name, []).append(seed)
  return mine


def _check_drs(config: ml_collections.ConfigDict, variants: list[Variant],
               configs: dict[str, ml_collections.ConfigDict], only: str | None) -> bool:
  """Whether the sweep runs DRS; raises, before anything is written, if it cannot.

  DRS (config.eval.drs.enabled) needs a 2-D mixture, and each variant that will
  run must pass `rejection.check_config` (a sigmoid loss, no packing).
  """
  drs = config.get('eval', {}).get('drs')
  if drs is None or not drs.get('enabled', False):
    return False
  if input_pipeline.get_info(config.data).kind != MIXTURE:
    raise ValueError(f'config.eval.drs.enabled=True scores 2-D mixture samples; '
                     f'config.data.name={config.data.name!r} is not one. Valid choices: '
                     f'{", ".join(input_pipeline.MIXTURE_NAMES)}.')
  bad = []
  for v in variants:
    if only is not None and not re.search(only, v.name):
      continue
    try:
      rejection.check_config(configs[v.name])
    except ValueError as e:
      bad.append(f'{v.name} ({e})')
  if bad:
    raise ValueError('config.eval.drs.enabled=True cannot apply to the variants '
                     + '; '.join(bad) + '. Leave them out with --only.')
  return True


def _write_atomic(path: str, text: str) -> None:
  tmp = f'{path}.tmp{os.getpid()}'
  with open(tmp, 'w') as f:
    f.write(text)
  os.replace(tmp, path)


def _write_plan(workdir: str, config: ml_collections.ConfigDict, variants: list[Variant],
                configs: dict[str, ml_collections.ConfigDict], published) -> None:
  """sweep.json: everything `merge` needs, so that it reads no config file."""
  centers, _ = input_pipeline.mixture_modes(config.data)
  plan = dict(
      data=str(config.data.name), protocol=str(config.sweep.get('protocol', '')),
      num_steps=int(config.train.num_steps), batch_size=int(config.train.batch_size),
      eval_samples=int(config.eval.num_samples),
      centers=np.asarray(centers, float).tolist(),
      variants=[dict(name=v.name, overrides=repr(v.overrides),
                     seeds=_seeds(configs[v.name])) for v in variants],
      published=[[repr(e[0])] + list(e[1:]) for e in published or ()])
  _write_atomic(os.path.join(workdir, 'sweep.json'), json.dumps(plan, indent=1) + '\n')


def _merged_result(workdir: str, name: str) -> seeds_lib.RunResult | None:
  """A variant's RunResult from its npz files (one per shard that ran it), seeds in order."""
  parts = []
  for path in glob.glob(os.path.join(workdir, 'variants', _file_name(name) + '*.npz')):
    stem = os.path.basename(path)[:-len('.npz')]
    if stem != _file_name(name) and not re.fullmatch(
        re.escape(_file_name(name)) + r'\.shard-\d+-of-\d+', stem):
      continue  # another variant whose name starts with this one's
    result = _load_result(path)
    with np.load(path) as data:
      seeds = data['seeds'].tolist() if 'seeds' in data else list(range(len(result.modes)))
    parts.append((seeds, result))
  if not parts:
    return None
  parts.sort(key=lambda p: min(p[0]))
  order = np.argsort(np.concatenate([p[0] for p in parts]), kind='stable')
  per_seed = lambda field: np.concatenate([getattr(p[1], field) for p in parts])[order]
  first = parts[0][1]
  return dataclasses.replace(
      first, modes=per_seed('modes'), high_quality=per_seed('high_quality'),
      kl=per_seed('kl'), kl_all=per_seed('kl_all'), diverged_at=per_seed('diverged_at'),
      final_samples=per_seed('final_samples'),
      steps_per_s=float(np.mean([p[1].steps_per_s for p in parts])))


def merge(workdir: str) -> tuple[str, list[tuple[str, int]]]:
  """Builds results.md and the figures from every shard that has finished.

  Returns (the markdown table, the (variant, seed) pairs not measured yet).
  """
  plan_path = os.path.join(workdir, 'sweep.json')
  if not os.path.exists(plan_path):
    raise FileNotFoundError(f'--workdir {workdir!r} holds no sweep.json: it is not a '
                            'sweep workdir (or no shard has started yet).')
  try:
    with open(plan_path) as f:
      plan = json.load(f)
  except ValueError as e:
    raise ValueError(f'{plan_path} is corrupt ({type(e).__name__}: {e}).') from None
  if not isinstance(plan, dict):
    raise ValueError(f'{plan_path} is corrupt (not a JSON object).')
  if plan.get('kind', MIXTURE) == IMAGE:
    return _merge_images(workdir, plan, plan_path)
  try:
    variants = [Variant(v['name'], ast.literal_eval(v['overrides'])) for v in plan['variants']]
    seeds_of = {v['name']: [int(s) for s in v['seeds']] for v in plan['variants']}
    published = [(ast.literal_eval(e[0]),) + tuple(e[1:]) for e in plan['published']]
    centers = np.asarray(plan['centers'], float)
  except (ValueError, KeyError, TypeError, SyntaxError) as e:
    raise ValueError(f'{plan_path} is corrupt ({type(e).__name__}: {e}).') from None
  rows = [r for r in all_rows(workdir) if r['variant'] in seeds_of]
  have = {(r['variant'], int(r['seed'])) for r in rows}
  missing = [(v.name, s) for v in variants for s in seeds_of[v.name] if (v.name, s) not in have]
  results = {}
  for v in variants:
    if any(r['variant'] == v.name for r in rows):
      merged = _merged_result(workdir, v.name)
      if merged is not None:
        results[v.name] = merged
  write_figures(workdir, variants, results, centers, _strip_pair(variants), published,
                points=final_points(rows, variants))
  drs_rows = [r for r in all_rows(workdir, 'drs') if r['variant'] in seeds_of]
  table = summary_table(rows, variants, num_modes=len(centers), published=published,
                        drs_rows=drs_rows)
  # Training wall time: each results file timed its own share of a variant.
  wall = sum(float(r['wall_s']) for r in
             {(r['variant'], r['_file']): r for r in rows}.values())
  ran = [v for v in variants if any(r['variant'] == v.name for r in rows)]
  seed_counts = sorted({len(seeds_of[v.name]) for v in ran})
  files = sorted({r['_file'] for r in rows})
  header = (f'# {plan["data"]} ({plan["protocol"]} protocol): '
            f'{len(ran)} of {len(variants)} variants x '
            f'{"/".join(str(n) for n in seed_counts)} seeds\n\n'
            f'{plan["num_steps"]} steps, batch {plan["batch_size"]}, '
            f'{plan["eval_samples"]} samples per evaluation from one fixed z; '
            'high quality = within 3 std of the nearest mode (strict); a mode is covered '
            'if it is the nearest mode of at least one high-quality sample; KL of the '
            'high-quality samples\' mode histogram to uniform (PacGAN\'s definitions). '
            'Mean ± std (ddof = 1) over seeds, and the standard error. Published rows: '
            'their own protocol (see the config). Training wall time, all variants, '
            f'summed over processes: {wall:.0f} s. Merged from {", ".join(files) or "no file"}'
            + (f'; {len(missing)} (variant, seed) pairs not run yet.' if missing else '.')
            + '\n\n')
  _write_atomic(os.path.join(workdir, 'results.md'), header + table)
  return table, missing


def run_sweep(config: ml_collections.ConfigDict, sweep_fn: Callable, workdir: str,
              *, only: str | None = None, published: list | None = None,
              num_shards: int = 1, shard_index: int = 0, shard_by: str = 'pair') -> str:
  """Runs every (variant, seed) pair of this shard not yet measured; returns the table.

  `only`, if given, is a regular expression: only variants whose name it matches
  (re.search) are run, e.g. 'non_saturating,unroll.steps=(0|10)$'; one that
  matches no variant is an error. A variant may override `sweep.num_seeds`.
  `published` (a config module's PUBLISHED) puts published rows beside the
  measured ones in results.md and modes_vs_quality.png. `num_shards` /
  `shard_index` / `shard_by`: run this shard's (variant, seed) pairs
  (`shard_pairs`: every num_shards-th pair, or whole variants) into its own
  results file; pairs in any results file of the workdir
  count as done, so a sweep resumes under any layout. The table and figures are
  `merge`d from every file present.
  """
  variants = expand(sweep_fn, config)
  if only is not None and not any(re.search(only, v.name) for v in variants):
    raise ValueError(f'--only={only!r} matches no variant; the variants are: '
                     + '; '.join(v.name for v in variants))
  configs = {v.name: apply_overrides(config, v.overrides) for v in variants}
  # Every variant's seed count and the shard are checked before anything is written.
  mine = shard_pairs(variants, configs, num_shards, shard_index, by=shard_by, only=only)
  use_drs = _check_drs(config, variants, configs, only)
  if input_pipeline.get_info(config.data).kind == IMAGE:
    return _run_image_sweep(config, variants, configs, mine, workdir, only=only,
                            published=published, num_shards=num_shards,
                            shard_index=shard_index)
  os.makedirs(os.path.join(workdir, 'variants'), exist_ok=True)
  _write_plan(workdir, config, variants, configs, published)
  csv_path = shard_file(workdir, num_shards, shard_index)
  sweep_start = time.perf_counter()

  done = {(r['variant'], int(r['seed'])) for r in all_rows(workdir)}
  todo = [(v, [s for s in mine.get(v.name, []) if (v.name, s) not in done])
          for v in variants if only is None or re.search(only, v.name)]
  todo = [(v, seeds) for v, seeds in todo if seeds]
  if done:
    print(f'{len(done)} (variant, seed) pairs already measured in {workdir}; '
          f'{sum(len(s) for _, s in todo)} to run in this process.')

  for i, (v, seeds) in enumerate(todo):
    t0 = time.perf_counter()
    try:
      result, states = seeds_lib.train_and_evaluate_states(
          configs[v.name], seeds, desc=f'[{i + 1}/{len(todo)}] {v.name}')
      if use_drs:
        # Written before the variant's results rows: a sweep stopped in between
        # retrains the variant, and all_rows keeps the first DRS row per pair.
        t_drs = time.perf_counter()
        drs, drs_metrics = seeds_lib.drs_evaluate(configs[v.name], states)
        append_rows(shard_file(workdir, num_shards, shard_index, prefix='drs'),
                    _drs_rows(v, seeds, result, drs, drs_metrics,
                              float(config.eval.drs.gamma_percentile),
                              time.perf_counter() - t_drs), DRS_CSV_FIELDS)
        print(f'[{i + 1}/{len(todo)}] {v.name} + DRS: modes '
              f'{drs_metrics["modes"].astype(int).tolist()}, '
              f'high quality {np.round(100 * drs_metrics["high_quality"], 1).tolist()}%, '
              f'acceptance {np.round(100 * drs.acceptance, 1).tolist()}%', flush=True)
      del states
    except Exception as e:  # pylint: disable=broad-except
      # A broken variant is a result too; the rest of the sweep goes on.
      error = f'{type(e).__name__}: {e}'.replace('\n', ' ')[:500]
      traceback.print_exc()
      append_rows(csv_path, _failed_rows(v, seeds, error, time.perf_counter() - t0))
      print(f'[{i + 1}/{len(todo)}] {v.name}: FAILED ({error})', flush=True)
      continue
    _save_result(_npz_path(workdir, v.name, num_shards, shard_index), result, seeds)
    append_rows(csv_path, _rows(v, seeds, result))
    print(f'[{i + 1}/{len(todo)}] {v.name}: modes {result.modes[:, -1].tolist()}, '
          f'high quality {np.round(100 * result.high_quality[:, -1], 1).tolist()}%, '
          f'{result.wall_s:.0f} s', flush=True)
    if i < len(todo) - 1:  # the last one is merged by _finish
      merge(workdir)

  return _finish(workdir, sweep_start)


# ---------------------------------------------------------------------------
# Image datasets: each (variant, seed) is one gan_jax.main run (image_seeds.py).
# ---------------------------------------------------------------------------

# The image table's metric columns: (CSV field, header, scale, digits). A column
# that no row has a value for (e.g. stacked modes of a CGAN) is left out.
IMAGE_COLUMNS = (
    ('label_accuracy', 'label accuracy %', 100.0, 1),
    ('classifier_fd', 'classifier FD', 1.0, 2),
    ('stacked_modes', 'stacked modes (of {n})', 1.0, 1),
    ('stacked_kl', 'stacked KL(modes ‖ uniform)', 1.0, 3),
    ('class_coverage', 'classes covered (of {n})', 1.0, 2),
    ('class_kl', 'KL(classes ‖ uniform)', 1.0, 3),
    ('classifier_score', 'classifier score', 1.0, 2),
)


def _image_row(variant: Variant, result: image_seeds.SeedResult, workdir: str) -> dict:
  row = dict(variant=variant.name, seed=result.seed, status=result.status,
             step=result.step, diverged_at=result.diverged_at,
             wall_s=f'{result.wall_s:.1f}',
             steps_per_s='' if math.isnan(result.steps_per_s) else f'{result.steps_per_s:.1f}',
             error=result.error, overrides=repr(variant.overrides),
             workdir=os.path.relpath(result.workdir, workdir))
  for k in image_seeds.METRICS:
    row[k] = f'{result.metrics[k]:.6g}' if k in result.metrics else ''
  return row


def _published_image_cell(entries) -> str:
  """'Metz et al. Table 2, 1/4 D, K = 0: 30.6 / 5.99' (modes / KL) per published row."""
  return '<br>'.join(f'{source}: {modes:g} / {kl:.2f}' for source, modes, kl in entries or ()
                     ) or '-'


def image_summary_table(rows: list[dict], variants: list[Variant], *, num_classes: int,
                        published: list | None = None) -> str:
  """Markdown for an image sweep: mean ± std (ddof = 1) and standard error over seeds.

  Only 'ok' runs have final metrics: a seed that diverged ('nan') or failed is
  counted, not averaged (its workdir keeps the last good checkpoint, not an
  evaluation of the diverged G). `published` entries are (overrides, source,
  stacked modes, stacked KL), matched as in `published_rows`; the column is
  there only when some variant has published rows. steps/s: the mean over seeds
  of each seed's training speed.
  """
  columns = [c for c in IMAGE_COLUMNS if any(r.get(c[0]) for r in rows)]
  published = published if any(published_rows(published, v) for v in variants) else None
  head = ['variant', 'runs (ok / nan / failed)'] + [
      c[1].format(n=num_classes) for c in columns]
  if published:
    head.append('published: modes / KL')
  head.append('steps/s (per seed)')
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for variant in variants:
    rs = [r for r in rows if r['variant'] == variant.name]
    if not rs:
      continue
    counts = {s: sum(r['status'] == s for r in rs) for s in ('ok', 'nan', 'failed')}
    scored = [r for r in rs if r['status'] == 'ok']
    cells = [variant.name, f'{counts["ok"]} / {counts["nan"]} / {counts["failed"]}']
    for field, _, scale, digits in columns:
      cells.append(_mean_std([float(r[field]) for r in scored if r.get(field)],
                             scale, digits))
    if published:
      cells.append(_published_image_cell(published_rows(published, variant)))
    speeds = [float(r['steps_per_s']) for r in scored if r.get('steps_per_s')]
    cells.append(f'{np.mean(speeds):.1f}' if speeds else '-')
    lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def _write_image_plan(workdir: str, config: ml_collections.ConfigDict,
                      variants: list[Variant], configs: dict[str, ml_collections.ConfigDict],
                      published) -> None:
  """sweep.json of an image sweep: what `merge` needs, so that it reads no config file."""
  plan = dict(
      kind=IMAGE, data=image_seeds.data_label(config),
      protocol=str(config.sweep.get('protocol', '')),
      num_steps=int(config.train.num_steps), batch_size=int(config.train.batch_size),
      eval_samples=int(config.eval.num_samples),
      classifier=str(config.eval.get('classifier') or ''),
      num_classes=image_seeds.num_classes(config),
      variants=[dict(name=v.name, overrides=repr(v.overrides),
                     seeds=_seeds(configs[v.name])) for v in variants],
      published=[[repr(e[0])] + list(e[1:]) for e in published or ()])
  _write_atomic(os.path.join(workdir, 'sweep.json'), json.dumps(plan, indent=1) + '\n')


def _image_sample_sheet(workdir: str, variants: list[Variant], rows: list[dict]) -> None:
  """samples.png: each variant's seeds' final sample grids, a row per variant."""
  panels = {}
  for v in variants:
    cells = []
    for r in sorted((r for r in rows if r['variant'] == v.name), key=lambda r: int(r['seed'])):
      title = f'seed {r["seed"]}'
      if r.get('stacked_modes'):
        title += f', {float(r["stacked_modes"]):.0f} modes'
      if r.get('label_accuracy'):
        title += f', {100 * float(r["label_accuracy"]):.0f}% labels'
      if r['status'] != 'ok':
        title += f' ({r["status"]})'
      cells.append((title, image_seeds.final_sample_path(os.path.join(workdir, r['workdir']))))
    panels[v.name] = cells
  image_seeds.sample_sheet(panels, os.path.join(workdir, 'samples.png'))


def _merge_images(workdir: str, plan: dict, plan_path: str
                  ) -> tuple[str, list[tuple[str, int]]]:
  """`merge` for an image sweep: results.md (`image_summary_table`) and samples.png."""
  try:
    variants = [Variant(v['name'], ast.literal_eval(v['overrides'])) for v in plan['variants']]
    seeds_of = {v['name']: [int(s) for s in v['seeds']] for v in plan['variants']}
    published = [(ast.literal_eval(e[0]),) + tuple(e[1:]) for e in plan['published']]
    num_classes = int(plan['num_classes'])
  except (ValueError, KeyError, TypeError, SyntaxError) as e:
    raise ValueError(f'{plan_path} is corrupt ({type(e).__name__}: {e}).') from None
  rows = [r for r in all_rows(workdir) if r['variant'] in seeds_of]
  have = {(r['variant'], int(r['seed'])) for r in rows}
  missing = [(v.name, s) for v in variants for s in seeds_of[v.name] if (v.name, s) not in have]
  _image_sample_sheet(workdir, variants, rows)
  table = image_summary_table(rows, variants, num_classes=num_classes, published=published)
  wall = sum(float(r['wall_s']) for r in rows)
  ran = [v for v in variants if any(r['variant'] == v.name for r in rows)]
  seed_counts = sorted({len(seeds_of[v.name]) for v in ran})
  files = sorted({r['_file'] for r in rows})
  classifier = (f'classifier metrics from {plan["classifier"]} on {plan["eval_samples"]} '
                'samples of one fixed z per seed (gan_jax.evaluation: label accuracy, '
                'the Fréchet distance in its features, stacked modes and KL of the mode '
                'histogram to uniform as in VEEGAN / PacGAN)' if plan['classifier'] else
                'no classifier metrics (config.eval.classifier is empty)')
  header = (f'# {plan["data"]} ({plan["protocol"] or "default"} protocol): '
            f'{len(ran)} of {len(variants)} variants x '
            f'{"/".join(str(n) for n in seed_counts)} seeds\n\n'
            f'{plan["num_steps"]} steps, batch {plan["batch_size"]}; each seed is a '
            f'gan_jax.main run in runs/<variant>/seed_<s>, its final evaluation tabulated: '
            f'{classifier}. Mean ± std (ddof = 1) over the ok seeds, and the standard '
            'error; diverged (nan) and failed seeds are counted, not averaged. Training '
            f'wall time, all seeds, summed over processes: {wall:.0f} s. Merged from '
            f'{", ".join(files) or "no file"}'
            + (f'; {len(missing)} (variant, seed) pairs not run yet.' if missing else '.')
            + '\n\n')
  _write_atomic(os.path.join(workdir, 'results.md'), header + table)
  return table, missing


def _check_header(path: str, fields: tuple[str, ...]) -> None:
  """A results file of another layout (a mixture sweep's) is not appended to."""
  if not os.path.exists(path):
    return
  with open(path, newline='') as f:
    header = next(csv.reader(f), None)
  if header is not None and tuple(header) != tuple(fields):
    raise ValueError(f'{path} has the columns {",".join(header)}, not those of an image '
                     'sweep; use another --workdir.')


def _run_image_sweep(config: ml_collections.ConfigDict, variants: list[Variant],
                     configs: dict[str, ml_collections.ConfigDict],
                     mine: dict[str, list[int]], workdir: str, *, only: str | None,
                     published: list | None, num_shards: int, shard_index: int) -> str:
  """`run_sweep` for image data: every pair of this shard is one main run, in order.

  The variant's missing evaluation classifier is trained first (once, under a
  lock: `image_seeds.prepare_classifier`); if that fails, the variant's seeds
  are recorded as failed. After each variant the table and samples.png are
  `merge`d from every results file present.
  """
  csv_path = shard_file(workdir, num_shards, shard_index)
  _check_header(csv_path, IMAGE_CSV_FIELDS)
  os.makedirs(os.path.join(workdir, image_seeds.RUNS_DIR), exist_ok=True)
  _write_image_plan(workdir, config, variants, configs, published)
  sweep_start = time.perf_counter()
  done = {(r['variant'], int(r['seed'])) for r in all_rows(workdir)}
  todo = [(v, [s for s in mine.get(v.name, []) if (v.name, s) not in done])
          for v in variants if only is None or re.search(only, v.name)]
  todo = [(v, seeds) for v, seeds in todo if seeds]
  total = sum(len(s) for _, s in todo)
  if done:
    print(f'{len(done)} (variant, seed) pairs already measured in {workdir}; '
          f'{total} to run in this process.')
  count = 0
  for v, seeds in todo:
    t0 = time.perf_counter()
    try:
      image_seeds.prepare_classifier(configs[v.name])
    except Exception as e:  # pylint: disable=broad-except
      error = f'{type(e).__name__}: {e}'.replace('\n', ' ')[:500]
      traceback.print_exc()
      append_rows(csv_path, [dict(
          variant=v.name, seed=s, status='failed', step=0, diverged_at=0,
          wall_s=f'{time.perf_counter() - t0:.1f}', error=error,
          overrides=repr(v.overrides), workdir='') for s in seeds], IMAGE_CSV_FIELDS)
      count += len(seeds)
      print(f'{v.name}: FAILED before training ({error})', flush=True)
      continue
    for s in seeds:
      count += 1
      result = image_seeds.run_seed(
          configs[v.name], s, image_seeds.seed_workdir(workdir, _file_name(v.name), s))
      append_rows(csv_path, [_image_row(v, result, workdir)], IMAGE_CSV_FIELDS)
      shown = ', '.join(f'{k} {x:.4g}' for k, x in result.metrics.items()) or 'no metrics'
      print(f'[{count}/{total}] {v.name} seed {s}: {result.status} ({shown}), '
            f'{result.wall_s:.0f} s' + (f'; {result.error}' if result.error else ''),
            flush=True)
    if count < total:  # the last one is merged by _finish
      merge(workdir)
  return _finish(workdir, sweep_start)


def _finish(workdir: str, sweep_start: float) -> str:
  """The merged table of every finished pair, and how many of the sweep's are missing."""
  table, missing = merge(workdir)
  print(f'Sweep done in {time.perf_counter() - sweep_start:.0f} s (this invocation)'
        + (f'; {len(missing)} (variant, seed) pairs of the sweep are not measured yet.'
           if missing else '.'))
  return table


def shard_command(argv: list[str], num_shards: int, shard_index: int,
                  shard_by: str = 'variant') -> list[str]:
  """This process's command line (`argv` = sys.argv) as shard `shard_index` of `num_shards`."""
  base, skip = [], False
  for a in argv[1:]:
    if skip:
      skip = False
    elif re.fullmatch(r'--((no)?processes|shard_by)', a):
      skip = a in ('--processes', '--shard_by')  # its value is the next argument
    elif not a.startswith(('--processes=', '--shard_by=')):
      base.append(a)
  return [sys.executable, '-m', 'gan_jax.sweep', *base, '--processes=1',
          f'--num_shards={num_shards}', f'--shard_index={shard_index}',
          f'--shard_by={shard_by}']


def run_processes(argv: list[str], processes: int, shard_by: str = 'variant') -> int:
  """Runs this command as `processes` one-core shard processes in parallel, then merges.

  The CPU default: one process per core, child i confined to core i by the OS's
  affinity mask (`xla_flags.pin_to_core`; XLA's own flags do not keep a process
  on one core). The shards are plain `--num_shards P --shard_index i
  --shard_by=variant` runs (whole variants per child, so no two children compile
  the same program), so a stopped run resumes with the same command.
  """
  env = dict(os.environ)
  env['XLA_FLAGS'] = env.get('XLA_FLAGS', xla_flags.CPU_SINGLE_THREAD)
  children = [subprocess.Popen(shard_command(argv, processes, i, shard_by),
                               env=dict(env, **{xla_flags.PIN_CORE_ENV: str(i)}))
              for i in range(processes)]
  codes = [c.wait() for c in children]
  return max(codes)


# Below this many seed-steps a sweep is mostly compilation: the ring's `:quick` sweep
# took 311 s as two processes on this 2-core machine (round 7, when every process
# compiled every variant), against 4,000 seed-steps of training.
MIN_SEED_STEPS_PER_EXTRA_PROCESS = 200_000


def default_processes(sweep_fn: Callable, config: ml_collections.ConfigDict,
                      only: str | None = None, *, sharded: bool = False) -> int:
  """One process per core (each on its own core) on a CPU for a sweep long enough to pay.

  1 on an accelerator, inside a sharded job (--num_shards / a SLURM array), or
  when the sweep trains fewer than MIN_SEED_STEPS_PER_EXTRA_PROCESS seed-steps per
  extra process.
  """
  import jax  # pylint: disable=g-import-not-at-top
  if jax.default_backend() != 'cpu' or sharded or 'SLURM_ARRAY_TASK_COUNT' in os.environ:
    return 1
  work = 0
  for v in expand(sweep_fn, config):
    if only is None or re.search(only, v.name):
      cfg = apply_overrides(config, v.overrides)
      work += int(cfg.train.num_steps) * len(_seeds(cfg))
  return max(1, min(os.cpu_count() or 1, 1 + work // MIN_SEED_STEPS_PER_EXTRA_PROCESS))


def _slurm_default(name: str, default: int) -> int:
  """A SLURM array job's shard from its environment (0-based), else `default`."""
  env = {'num_shards': 'SLURM_ARRAY_TASK_COUNT', 'shard_index': 'SLURM_ARRAY_TASK_ID'}[name]
  value = os.environ.get(env)
  if value is None:
    return default
  try:
    n = int(value)
  except ValueError:
    raise ValueError(f'the environment variable {env}={value!r} must be an integer.') from None
  if name == 'shard_index':
    n -= int(os.environ.get('SLURM_ARRAY_TASK_MIN', '0') or 0)
  return n


def main(argv):
  if len(argv) > 1:
    raise ValueError(f'unexpected arguments {" ".join(argv[1:])!r}; every setting is a '
                     '--flag or a --config.field override.')
  if FLAGS.merge:
    if FLAGS.workdir is None:
      raise ValueError('--merge needs --workdir, the sweep workdir whose shards to merge.')
    table, missing = merge(FLAGS.workdir)
    print(table)
    if missing:
      shown = '; '.join(f'{v} seed {s}' for v, s in missing[:20])
      print(f'gan_jax.sweep: {len(missing)} (variant, seed) pairs are not measured yet: '
            f'{shown}{" ..." if len(missing) > 20 else ""}', file=sys.stderr)
    return
  if FLAGS.config is None:
    raise ValueError('--config is required, e.g. --config experiments/mode_collapse_ring.py')
  FLAGS.config.keys()  # ml_collections loads the file lazily; its errors surface here
  if FLAGS.workdir is None:
    FLAGS.workdir = main_lib.default_workdir(FLAGS['config'].config_filename)
    print(f'gan_jax.sweep: writing to --workdir={FLAGS.workdir}', file=sys.stderr)
  main_lib.check_workdir(FLAGS.workdir)
  module = load_config_module(FLAGS['config'].config_filename)
  num_shards = (FLAGS.num_shards if FLAGS['num_shards'].present
                else _slurm_default('num_shards', 1))
  shard_index = (FLAGS.shard_index if FLAGS['shard_index'].present
                 else _slurm_default('shard_index', 0))
  processes = FLAGS.processes
  if processes is None:
    processes = default_processes(module.sweep, FLAGS.config, FLAGS.only,
                                  sharded=FLAGS['num_shards'].present)
  if processes < 1:
    raise ValueError(f'--processes={processes} must be >= 1.')
  if processes > 1:
    if num_shards != 1:
      raise ValueError(f'--processes={processes} runs its own shards; it cannot be combined '
                       f'with --num_shards={num_shards} (pass --processes=1).')
    # Everything is checked here first: a bad variant fails once, not in every child.
    variants = expand(module.sweep, FLAGS.config)
    if FLAGS.only is not None and not any(re.search(FLAGS.only, v.name) for v in variants):
      raise ValueError(f'--only={FLAGS.only!r} matches no variant; the variants are: '
                       + '; '.join(v.name for v in variants))
    for v in variants:
      _seeds(apply_overrides(FLAGS.config, v.overrides))
    print(f'gan_jax.sweep: {processes} processes, one core each (--processes=1 for one)',
          file=sys.stderr)
    code = run_processes(sys.argv, processes,
                         FLAGS.shard_by if FLAGS['shard_by'].present else 'variant')
    table, missing = merge(FLAGS.workdir)
    print(table)
    if FLAGS.only is not None:  # the pairs left out on purpose are not missing
      missing = [(v, s) for v, s in missing if re.search(FLAGS.only, v)]
    if code or missing:
      raise ValueError(f'{len(missing)} (variant, seed) pairs are not measured (a shard '
                       f'exited with {code}); rerun the same command to resume them.')
    return
  table = run_sweep(FLAGS.config, module.sweep, FLAGS.workdir, only=FLAGS.only,
                    published=getattr(module, 'PUBLISHED', None),
                    num_shards=num_shards, shard_index=shard_index,
                    shard_by=FLAGS.shard_by)
  if num_shards == 1:  # a shard's table is partial; `--merge` prints the whole one
    print(table)


def _main_or_exit(argv):
  try:
    main(argv)
  except (ValueError, FileNotFoundError, main_lib.CommandLineError) as e:
    print(f'gan_jax.sweep: error: {" ".join(str(e).split())}', file=sys.stderr)
    sys.exit(2)
  except train.Preempted as e:
    # An image seed stopped by SIGTERM / SIGINT after a checkpoint: rerun to resume.
    print(f'gan_jax.sweep: {e}', file=sys.stderr)
    sys.exit(main_lib.EXIT_PREEMPTED)
  except Exception as e:  # pylint: disable=broad-except
    # A bug: one paragraph, the traceback in <workdir>/error.log or a temporary file.
    sys.exit(errors.report_bug(e, program='gan_jax.sweep', workdir=FLAGS.workdir))


if __name__ == '__main__':
  # Flags live here, not at import time, so that tests can import this module
  # next to gan_jax.main (which defines --config too).
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  from gan_jax import errors  # pylint: disable=g-import-not-at-top
  from gan_jax import main as main_lib  # pylint: disable=g-import-not-at-top

  FLAGS = flags.FLAGS
  config_flags.DEFINE_config_file('config', None, 'A config file with a sweep(add) '
                                  'function, e.g. experiments/mode_collapse_ring.py.',
                                  lock_config=True)
  flags.DEFINE_string('workdir', None, 'Directory for results.csv, results.md and plots '
                      '(default: runs/<config file name>[_<variant>]).')
  flags.DEFINE_string('only', None, 'A regular expression: run only the variants whose '
                      "name it matches, e.g. 'non_saturating,unroll.steps=(0|10)$'.")
  flags.DEFINE_integer('num_shards', 1, 'Split the (variant, seed) pairs over this many '
                       'jobs (default: $SLURM_ARRAY_TASK_COUNT, else 1).')
  flags.DEFINE_integer('shard_index', 0, "This job's shard, 0-based (default: "
                       '$SLURM_ARRAY_TASK_ID - $SLURM_ARRAY_TASK_MIN, else 0).')
  flags.DEFINE_enum('shard_by', 'pair', list(SHARD_BY), "How shards split the sweep: "
                    "'pair', every num_shards-th (variant, seed) pair; 'variant', whole "
                    'variants balanced by their cost (each program compiled once; what '
                    '--processes children use).')
  flags.DEFINE_integer('processes', None, 'Run as this many shard processes, one core each, '
                       'and merge (default: one per core on a CPU for a sweep of 200k+ '
                       'seed-steps, else 1; 1 on an accelerator).')
  flags.DEFINE_bool('merge', False, 'Only build results.md and the figures of --workdir '
                    'from the shards that have finished, and list the missing pairs.')

  def parse_or_exit(argv):
    # The one-paragraph handler of gan_jax.main: a bad override is no traceback.
    try:
      return main_lib.parse_flags(argv, FLAGS)
    except main_lib.CommandLineError as e:
      print(f'gan_jax.sweep: error: {e}', file=sys.stderr)
      sys.exit(2)

  app.run(_main_or_exit, flags_parser=parse_or_exit)
