"""The training loop and its sharding: restore-or-init, iterate, log, evaluate, checkpoint.

The workdir holds:
  config.json, config.py, metrics.jsonl, events.*, results.json   (gan_jax/workdir.py)
  checkpoints/<step>/    orbax checkpoints of the GANState       (gan_jax/checkpointing.py)
  samples/step_*.png     samples from a fixed z (one row per label for a CGAN)
  curves.png             losses and mean D(x) / D(G(z)) over training
"""

from __future__ import annotations

import functools
import math
import os
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm

from gan_jax import checkpointing
from gan_jax import evaluation
from gan_jax import factory
from gan_jax import input_pipeline
from gan_jax import memory
from gan_jax import plotting
from gan_jax import preemption
from gan_jax import steps
from gan_jax import workdir as workdir_lib

BATCH_AXIS = 'batch'


class Preempted(Exception):
  """Training stopped on SIGTERM / SIGINT after checkpointing the current step."""


def make_step_fn(spec: steps.GANSpec, mesh: jax.sharding.Mesh | None) -> Callable:
  """The jitted train step: plain on one device, data parallel over a mesh.

  Data parallelism is `shard_map` over a 1-D mesh: the state is replicated, each
  of the `d_steps` micro-batches is split over the devices, and `train_step`
  averages gradients (and BatchNorm statistics, see `build_spec`) over the axis.
  This is pmap's programming model on jit's sharding machinery, and it spans
  processes (multi-host) without code changes. With a mesh the batch comes in
  the layout of `shard_batch`: (d_steps, global micro-batch, ...).
  """
  if mesh is None or mesh.size == 1:
    return jax.jit(functools.partial(steps.train_step, spec=spec), donate_argnums=0)

  def per_device(state, batch):
    # (d_steps, B / n, ...) -> (d_steps * B / n, ...): micro-batch i of this
    # device is its slice of global micro-batch i, as on one device.
    batch = {k: v.reshape((-1,) + v.shape[2:]) for k, v in batch.items()}
    return steps.train_step(state, batch, spec=spec, axis_name=BATCH_AXIS)

  P = jax.sharding.PartitionSpec
  sharded = jax.shard_map(per_device, mesh=mesh, in_specs=(P(), P(None, BATCH_AXIS)),
                          out_specs=(P(), P()), check_vma=False)
  return jax.jit(sharded, donate_argnums=0)


def make_mesh() -> jax.sharding.Mesh | None:
  """A 1-D mesh over all devices of all processes, or None for one device."""
  if jax.device_count() == 1:
    return None
  return jax.sharding.Mesh(np.array(jax.devices()), (BATCH_AXIS,))


def shard_batch(batch: dict[str, np.ndarray], mesh: jax.sharding.Mesh | None,
                d_steps: int) -> Any:
  """This process's (d_steps * b, ...) batch as a global (d_steps, B, ...) array.

  Splitting each micro-batch (rather than the concatenated batch) over devices
  keeps D's i-th update on the i-th real micro-batch whatever the device count.
  """
  if mesh is None:
    return batch
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(None, BATCH_AXIS))
  return {k: jax.make_array_from_process_local_data(
      sharding, v.reshape((d_steps, -1) + v.shape[1:])) for k, v in batch.items()}


def replicate(tree: Any, mesh: jax.sharding.Mesh | None) -> Any:
  """`tree` as arrays replicated over `mesh` (every process holds the same values).

  Every leaf gets its own buffer: leaves that share one (EMA = G's parameters at
  init) could not both be donated to the step.
  """
  if mesh is None:
    return jax.tree_util.tree_map(lambda x: jnp.array(x, copy=True), tree)
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())

  def put(x):
    x = np.asarray(jax.device_get(x))
    # A copy per device: CPU arrays may alias the host buffer.
    return jax.make_array_from_callback(x.shape, sharding, lambda index: np.array(x[index]))
  return jax.tree_util.tree_map(put, tree)


def host_local(tree: Any) -> Any:
  """Numpy copies of (replicated) arrays, also those spanning other processes."""
  def get(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
      return np.asarray(x.addressable_data(0))
    return np.asarray(x)
  return jax.tree_util.tree_map(get, tree)


def build_spec(config: ml_collections.ConfigDict, data_info: input_pipeline.DataInfo,
               mesh: jax.sharding.Mesh | None) -> steps.GANSpec:
  """`factory.build_spec`, with BatchNorm averaging its statistics over the mesh.

  Synchronised BatchNorm normalises by the statistics of the global batch, which
  is what makes an n-device step equal the single-device one.
  """
  sharded = mesh is not None and mesh.size > 1
  return factory.build_spec(config, data_info, bn_axis_name=BATCH_AXIS if sharded else None)


_POSITIVE_TRAIN_FIELDS = ('batch_size', 'num_steps', 'log_every', 'eval_every',
                          'checkpoint_every', 'keep_checkpoints')


def _train_options(train_cfg: ml_collections.ConfigDict) -> dict[str, int]:
  options = {}
  for field in _POSITIVE_TRAIN_FIELDS:
    value = train_cfg.get(field)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
      raise ValueError(f'config.train.{field}={value!r} must be a positive integer.')
    options[field] = int(value)
  sample_every = train_cfg.get('sample_every') or 0
  if isinstance(sample_every, bool) or not isinstance(sample_every, (int, np.integer)) or (
      sample_every < 0):
    raise ValueError(f'config.train.sample_every={sample_every!r} must be an integer >= 0 '
                     '(0: pictures at evaluations only).')
  options['sample_every'] = int(sample_every)
  return options


def _seed(config: ml_collections.ConfigDict) -> int:
  seed = config.get('seed')
  if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not (
      0 <= seed < 2**31):
    raise ValueError(f'config.seed={seed!r} must be an integer in [0, 2^31).')
  return int(seed)


def _largest(values) -> int:
  flat = []
  for v in values:
    if isinstance(v, (list, tuple)):
      flat.extend(int(x) for x in v if isinstance(x, (int, np.integer)))
    elif isinstance(v, (int, np.integer)) and not isinstance(v, bool):
      flat.append(int(v))
  return max(flat, default=1)


def check_memory(config: ml_collections.ConfigDict, spec: steps.GANSpec,
                 data_info: input_pipeline.DataInfo, batch_size: int) -> None:
  """A ValueError naming the fields when the step or the evaluation cannot fit in RAM.

  A rough lower bound, not a profile: one float32 activation of the widest layer
  (or the data, or z) per example the step pushes through the nets, times 4
  for the activations and gradients kept for the backward pass; evaluation
  holds z, G's samples and, for a mixture, samples x modes distances. Catches sizes off by orders of
  magnitude (a batch of 10^7) before XLA aborts deep inside.
  """
  ram = memory.ram_bytes()
  if ram is None:
    return
  model = config.model
  width = max(_largest([model.get(k) for k in ('g_widths', 'd_widths', 'base_width',
                                                 'd_base_width')]),
              int(spec.latent_dim), math.prod(data_info.shape))
  # Every D update sees a real and a fake batch; the lookahead repeats that K times.
  examples = batch_size * spec.d_steps * 2 * (1 + spec.unroll_steps)
  step_bytes = 4 * 4 * examples * width
  _check_fits('one train step', step_bytes, ram, 'config.train.batch_size, config.d_steps, '
              'config.unroll.steps, config.model.latent_dim and the model widths')
  check_eval_memory(config, max(data_info.num_classes if data_info.is_mixture else 1, width))


def check_eval_memory(config: ml_collections.ConfigDict, per_sample: int,
                      fields: str = 'config.data') -> None:
  """A ValueError when eval.num_samples x `per_sample` float32 cannot fit in RAM.

  G runs on all of the evaluation z (or its chunks, each layer at most the
  widest), and a mixture's metrics hold samples x modes distances: `per_sample`
  is the larger of the two. Called with a mixture's mode count before the data
  are built, since building 10^8 mode centres alone takes seconds and gigabytes.
  """
  ram = memory.ram_bytes()
  if ram is None:
    return
  num_samples = int(config.eval.get('num_samples', 0) or 0)
  _check_fits('the evaluation', 4 * num_samples * per_sample, ram,
              f'config.eval.num_samples and {fields}')


def _check_fits(what: str, need: int, ram: int, fields: str) -> None:
  if need > ram:
    raise ValueError(f'{what} needs at least {need / 2**30:.0f} GiB, more than this '
                     f"machine's {ram / 2**30:.0f} GiB of memory; lower {fields}.")


def _check_batch(batch_size: int, spec: steps.GANSpec) -> None:
  num_devices = jax.device_count()
  if batch_size % num_devices:
    raise ValueError(f'config.train.batch_size={batch_size} is not divisible by the '
                     f'{num_devices} devices; use a multiple of {num_devices}.')
  pack = max(1, getattr(spec.discriminator, 'pack', 1))
  if (batch_size // num_devices) % pack:
    raise ValueError(f'config.model.pack={pack} must divide the per-device batch '
                     f'{batch_size // num_devices} (config.train.batch_size={batch_size} '
                     f'over {num_devices} devices).')


def _check_finite(rows: list[dict[str, np.ndarray]], first_step: int) -> None:
  for offset, row in enumerate(rows):
    bad = {name: float(np.asarray(value).ravel()[0]) for name, value in row.items()
           if not np.all(np.isfinite(value))}
    if bad:
      names = ', '.join(f'train/{k}={v}' for k, v in bad.items())
      raise FloatingPointError(
          f'{names} at step {first_step + offset + 1}: training diverged. The last '
          'good checkpoint is kept; lower the learning rates (config.optim.*.lr), '
          'add a penalty, or check the data.')


def _draw_curves(workdir: str, spec: steps.GANSpec) -> None:
  history = workdir_lib.read_history(workdir)
  if history:
    plotting.training_curves(history, os.path.join(workdir, 'curves.png'),
                             probabilistic=spec.loss.probabilistic)


def _loop(options, spec, mesh, state, data, start_step, step_fn, writer,
          checkpointer, evaluator, stop, workdir, on_done=None
          ) -> tuple[int, dict[str, float]]:
  """Steps from `start_step` to num_steps: logs, evaluates, checkpoints.

  Returns the last step and the last evaluation's metrics. Closes the writer and
  the checkpointer however it ends.
  """
  is_main = jax.process_index() == 0
  multi_process = jax.process_count() > 1
  num_steps = options['num_steps']
  log_every, eval_every = options['log_every'], options['eval_every']
  sample_every = options['sample_every']
  ckpt_every = options['checkpoint_every']
  # Rows of the current log period. A checkpoint (or a preemption) inside a period
  # saves them beside it, so a resumed run logs exactly the rows of an
  # uninterrupted one, and log_every is honoured whatever checkpoint_every is.
  pending: list[dict[str, Any]] = []
  pending_start = start_step
  restored = workdir_lib.read_pending(workdir, start_step) if is_main else None
  if restored is not None:
    pending_start, pending = restored
  last_eval: dict[str, float] = {}
  window_start = time.perf_counter()
  paused = 0.0  # seconds of evaluation and checkpointing inside the log period

  def host_rows():
    return host_local(pending) if multi_process else jax.device_get(pending)

  def flush(step: int) -> None:
    nonlocal pending, pending_start, window_start, paused
    if not pending:
      return
    rows = host_rows()
    _check_finite(rows, pending_start)
    elapsed = time.perf_counter() - window_start - paused
    scalars = {f'train/{k}': float(np.mean([r[k] for r in rows])) for k in rows[0]}
    scalars['train/steps_per_sec'] = len(rows) / max(elapsed, 1e-9)
    writer.write(step, scalars)
    bar.set_postfix(d_loss=f'{scalars["train/d_loss"]:.3f}',
                    g_loss=f'{scalars["train/g_loss"]:.3f}',
                    steps_s=f'{scalars["train/steps_per_sec"]:.1f}')
    pending, pending_start, window_start, paused = [], step, time.perf_counter(), 0.0

  def checkpoint(step: int) -> None:
    nonlocal pending
    if pending:
      pending = host_rows()
      _check_finite(pending, pending_start)  # a diverged state is never checkpointed
    checkpointer.save(step, state)
    if is_main:
      workdir_lib.write_pending(workdir, step, pending_start, pending)

  def stop_requested(flag: preemption.StopSignals, done: int) -> bool:
    if not multi_process:
      return flag.signal is not None
    # A signal may reach only some hosts; all must agree to checkpoint together,
    # which costs a collective, so hosts compare notes once per log period.
    if done % log_every:
      return False
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    flags = multihost_utils.process_allgather(np.int32(flag.signal is not None))
    return bool(np.any(flags))

  bar = tqdm.tqdm(total=num_steps, initial=start_step, disable=not is_main,
                  dynamic_ncols=True, desc=os.path.basename(workdir))
  step = start_step
  try:
    for step in range(start_step, num_steps):
      batch = shard_batch(next(data), mesh, spec.d_steps)
      state, metrics = step_fn(state, batch)
      pending.append(metrics)
      done = step + 1
      bar.update(1)
      if done % log_every == 0 or done == num_steps:
        flush(done)
      evaluate = done % eval_every == 0 or done == num_steps
      if evaluate or (sample_every and done % sample_every == 0):
        t0 = time.perf_counter()
        if is_main:
          # Picture steps between evaluations skip the classifier (cheap); the
          # curves are redrawn so that both are on disk from the first minutes.
          metrics = evaluator(host_local(state) if multi_process else state, done,
                              workdir, classifier=evaluate)
          if evaluate:
            last_eval = metrics
            writer.write(done, last_eval)
          writer.image(done, 'samples', evaluator.sample_path(workdir, done))
          if evaluator.ema:
            writer.image(done, 'samples_ema', evaluator.sample_path(workdir, done, ema=True))
          if not evaluate:
            _draw_curves(workdir, spec)
        paused += time.perf_counter() - t0
      if done % ckpt_every == 0 or done == num_steps:
        t0 = time.perf_counter()
        checkpoint(done)
        paused += time.perf_counter() - t0
      if stop_requested(stop, done):
        checkpoint(done)
        raise Preempted(f'received {stop.signal or "a stop request"} at step {done}; '
                        f'saved a checkpoint of step {done} in {checkpointer.directory}. '
                        'Run the same command to resume.')
    step = num_steps
    if on_done is not None and is_main:
      on_done(last_eval)
  finally:
    bar.close()
    writer.close()
    checkpointer.close()
  return step, last_eval


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, float]:
  """Trains the GAN of `config` in `workdir`, resuming from its latest checkpoint.

  Everything that can be checked (config, dataset, checkpoint) is checked before
  anything is written, so a bad run leaves the workdir as it found it.

  Returns the last evaluation's metrics.
  """
  workdir = os.path.abspath(workdir)
  is_main = jax.process_index() == 0
  options = _train_options(config.train)
  drs = config.get('eval', {}).get('drs')
  if drs is not None and drs.get('enabled', False):
    # Not silently ignored: DRS rows are the sweep's (seeds.drs_evaluate).
    raise ValueError('config.eval.drs.enabled=True is an evaluation of gan_jax.sweep '
                     '(rows of their own in drs.csv / results.md), not of gan_jax.main; run '
                     'python -m gan_jax.sweep --config ... --config.eval.drs.enabled=True, or '
                     'leave it False here.')
  if config.data.get('name') in input_pipeline.MIXTURE_NAMES:
    count, field = input_pipeline.mixture_mode_count(config.data)
    check_eval_memory(config, count, f'config.data.{field}={config.data[field]}')
  data_info = input_pipeline.get_info(config.data)
  mesh = make_mesh()
  spec = build_spec(config, data_info, mesh)
  batch_size, num_steps = options['batch_size'], options['num_steps']
  _check_batch(batch_size, spec)
  per_process_batch = batch_size // jax.process_count() * spec.d_steps
  check_memory(config, spec, data_info, batch_size)
  seed = _seed(config)
  # Built before anything is written: a missing evaluation classifier is bad input.
  evaluator = evaluation.Evaluator(config, spec, data_info) if is_main else None
  # The models are built (and their config checked) before the checkpoint
  # directory exists; a new workdir is only created once the data is checked too.
  state = replicate(steps.init_state(spec, jax.random.PRNGKey(seed), data_info.shape),
                    mesh)
  checkpoint_dir = os.path.join(workdir, 'checkpoints')
  checkpointer = None
  if os.path.isdir(checkpoint_dir):
    checkpointer = checkpointing.Checkpointer(checkpoint_dir,
                                              keep=options['keep_checkpoints'])
  try:
    restored_step = None
    if checkpointer is not None:
      state, restored_step = checkpointer.restore(state)
    start_step = int(host_local(state.step))
    # The data stream of a resumed run continues where the checkpoint left it.
    data = input_pipeline.make_iterator(
        config.data, split='train', batch_size=per_process_batch, seed=seed,
        process_index=jax.process_index(), process_count=jax.process_count(),
        skip_batches=start_step)
    if checkpointer is None:
      checkpointer = checkpointing.Checkpointer(checkpoint_dir,
                                                keep=options['keep_checkpoints'])
  except BaseException:
    if checkpointer is not None:
      checkpointer.close()
    raise
  if start_step >= num_steps:
    checkpointer.close()
    print(f'{workdir} is already trained to step {start_step} (config.train.num_steps='
          f'{num_steps}); nothing to do. Raise config.train.num_steps to train on.')
    return workdir_lib.previous_results(workdir)
  if is_main:
    if restored_step is not None:
      print(f'Resumed from the checkpoint of step {restored_step} in {workdir}.')
      workdir_lib.truncate_metrics(workdir, restored_step)
    workdir_lib.write_config(config, workdir)

  # From here on SIGTERM / SIGINT stop the run at the end of a step, with a
  # checkpoint (also while the step compiles).
  with preemption.StopSignals() as stop:
    try:
      step_fn = make_step_fn(spec, mesh)
      writer = workdir_lib.MetricWriter(workdir, is_main)
      writer.config(config)
    except BaseException:
      checkpointer.close()
      raise
    step, last_eval = _loop(options, spec, mesh, state, data, start_step, step_fn,
                            writer, checkpointer, evaluator, stop, workdir,
                            on_done=lambda metrics: writer.hparams(config, metrics))

  if is_main:
    _draw_curves(workdir, spec)
    workdir_lib.write_results(workdir, step, last_eval)
  return last_eval
