"""The training loop: restore-or-init, iterate, log, evaluate, sample, checkpoint.

All I/O of a run lives here. The workdir holds:
  config.json            the config of the run (earlier differing ones kept as config.prev-N.json)
  checkpoints/<step>/    orbax checkpoints of the GANState
  metrics.jsonl          one JSON object per log period (train/...) and eval (eval/...)
  events.*               TensorBoard event files
  samples/step_*.png     samples from a fixed z (one row per label for a CGAN)
  curves.png             losses and mean D(x) / D(G(z)) over training
  results.json           the last evaluation's metrics
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import signal
import time
from typing import Any, Callable, Iterator

from absl import logging
import jax
import ml_collections
import numpy as np
import tqdm

from gan_jax import checkpointing
from gan_jax import evaluation
from gan_jax import factory
from gan_jax import input_pipeline
from gan_jax import plotting
from gan_jax import steps

BATCH_AXIS = 'batch'


class Preempted(Exception):
  """Training stopped on SIGTERM / SIGINT after checkpointing the current step."""


def make_step_fn(spec: steps.GANSpec, mesh: jax.sharding.Mesh | None) -> Callable:
  """The jitted train step: plain on one device, data parallel over a mesh.

  Data parallelism is `shard_map` over a 1-D mesh: the state is replicated, the
  batch split along its first axis, and `train_step` averages gradients over the
  axis name. This is pmap's programming model on jit's sharding machinery, and it
  spans processes (multi-host) without code changes.
  """
  if mesh is None or mesh.size == 1:
    return jax.jit(functools.partial(steps.train_step, spec=spec), donate_argnums=0)
  P = jax.sharding.PartitionSpec
  sharded = jax.shard_map(
      functools.partial(steps.train_step, spec=spec, axis_name=BATCH_AXIS),
      mesh=mesh, in_specs=(P(), P(BATCH_AXIS)), out_specs=(P(), P()),
      check_vma=False)
  return jax.jit(sharded, donate_argnums=0)


def make_mesh() -> jax.sharding.Mesh | None:
  if jax.device_count() == 1:
    return None
  return jax.sharding.Mesh(np.array(jax.devices()), (BATCH_AXIS,))


def _to_global(batch: dict[str, np.ndarray], mesh) -> Any:
  if mesh is None:
    return batch
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(BATCH_AXIS))
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}


def _replicate(state: steps.GANState, mesh) -> steps.GANState:
  if mesh is None:
    return state
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  return jax.device_put(state, replicated)


def _write_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  path = os.path.join(workdir, 'config.json')
  text = config.to_json_best_effort(indent=2, sort_keys=True)
  if os.path.exists(path):
    with open(path) as f:
      old = f.read()
    if old == text:
      return
    for i in itertools.count(1):
      prev = os.path.join(workdir, f'config.prev-{i}.json')
      if not os.path.exists(prev):
        os.replace(path, prev)
        break
  with open(path, 'w') as f:
    f.write(text)


class _MetricWriter:
  """JSONL + TensorBoard, written by process 0 only."""

  def __init__(self, workdir: str, enabled: bool):
    self.enabled = enabled
    self._jsonl = None
    self._tb = None
    if enabled:
      self._jsonl = open(os.path.join(workdir, 'metrics.jsonl'), 'a')
      try:
        from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
        self._tb = SummaryWriter(workdir)
      except ImportError:
        logging.warning('tensorboardX is not installed; no TensorBoard events.')

  def write(self, step: int, scalars: dict[str, float]) -> None:
    if not self.enabled:
      return
    self._jsonl.write(json.dumps({'step': step, **scalars}) + '\n')
    self._jsonl.flush()
    if self._tb is not None:
      for k, v in scalars.items():
        self._tb.add_scalar(k, v, step)

  def close(self) -> None:
    if self._jsonl is not None:
      self._jsonl.close()
    if self._tb is not None:
      self._tb.close()


def _check_finite(rows: list[dict[str, np.ndarray]], first_step: int) -> None:
  for offset, row in enumerate(rows):
    for name, value in row.items():
      if not np.all(np.isfinite(value)):
        raise FloatingPointError(
            f'{name} became {float(value)} at step {first_step + offset + 1}: training '
            'diverged. The last good checkpoint is kept; lower the learning rates '
            '(config.optim.*.lr), add a penalty, or check the data.')


def read_history(workdir: str) -> dict[str, np.ndarray]:
  """The train/ rows of metrics.jsonl as arrays (for curves)."""
  rows = []
  path = os.path.join(workdir, 'metrics.jsonl')
  if os.path.exists(path):
    with open(path) as f:
      rows = [json.loads(line) for line in f if line.strip()]
  rows = [r for r in rows if 'train/d_loss' in r]
  keys = set().union(*rows) if rows else set()
  return {k: np.array([r.get(k, np.nan) for r in rows], dtype=float) for k in keys}


def _data_iterator(config, data_info, *, per_process_batch: int,
                   start_step: int) -> Iterator[dict[str, np.ndarray]]:
  it = input_pipeline.make_iterator(
      config.data, split='train', batch_size=per_process_batch, seed=config.seed,
      process_index=jax.process_index(), process_count=jax.process_count())
  # Skipping the batches already consumed makes a resumed run see exactly the
  # data an uninterrupted run would.
  return itertools.islice(it, start_step, None)


class _SignalFlag:
  """Turns SIGTERM / SIGINT into a flag the loop polls between steps."""

  def __init__(self):
    self.signal = None
    self._previous = {}

  def __enter__(self):
    for sig in (signal.SIGTERM, signal.SIGINT):
      try:
        self._previous[sig] = signal.signal(sig, self._handle)
      except ValueError:  # not the main thread (e.g. in some test runners)
        pass
    return self

  def _handle(self, signum, frame):
    del frame
    self.signal = signal.Signals(signum).name

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, float]:
  """Trains the GAN of `config` in `workdir`, resuming from its latest checkpoint.

  Returns the last evaluation's metrics.
  """
  workdir = os.path.abspath(workdir)
  is_main = jax.process_index() == 0
  os.makedirs(workdir, exist_ok=True)

  data_info = input_pipeline.get_info(config.data)
  spec = factory.build_spec(config, data_info)
  train_cfg = config.train
  num_devices = jax.device_count()
  batch_size = int(train_cfg.batch_size)
  if batch_size % num_devices:
    raise ValueError(f'config.train.batch_size={batch_size} is not divisible by the '
                     f'{num_devices} devices; use a multiple of {num_devices}.')
  per_process_batch = batch_size // jax.process_count() * spec.d_steps

  checkpointer = checkpointing.Checkpointer(os.path.join(workdir, 'checkpoints'),
                                            keep=int(train_cfg.get('keep_checkpoints', 3)))
  state = steps.init_state(spec, jax.random.PRNGKey(config.seed), data_info.shape)
  state, restored_step = checkpointer.restore(state)
  start_step = int(state.step)
  if restored_step is not None:
    print(f'Resumed from the checkpoint of step {restored_step} in {workdir}.')
  if is_main:
    _write_config(config, workdir)

  mesh = make_mesh()
  state = _replicate(state, mesh)
  step_fn = make_step_fn(spec, mesh)
  evaluator = evaluation.Evaluator(config, spec, data_info)
  writer = _MetricWriter(workdir, is_main)
  data = _data_iterator(config, data_info, per_process_batch=per_process_batch,
                        start_step=start_step)

  num_steps = int(train_cfg.num_steps)
  log_every = int(train_cfg.get('log_every', 100))
  eval_every = int(train_cfg.get('eval_every', 1000))
  ckpt_every = int(train_cfg.get('checkpoint_every', 1000))
  pending: list[dict[str, Any]] = []
  pending_start = start_step
  last_eval: dict[str, float] = {}
  window_start = time.perf_counter()

  def flush(step: int) -> None:
    nonlocal pending, pending_start, window_start
    if not pending:
      return
    rows = jax.device_get(pending)
    _check_finite(rows, pending_start)
    elapsed = time.perf_counter() - window_start
    scalars = {f'train/{k}': float(np.mean([r[k] for r in rows])) for k in rows[0]}
    scalars['train/steps_per_sec'] = len(rows) / max(elapsed, 1e-9)
    writer.write(step, scalars)
    bar.set_postfix(d_loss=f'{scalars["train/d_loss"]:.3f}',
                    g_loss=f'{scalars["train/g_loss"]:.3f}',
                    steps_s=f'{scalars["train/steps_per_sec"]:.1f}')
    pending, pending_start, window_start = [], step, time.perf_counter()

  def save(step: int) -> None:
    flush(step)
    checkpointer.save(step, state)

  bar = tqdm.tqdm(total=num_steps, initial=start_step, disable=not is_main,
                  dynamic_ncols=True, desc=os.path.basename(workdir))
  step = start_step
  try:
    with _SignalFlag() as stop:
      for step in range(start_step, num_steps):
        batch = _to_global(next(data), mesh)
        state, metrics = step_fn(state, batch)
        pending.append(metrics)
        done = step + 1
        bar.update(1)
        if done % log_every == 0 or done == num_steps:
          flush(done)
        if done % eval_every == 0 or done == num_steps:
          flush(done)
          last_eval = evaluator(state, done, workdir) if is_main else {}
          writer.write(done, last_eval)
          window_start = time.perf_counter()
        if done % ckpt_every == 0 or done == num_steps:
          save(done)
          window_start = time.perf_counter()
        if stop.signal is not None:
          save(done)
          raise Preempted(f'received {stop.signal} at step {done}; saved a checkpoint in '
                          f'{checkpointer.directory}. Run the same command to resume.')
      step = num_steps
  finally:
    bar.close()
    writer.close()
    checkpointer.close()

  if is_main:
    history = read_history(workdir)
    if history:
      plotting.training_curves(history, os.path.join(workdir, 'curves.png'),
                               probabilistic=spec.loss.probabilistic)
    with open(os.path.join(workdir, 'results.json'), 'w') as f:
      json.dump({'step': step, **last_eval}, f, indent=2)
  return last_eval
