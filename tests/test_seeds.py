"""Many seeds in one program (gan_jax.seeds): seed i of the vmapped run is seed i run alone."""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gan_jax import input_pipeline
from gan_jax import losses
from gan_jax import models
from gan_jax import seeds
from gan_jax import steps
from gan_jax import xla_flags
from gan_jax.datasets import mixtures

SEEDS = (3, 7, 11)
BATCH = 8
NUM_STEPS = 3
MIXTURE = {'name': 'ring', 'num_modes': 3, 'radius': 1.0, 'std': 0.1}


def tiny_spec(unroll_steps: int = 0) -> steps.GANSpec:
  g, d = models.build_models(
      dict(name='mlp', g_widths=(8,), d_widths=(8,), g_activation='relu',
           d_activation='relu', d_dropout=0.0, out_activation='linear'), (2,), 0)
  return steps.GANSpec(generator=g, discriminator=d, g_tx=optax.adam(1e-2, b1=0.5),
                       d_tx=optax.adam(1e-2, b1=0.5, eps_root=1e-12),
                       loss=losses.get_loss('non_saturating'), latent_dim=4,
                       unroll_steps=unroll_steps)


def assert_trees_close(a, b, rtol=1e-5, atol=1e-6):
  jax.tree_util.tree_map(
      lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol,
                                              atol=atol), a, b)


def test_init_states_stacks_init_state():
  spec = tiny_spec()
  states = seeds.init_states(spec, SEEDS, (2,))
  assert states.step.shape == (len(SEEDS),)
  for i, s in enumerate(SEEDS):
    alone = steps.init_state(spec, jax.random.PRNGKey(s), (2,))
    assert_trees_close(seeds.unstack(states, i), alone, rtol=0, atol=0)


def test_vmapped_seeds_equal_seeds_run_alone():
  # K = 2 lookahead steps: the scan over D's optimizer is vmapped too (K = 0 is
  # covered by test_multi_seed_step_equals_single_steps).
  spec = tiny_spec(unroll_steps=2)
  sampler = mixtures.make_sampler(MIXTURE)
  keys = seeds.data_keys(SEEDS)
  run = seeds.make_train_n_steps(spec, sampler, batch_size=BATCH, num_steps=NUM_STEPS)
  states, metrics = run(seeds.init_states(spec, SEEDS, (2,)), keys)
  assert metrics['g_loss'].shape == (len(SEEDS),)

  step = jax.jit(functools.partial(steps.train_step, spec=spec))
  for i, s in enumerate(SEEDS):
    state = steps.init_state(spec, jax.random.PRNGKey(s), (2,))
    losses_alone = []
    for t in range(NUM_STEPS):
      batch = sampler(jax.random.fold_in(keys[i], t), BATCH)
      state, m = step(state, batch)
      losses_alone.append(m['g_loss'])
    assert int(state.step) == NUM_STEPS
    assert_trees_close(seeds.unstack(states, i), state)
    np.testing.assert_allclose(metrics['g_loss'][i], np.mean(losses_alone), rtol=1e-5)


def test_multi_seed_step_equals_single_steps():
  spec = tiny_spec()
  states = seeds.init_states(spec, SEEDS, (2,))
  x = jax.random.normal(jax.random.PRNGKey(0), (len(SEEDS), BATCH, 2))
  new, metrics = seeds.make_multi_seed_step(spec, len(SEEDS), donate=False)(states, {'x': x})
  assert metrics['d_loss'].shape == (len(SEEDS),)
  step = jax.jit(functools.partial(steps.train_step, spec=spec))
  for i in range(len(SEEDS)):
    alone, _ = step(seeds.unstack(states, i), {'x': x[i]})
    assert_trees_close(seeds.unstack(new, i), alone)


def test_finite_flags_each_seed():
  states = steps.GANState(step=jnp.zeros(3), g_params={'w': jnp.ones((3, 2, 2))},
                          d_params={'w': jnp.ones((3, 4))}, g_opt_state=(), d_opt_state=(),
                          g_batch_stats={}, d_batch_stats={}, ema_params={}, rng=jnp.zeros(3))
  bad = states.replace(g_params={'w': states.g_params['w'].at[1, 0, 1].set(jnp.nan)})
  np.testing.assert_array_equal(seeds.finite(bad), [True, False, True])


def test_main_and_a_one_seed_sweep_see_the_same_data_and_train_alike():
  # gan_jax.main's path (host batches from input_pipeline, one jitted step each)
  # against the sweep's (data drawn on device inside a vmapped lax.scan): the
  # batches are the same numbers, the states agree to float32 rounding (XLA
  # fuses the scanned step differently, so not bit for bit).
  config = {'name': 'ring', 'num_modes': 3, 'radius': 1.0, 'std': 0.1}
  spec = tiny_spec()
  state = steps.init_state(spec, jax.random.PRNGKey(SEEDS[0]), (2,))
  step = jax.jit(functools.partial(steps.train_step, spec=spec))
  batches = input_pipeline.make_iterator(config, split='train', batch_size=BATCH,
                                         seed=SEEDS[0])
  for _ in range(NUM_STEPS):
    state, _ = step(state, next(batches))
  run = seeds.make_train_n_steps(spec, input_pipeline.mixture_sampler(config),
                                 batch_size=BATCH, num_steps=NUM_STEPS)
  swept, _ = run(seeds.init_states(spec, SEEDS[:1], (2,)), seeds.data_keys(SEEDS[:1]))
  assert_trees_close(seeds.unstack(swept, 0), state, rtol=1e-5, atol=1e-6)


def test_single_thread_flags_are_all_xla_flags(monkeypatch):
  # XLA stops parsing XLA_FLAGS at a token without '--': a device count appended
  # after one (benchmarks/sweep.py appends) would be dropped without a word.
  tokens = xla_flags.CPU_SINGLE_THREAD.split()
  assert tokens and all(t.startswith('--') and '=' in t for t in tokens), tokens
  monkeypatch.setenv('XLA_FLAGS', '--xla_force_host_platform_device_count=4')
  xla_flags.pin_cpu_to_one_thread()  # the user's flags win
  assert os.environ['XLA_FLAGS'] == '--xla_force_host_platform_device_count=4'
  monkeypatch.delenv('XLA_FLAGS')
  xla_flags.pin_cpu_to_one_thread()
  assert os.environ['XLA_FLAGS'] == xla_flags.CPU_SINGLE_THREAD


_AFFINITY = hasattr(os, 'sched_getaffinity')


@pytest.mark.skipif(not _AFFINITY, reason='the OS has no CPU affinity call')
@pytest.mark.parametrize('index', [0, 1, 7])
def test_pin_core_env_confines_a_process_to_one_core(index):
  # In a child: the test process itself must keep all its cores.
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  allowed = sorted(os.sched_getaffinity(0))
  code = ('import os; from gan_jax import xla_flags; xla_flags.pin_to_core_from_env(); '
          'import jax, jax.numpy as jnp; jnp.ones(3).sum().block_until_ready(); '
          'print(sorted(os.sched_getaffinity(0)))')
  out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                       check=True, env=dict(os.environ, **{xla_flags.PIN_CORE_ENV: str(index)}))
  assert out.stdout.split('\n')[-2] == str([allowed[index % len(allowed)]])
  assert sorted(os.sched_getaffinity(0)) == allowed


def test_pin_core_env_that_is_no_integer_is_a_named_error(monkeypatch):
  monkeypatch.setenv(xla_flags.PIN_CORE_ENV, 'first')
  with pytest.raises(ValueError, match="GAN_JAX_PIN_CORE='first' must be a core index"):
    xla_flags.pin_to_core_from_env()
  monkeypatch.delenv(xla_flags.PIN_CORE_ENV)
  assert xla_flags.pin_to_core_from_env() is None  # unset: nothing pinned


def test_sweep_processes_get_one_core_each(monkeypatch):
  from gan_jax import sweep  # pylint: disable=g-import-not-at-top
  started = []

  class FakeChild:
    def __init__(self, cmd, env):
      started.append((cmd, env))

    def wait(self):
      return 0

  monkeypatch.setattr(sweep.subprocess, 'Popen', FakeChild)
  assert sweep.run_processes(['sweep.py', '--config', 'c.py', '--workdir', 'w'], 3) == 0
  assert [env[xla_flags.PIN_CORE_ENV] for _, env in started] == ['0', '1', '2']
  assert [cmd[-2:] for cmd, _ in started] == [
      [f'--shard_index={i}', '--shard_by=variant'] for i in range(3)]
