"""Many seeds of one small GAN in one compiled program.

A 2-D mixture GAN is small: with a small latent or an unrolled lookahead its step
is dominated by per-op dispatch rather than arithmetic. Training S seeds at
once by `jax.vmap` over a stacked `GANState` turns S tiny matmuls into one
batched matmul, and `lax.scan` over several steps inside one `jit` call removes
the Python round trip per step. Seed i of the vmapped run is the same
computation as seed i run alone (tests/test_seeds.py checks this).

    states = init_states(spec, seeds=[0, 1, 2, 3, 4], data_shape=(2,))
    step = make_multi_seed_step(spec)                  # one step, host batches
    states, metrics = step(states, {'x': x})           # x: (S, d_steps * B, 2)

    sampler = input_pipeline.mixture_sampler(config.data)  # real data on device
    run = make_train_n_steps(spec, sampler, batch_size=256, num_steps=500)
    states, metrics = run(states, data_keys(seeds))    # 500 steps of all S seeds

    result = train_and_evaluate(config, seeds=[0, 1, 2])  # a sweep variant: train,
                                                          # evaluate every eval_every

Every state has a leading seeds axis; metrics are (S,) per seed. The data of
seed s at step t is drawn from fold_in(data_key_s, t), so a run chopped into
calls of any length (or resumed) sees the same batches.

Several devices: the seeds axis is sharded over a 1-D mesh named 'seeds'
(`seed_mesh`), and each device runs `vmap` over its own S / n seeds inside
`shard_map` (seeds never communicate, so the per-device program is the
one-device program on fewer seeds): 8 GPUs train 8x the seeds in one program.
The mesh spans the largest number n <= jax.device_count() of devices that
divides S; when only n = 1 does (e.g. 5 seeds on 4 devices), everything runs on
one device, as before. tests/test_seed_sharding.py checks that every seed's
result on 4 forced CPU devices equals the one-device run. Seeds and the data
parallel 'batch' axis of train.py are not combined (a 2-D mesh): one seed's
batch is never split.

    mesh = seed_mesh(len(seeds))                       # None on one device
    states = shard_seeds(init_states(spec, seeds, (2,)), mesh)
    run = make_train_n_steps(spec, sampler, batch_size=256, num_steps=500, mesh=mesh)
    states, metrics = run(states, shard_seeds(data_keys(seeds), mesh))

Speed, measured in round 1 on the project's 2-core CPU with
`cpu_single_thread_flags()` (set before JAX is imported) under a shared load of
2-4, per seed-step, batch 128 unless noted. That flag does not keep XLA on one
core (round 8 measured both cores busy; `xla_flags.pin_to_core` does), so these
are rates of a process that could use both cores:

  ring nets, latent 256, batch 256, K = 0:   1 seed 3.7 ms, 8 seeds 3.5 ms
  ring nets, latent 16, K = 10:              1 seed 16.5 ms, 5 seeds 8.6 ms
  ring nets, latent 16, K = 0:               5 seeds 1.5 ms

vmapping pays where per-op overhead dominates (small latent, unrolled scan); at
latent 256 x batch 256 the step is already matmul-bound on one core and seeds
gain little. To use both cores for two jobs, give each its own core
(`gan_jax.sweep --processes 2` does; or `taskset -c 0` / `taskset -c 1`).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm

from gan_jax import evaluation
from gan_jax import factory
from gan_jax import input_pipeline
from gan_jax import rejection
from gan_jax import steps
from gan_jax import xla_flags
from gan_jax.datasets import mixtures

Array = jax.Array
Sampler = Callable[[Array, int], dict[str, Array]]

SEED_AXIS = 'seeds'

def cpu_single_thread_flags() -> str:
  """XLA_FLAGS that turn off Eigen's threads (`xla_flags.CPU_SINGLE_THREAD`).

  Not a pin to one core: see gan_jax/xla_flags.py (`pin_to_core` is).

  Set `os.environ['XLA_FLAGS']` to this before JAX is imported; JAX reads it once.
  """
  return xla_flags.CPU_SINGLE_THREAD


def init_states(spec: steps.GANSpec, seeds: Sequence[int],
                data_shape: tuple[int, ...]) -> steps.GANState:
  """`steps.init_state` of every seed (key PRNGKey(seed)), stacked on a leading axis."""
  keys = jnp.stack([jax.random.PRNGKey(int(s)) for s in seeds])
  init = jax.jit(jax.vmap(lambda k: steps.init_state(spec, k, data_shape)))
  return init(keys)


def data_keys(seeds: Sequence[int]) -> Array:
  """(S, 2) keys of each seed's real-data stream (`mixtures.data_key`)."""
  return jnp.stack([mixtures.data_key(s) for s in seeds])


def seed_mesh(num_seeds: int, devices: Sequence[jax.Device] | None = None
              ) -> jax.sharding.Mesh | None:
  """A 1-D mesh ('seeds',) over the first n devices, n the largest divisor of S.

  n is the largest number <= len(devices) that divides `num_seeds`, so every
  device trains the same number of seeds (one program, no padding seeds whose
  results would be thrown away). Returns None when n = 1: one device (or a seed
  count that no larger device count divides, e.g. 5 seeds on 4 devices) runs
  unsharded, exactly as without a mesh. Devices default to `jax.devices()`.
  """
  devices = list(jax.devices() if devices is None else devices)
  n = max(d for d in range(1, len(devices) + 1) if num_seeds % d == 0)
  if n == 1:
    return None
  return jax.sharding.Mesh(np.array(devices[:n]), (SEED_AXIS,))


def shard_seeds(tree, mesh: jax.sharding.Mesh | None):
  """`tree`'s leaves (leading axis: seeds) split over `mesh`'s 'seeds' axis.

  With no mesh the tree is returned as it is.
  """
  if mesh is None:
    return tree
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(SEED_AXIS))
  return jax.device_put(tree, sharding)


def _over_seeds(fn: Callable, mesh: jax.sharding.Mesh | None,
                num_args: int, num_replicated: int = 0) -> Callable:
  """`fn` (already vmapped over seeds) run per device on its slice of the seeds.

  The first `num_args` arguments and every output carry the seeds axis; the
  `num_replicated` arguments after them (e.g. the shared evaluation z) are the
  same on every device. Without a mesh, `fn` itself. shard_map rather than
  letting jit partition `fn`: the per-device program is then visibly the
  one-device program on S / n seeds, with no collective anywhere.
  """
  if mesh is None:
    return fn
  P = jax.sharding.PartitionSpec
  return jax.shard_map(fn, mesh=mesh,
                       in_specs=(P(SEED_AXIS),) * num_args + (P(),) * num_replicated,
                       out_specs=P(SEED_AXIS))


def unstack(states: steps.GANState, index: int) -> steps.GANState:
  """Seed `index` of stacked states, as a single-seed state."""
  return jax.tree_util.tree_map(lambda a: a[index], states)


def make_multi_seed_step(spec: steps.GANSpec, num_seeds: int | None = None, *,
                         donate: bool = True) -> Callable:
  """jit(vmap(train_step)): (states, batches) -> (states, metrics), all with a seeds axis.

  `batches['x']` is (S, d_steps * B, ...) (and 'label' (S, d_steps * B) for a
  conditional GAN). `num_seeds`, if given, is checked against the states.
  """
  step = jax.vmap(functools.partial(steps.train_step, spec=spec))

  def multi_step(states, batches):
    if num_seeds is not None and states.step.shape != (num_seeds,):
      raise ValueError(f'expected states of {num_seeds} seeds, got a step of shape '
                       f'{states.step.shape}.')
    return step(states, batches)

  return jax.jit(multi_step, donate_argnums=0 if donate else ())


def train_n_steps(state: steps.GANState, data_key: Array, *, spec: steps.GANSpec,
                  sampler: Sampler, batch_size: int, num_steps: int
                  ) -> tuple[steps.GANState, dict[str, Array]]:
  """`num_steps` train steps of one seed under `lax.scan`, real data drawn on device.

  The batch of step t is `sampler(fold_in(data_key, t), d_steps * batch_size)`, a
  dict such as `mixtures.make_sampler` returns; `gan_jax.main` draws the same.
  Returns the final state and the metrics averaged over the steps.
  """
  n = spec.d_steps * batch_size

  def body(s, _):
    return steps.train_step(s, sampler(jax.random.fold_in(data_key, s.step), n), spec=spec)

  state, metrics = jax.lax.scan(body, state, None, length=num_steps)
  return state, jax.tree_util.tree_map(lambda m: jnp.mean(m, axis=0), metrics)


def make_train_n_steps(spec: steps.GANSpec, sampler: Sampler, *, batch_size: int,
                       num_steps: int, donate: bool = True,
                       mesh: jax.sharding.Mesh | None = None) -> Callable:
  """jit(vmap(train_n_steps)): (states, data_keys) -> (states, metrics) for S seeds.

  One call runs `num_steps` steps of every seed; metrics are (S,) means over them.
  With a `seed_mesh`, states and keys should be placed by `shard_seeds`; each
  device then runs its own seeds.
  """
  fn = functools.partial(train_n_steps, spec=spec, sampler=sampler,
                         batch_size=batch_size, num_steps=num_steps)
  return jax.jit(_over_seeds(jax.vmap(fn), mesh, 2), donate_argnums=0 if donate else ())


def make_sample_fn(spec: steps.GANSpec, mesh: jax.sharding.Mesh | None = None) -> Callable:
  """jit(vmap(generate)) over seeds at a shared z: (states, z) -> (S, N, ...) samples.

  With a `seed_mesh`, z is replicated and each device samples its own seeds.
  """

  def sample(g_params, g_batch_stats, z: Array) -> Array:
    return jax.vmap(lambda p, bs: steps.generate(spec, p, bs, z))(g_params, g_batch_stats)

  sample = jax.jit(_over_seeds(sample, mesh, 2, 1))
  return lambda states, z: sample(states.g_params, states.g_batch_stats, z)


def finite(states: steps.GANState) -> Array:
  """(S,) bool: every parameter of seed s is finite."""
  leaves = jax.tree_util.tree_leaves((states.g_params, states.d_params))
  ok = [jnp.all(jnp.isfinite(x.reshape(x.shape[0], -1)), axis=1) for x in leaves]
  return functools.reduce(jnp.logical_and, ok)


# ---------------------------------------------------------------------------
# Training and evaluating many seeds of one config (a sweep variant).
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class RunResult:
  """What `train_and_evaluate` measured; sweep.py writes it to results.csv and npz."""
  steps: np.ndarray              # (T,) evaluation steps
  modes: np.ndarray              # (S, T)
  high_quality: np.ndarray       # (S, T)
  kl: np.ndarray                 # (S, T)
  kl_all: np.ndarray             # (S, T)
  diverged_at: np.ndarray        # (S,) first evaluation step with non-finite params, 0 if none
  final_samples: np.ndarray      # (S, N, 2)
  strip_samples: np.ndarray      # (T, N, 2) seed 0's samples at every evaluation
  wall_s: float
  steps_per_s: float


def train_and_evaluate(config: ml_collections.ConfigDict, seeds: Sequence[int], *,
                       desc: str = '') -> RunResult:
  """Trains a 2-D mixture `config` for every seed in one vmapped program.

  Every `config.sweep.eval_every` steps all seeds are evaluated on
  `config.eval.num_samples` samples of the run's one evaluation z
  (`evaluation.eval_key`), with `evaluation.mixture_summary`. With several
  devices the seeds are sharded over `seed_mesh(len(seeds))`.
  """
  return train_and_evaluate_states(config, seeds, desc=desc)[0]


def _mesh_note(num_seeds: int, mesh: jax.sharding.Mesh | None) -> str | None:
  """A line saying the seeds do not use every device, or None when they do."""
  used = 1 if mesh is None else mesh.size
  if used == jax.device_count():
    return None
  return (f'seeds: {num_seeds} seeds on {used} of {jax.device_count()} devices '
          f'({used} is the largest device count that divides {num_seeds}).')


_AUTO = 'auto'


def train_and_evaluate_states(config: ml_collections.ConfigDict, seeds: Sequence[int], *,
                              desc: str = '', mesh: jax.sharding.Mesh | None | str = _AUTO
                              ) -> tuple[RunResult, steps.GANState]:
  """`train_and_evaluate`, also returning the final stacked states (on the host).

  `mesh`: 'auto' (default) for `seed_mesh(len(seeds))`, None for one device, or
  a 1-D mesh with a 'seeds' axis whose size divides the seed count.
  """
  start = time.perf_counter()
  data_info = input_pipeline.get_info(config.data)
  if not data_info.is_mixture:
    raise ValueError(f'the sweep runner trains 2-D mixtures; config.data.name='
                     f'{config.data.name!r}, valid choices: '
                     f'{", ".join(input_pipeline.MIXTURE_NAMES)}.')
  spec = factory.build_spec(config, data_info)
  centers, std = input_pipeline.mixture_modes(config.data)
  num_steps = int(config.train.num_steps)
  eval_every = int(config.sweep.eval_every)
  if num_steps % eval_every:
    raise ValueError(f'config.train.num_steps={num_steps} must be a multiple of '
                     f'config.sweep.eval_every={eval_every}.')
  if isinstance(mesh, str):
    mesh = seed_mesh(len(seeds))
    note = _mesh_note(len(seeds), mesh)
    if note:  # the fallback is said, not silent.
      tqdm.tqdm.write(note)
  elif mesh is not None and len(seeds) % mesh.shape[SEED_AXIS]:
    raise ValueError(f'{len(seeds)} seeds cannot be split evenly over a mesh of '
                     f'{mesh.shape[SEED_AXIS]} devices.')

  states = shard_seeds(init_states(spec, seeds, data_info.shape), mesh)
  keys = shard_seeds(data_keys(seeds), mesh)
  train = make_train_n_steps(
      spec, input_pipeline.mixture_sampler(config.data),
      batch_size=int(config.train.batch_size), num_steps=eval_every, mesh=mesh)
  sample = make_sample_fn(spec, mesh)
  z = steps.sample_latents(spec, evaluation.eval_key(config), int(config.eval.num_samples))
  evaluate = jax.jit(_over_seeds(
      jax.vmap(lambda x: evaluation.mixture_summary(x, centers, std)), mesh, 1))

  history: dict[str, list[np.ndarray]] = {k: [] for k in ('modes', 'high_quality', 'kl',
                                                          'kl_all')}
  eval_steps, strip = [], []
  diverged_at = np.zeros(len(seeds), np.int64)
  samples = None
  train_time = 0.0
  with tqdm.tqdm(total=num_steps, desc=desc, dynamic_ncols=True, leave=False) as bar:
    for done in range(eval_every, num_steps + 1, eval_every):
      t0 = time.perf_counter()
      states, _ = train(states, keys)
      jax.block_until_ready(states)
      if done > eval_every:  # the first call includes compilation.
        train_time += time.perf_counter() - t0
      samples = sample(states, z)
      results, ok = jax.device_get((evaluate(samples), finite(states)))
      newly = (~ok) & (diverged_at == 0)
      diverged_at[newly] = done
      for k in history:
        history[k].append(np.asarray(results[k]))
      eval_steps.append(done)
      strip.append(np.asarray(samples[0]))
      bar.update(eval_every)
      bar.set_postfix(modes=' '.join(str(int(m)) for m in results['modes']))

  timed_steps = num_steps - eval_every
  result = RunResult(
      steps=np.asarray(eval_steps),
      **{k: np.stack(v, axis=1) for k, v in history.items()},
      diverged_at=diverged_at,
      final_samples=np.asarray(samples),
      strip_samples=np.stack(strip),
      wall_s=time.perf_counter() - start,
      steps_per_s=timed_steps / train_time if timed_steps else float('nan'))
  return result, jax.device_get(states)


# ---------------------------------------------------------------------------
# Discriminator rejection sampling of trained seeds (an evaluation of its own).
# ---------------------------------------------------------------------------

# DRS's candidates come from their own stream, not the evaluation z: they are
# many more than eval.num_samples, and the raw evaluation stays as it was.
DRS_KEY_OFFSET = 1


def drs_evaluate(config: ml_collections.ConfigDict, states: steps.GANState
                 ) -> tuple[rejection.DRSResult, dict[str, np.ndarray]]:
  """`rejection.rejection_sample` of every seed of `states`, and its mixture metrics.

  Each seed's G proposes and its own D scores; every seed keeps up to
  `config.eval.num_samples` accepted samples, on which `evaluation.mixture_summary`
  gives (S,) modes, high_quality, kl and kl_all (a seed that fell short of
  num_samples is scored on what it accepted).
  """
  rejection.check_config(config)
  drs = config.eval.drs
  data_info = input_pipeline.get_info(config.data)
  spec = factory.build_spec(config, data_info)
  centers, std = input_pipeline.mixture_modes(config.data)

  @jax.jit
  def propose(g_params, g_batch_stats, d_params, d_batch_stats, key):
    z = steps.sample_latents(spec, key, int(drs.batch_size))
    x = jax.vmap(lambda p, bs: steps.generate(spec, p, bs, z))(g_params, g_batch_stats)
    logits = jax.vmap(lambda p, bs, xs: steps.discriminate(spec, p, bs, xs))(
        d_params, d_batch_stats, x)
    return x, logits

  def draw(key, n):
    # Every batch, the burn-in too, is drawn in batch_size chunks: one compiled shape.
    chunks = [propose(states.g_params, states.g_batch_stats, states.d_params,
                      states.d_batch_stats, jax.random.fold_in(key, i))
              for i in range(-(-n // int(drs.batch_size)))]
    x = jnp.concatenate([c[0] for c in chunks], axis=1)[:, :n]
    logits = jnp.concatenate([c[1] for c in chunks], axis=1)[:, :n]
    return x, logits

  key = jax.random.fold_in(evaluation.eval_key(config), DRS_KEY_OFFSET)
  result = rejection.rejection_sample(
      key, draw, int(config.eval.num_samples), burn_in=int(drs.burn_in),
      batch_size=int(drs.batch_size), max_candidates=int(drs.max_candidates),
      epsilon=float(drs.epsilon), gamma_percentile=float(drs.gamma_percentile))
  # Compiled once per sample count (usually one: every seed reached num_samples).
  summaries = [jax.device_get(evaluation.mixture_summary_compiled(
      jnp.asarray(x), jnp.asarray(centers), std)) if len(x) else None
               for x in result.samples]
  empty = {'modes': 0, 'high_quality': 0.0, 'kl': float(np.log(len(centers))),
           'kl_all': float(np.log(len(centers)))}
  metrics = {k: np.asarray([float((m or empty)[k]) for m in summaries])
             for k in ('modes', 'high_quality', 'kl', 'kl_all')}
  return result, metrics
