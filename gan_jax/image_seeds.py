"""The seeds of an image-GAN sweep variant: each seed is one ordinary `gan_jax.main` run.

`gan_jax.sweep` hands every (variant, seed) pair of an image dataset
(`input_pipeline.get_info(config.data).kind == 'image'`: Fashion-MNIST, MNIST,
stacked data, the CGAN configs) to `run_seed`, which is

    train.train_and_evaluate(seed_config(config, seed),
                             seed_workdir(sweep_workdir, variant_file_name, seed))

with nothing added: the same step, data stream, checkpoints and `Evaluator` as
`python -m gan_jax.main --config ... --config.seed=<seed> --workdir <that dir>`.
So every seed directory is a normal main workdir (samples/, curves.png,
metrics.jsonl, results.json, checkpoints/): it can be inspected, resumed,
sampled (`gan_jax.sample`) or re-evaluated (`gan_jax.evaluation`) on its own,
and an interrupted sweep resumes a half-trained seed from its last checkpoint.

Image seeds run one after the other, not vmapped as `gan_jax.seeds` does for
the 2-D mixtures: a DCGAN step on 28 x 28 x 3 images is already arithmetic-bound
on a CPU core (vmapping S seeds multiplies the work by S and saves only per-op
dispatch), while the main loop's checkpointing, resumption, preemption and
evaluation are per workdir and would all need a seeds axis. To use more
cores or hosts, shard the sweep (`--processes`, `--num_shards`): seeds are
independent runs.

The evaluation classifier: a config whose `eval.train_classifier_epochs` > 0
would train a missing `eval.classifier` at its first evaluation. Several sweep
processes doing that at once would write the same classifier directory, so
`prepare_classifier` trains it first, once, under a file lock; every seed then
loads the same classifier, exactly as its own `gan_jax.main` run would have
trained it (`classifier.train` is deterministic).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import fcntl
import glob
import json
import os
import re
import time
import traceback

import ml_collections
import numpy as np

from gan_jax import classifier as classifier_lib
from gan_jax import input_pipeline
from gan_jax import plotting
from gan_jax import train
from gan_jax import workdir as workdir_lib

# The metrics of an image evaluation that the sweep tabulates (`eval/<name>` in
# results.json; see `evaluation.classifier_metrics`). Which are present depends
# on the data: label_accuracy for a CGAN, stacked_modes / stacked_kl for stacked
# data, class_coverage / class_kl otherwise; none without eval.classifier.
METRICS = ('label_accuracy', 'classifier_fd', 'stacked_modes', 'stacked_kl',
           'class_coverage', 'class_kl', 'classifier_score')

# The seed directories, relative to the sweep workdir: runs/<variant file name>/seed_<s>.
RUNS_DIR = 'runs'


@dataclasses.dataclass(frozen=True)
class SeedResult:
  """One seed's run, as the sweep records it.

  status: 'ok', 'nan' (training diverged at `diverged_at`; the workdir keeps the
    last good checkpoint) or 'failed' (`error` holds the exception).
  metrics: the last evaluation's METRICS present (no 'eval/' prefix).
  steps_per_s: the mean of the run's logged train/steps_per_sec (training only,
    evaluation excluded), over every invocation that trained it.
  wall_s: seconds this invocation spent on the seed (a resumed seed: its rest).
  """
  seed: int
  workdir: str
  status: str
  step: int
  metrics: dict[str, float]
  diverged_at: int
  wall_s: float
  steps_per_s: float
  error: str


def seed_config(config: ml_collections.ConfigDict, seed: int) -> ml_collections.ConfigDict:
  """A copy of `config` with config.seed = `seed` (what --config.seed=<seed> gives main)."""
  config = copy.deepcopy(config)  # deepcopy keeps field references (decay_steps -> num_steps)
  config.seed = int(seed)
  return config


def seed_workdir(sweep_workdir: str, variant_file_name: str, seed: int) -> str:
  """<sweep workdir>/runs/<variant file name>/seed_<seed>."""
  return os.path.join(sweep_workdir, RUNS_DIR, variant_file_name, f'seed_{int(seed)}')


@contextlib.contextmanager
def _file_lock(path: str):
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, 'a') as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


def prepare_classifier(config: ml_collections.ConfigDict) -> bool:
  """Trains the missing evaluation classifier that `config` would train lazily.

  Only when config.eval.classifier is set, config.eval.train_classifier_epochs
  > 0 and no classifier for the data exists; the training runs under an
  exclusive lock beside the classifier's directory, so concurrent sweep
  processes train it once and the others wait and load it. Returns whether
  this call trained it.
  """
  path = config.eval.get('classifier') or ''
  epochs = int(config.eval.get('train_classifier_epochs', 0) or 0)
  if not path or epochs <= 0 or classifier_lib.exists(path, config.data):
    return False
  target = classifier_lib.resolve_workdir(path, config.data)
  with _file_lock(os.path.abspath(target) + '.lock'):
    if classifier_lib.exists(path, config.data):  # another process trained it meanwhile
      return False
    print(f'Training the evaluation classifier ({epochs} epoch(s), '
          f'config.eval.train_classifier_epochs) into {target}.', flush=True)
    meta = classifier_lib.train(config.data, target, num_epochs=epochs)
    print(f'Evaluation classifier: {100 * meta["test_accuracy"]:.2f} % test accuracy '
          f'({meta["train_seconds"]:.0f} s).', flush=True)
  return True


def _steps_per_s(workdir: str) -> float:
  rates = [r['train/steps_per_sec'] for r in workdir_lib.load_rows(workdir)
           if 'train/steps_per_sec' in r]
  return float(np.mean(rates)) if rates else float('nan')


def _final_step(workdir: str) -> int:
  path = os.path.join(workdir, 'results.json')
  if not os.path.exists(path):
    return 0
  with open(path) as f:
    return int(json.load(f).get('step', 0))


def run_seed(config: ml_collections.ConfigDict, seed: int, workdir: str) -> SeedResult:
  """Trains and evaluates one seed in `workdir` (resuming it); never raises for a bad run.

  A run that diverges (train's FloatingPointError) is status 'nan' with the
  step it reports; any other exception is 'failed'. A preemption
  (`train.Preempted`, after a checkpoint) and KeyboardInterrupt propagate:
  the sweep stops, and rerunning it resumes this seed.
  """
  start = time.perf_counter()
  status, error, diverged_at, metrics = 'ok', '', 0, {}
  try:
    last = train.train_and_evaluate(seed_config(config, seed), workdir)
    metrics = {k: float(last[f'eval/{k}']) for k in METRICS if f'eval/{k}' in last}
  except train.Preempted:
    raise
  except FloatingPointError as e:
    status, error = 'nan', f'{type(e).__name__}: {e}'
    found = re.search(r'at step (\d+)', str(e))
    diverged_at = int(found.group(1)) if found else -1
  except Exception as e:  # pylint: disable=broad-except
    # A broken seed is a result too; the rest of the sweep goes on.
    traceback.print_exc()
    status, error = 'failed', f'{type(e).__name__}: {e}'
  return SeedResult(
      seed=int(seed), workdir=workdir, status=status,
      step=_final_step(workdir) if status == 'ok' else 0, metrics=metrics,
      diverged_at=diverged_at, wall_s=time.perf_counter() - start,
      steps_per_s=_steps_per_s(workdir) if os.path.isdir(workdir) else float('nan'),
      error=' '.join(error.split())[:500])


def final_sample_path(workdir: str) -> str | None:
  """The seed's last picture of G (samples/step_<largest>.png), or None."""
  paths = sorted(glob.glob(os.path.join(workdir, 'samples', 'step_*.png')))
  return paths[-1] if paths else None


def sample_sheet(panels: dict[str, list[tuple[str, str | None]]], path: str) -> bool:
  """One row per variant, one column per seed: each seed's final sample grid.

  `panels` maps a row title to [(column title, PNG path or None)]; a missing
  picture (a failed seed) is an empty panel. Written atomically (a shard
  merging at the same time never reads half a picture). Returns whether
  anything was drawn.
  """
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  rows = [(title, cells) for title, cells in panels.items() if cells]
  if not any(p for _, cells in rows for _, p in cells):
    return False
  cols = max(len(cells) for _, cells in rows)
  fig, axes = plt.subplots(len(rows), cols, figsize=(2.6 * cols + 1.5, 2.8 * len(rows)),
                           squeeze=False)
  for i, (title, cells) in enumerate(rows):
    for j in range(cols):
      ax = axes[i, j]
      ax.set_xticks([])
      ax.set_yticks([])
      if j < len(cells):
        label, picture = cells[j]
        if picture and os.path.exists(picture):
          ax.imshow(plt.imread(picture))
        ax.set_title(label, fontsize=8)
      else:
        ax.axis('off')
    axes[i, 0].set_ylabel(title.replace(',', '\n'), fontsize=8)
  plotting.save(fig, path)
  return True


def data_label(config: ml_collections.ConfigDict) -> str:
  """'stacked fashion_mnist', 'fashion_mnist': a label for results.md (not dispatched on)."""
  base = config.data.get('base')
  name = str(config.data.name)
  return f'{name} {base.get("name")}' if base is not None else name


def num_classes(config: ml_collections.ConfigDict) -> int:
  """Classes (modes, for stacked data) of the data: the table's 'of N'."""
  return int(input_pipeline.get_info(config.data).num_classes)
