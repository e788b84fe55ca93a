"""Semantics of the two-player step on tiny 2-D nets.

Update orders are checked against each other where the math says they must agree:
simultaneous updates take both gradients at the old point, so D's new parameters
equal D-first's and G's equal G-first's.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gan_jax import losses
from gan_jax import steps
from gan_jax.models import mlp

BATCH = 8


def make_spec(**overrides) -> steps.GANSpec:
  kwargs = dict(
      generator=mlp.MLPGenerator(out_shape=(2,), widths=(16,), out_activation='linear'),
      discriminator=mlp.MLPDiscriminator(widths=(16,), activation='relu', dropout=0.0),
      g_tx=optax.adam(1e-2), d_tx=optax.adam(1e-2),
      loss=losses.get_loss('non_saturating'), latent_dim=4)
  kwargs.update(overrides)
  return steps.GANSpec(**kwargs)


def batch(n: int = BATCH, *, labels: bool = False) -> dict[str, jax.Array]:
  x = jax.random.normal(jax.random.PRNGKey(42), (n, 2))
  out = {'x': x}
  if labels:
    out['label'] = jnp.arange(n) % 3
  return out


def run(spec: steps.GANSpec, data=None, state=None):
  state = state or steps.init_state(spec, jax.random.PRNGKey(0), (2,))
  step = jax.jit(functools.partial(steps.train_step, spec=spec))
  return state, step(state, batch() if data is None else data)


def tree_equal(a, b) -> bool:
  return all(jax.tree_util.tree_leaves(jax.tree_util.tree_map(
      lambda x, y: bool(jnp.array_equal(x, y)), a, b)))


def tree_close(a, b, **kw) -> None:
  jax.tree_util.tree_map(lambda x, y: np.testing.assert_allclose(x, y, **kw), a, b)


def test_one_step_updates_both_players_and_reports_metrics():
  state, (new, metrics) = run(make_spec())
  assert int(new.step) == 1
  assert not tree_equal(state.g_params, new.g_params)
  assert not tree_equal(state.d_params, new.d_params)
  for name in ('d_loss', 'g_loss', 'd_real', 'd_fake', 'g_grad_norm', 'd_grad_norm',
               'g_param_norm', 'd_param_norm'):
    assert np.isfinite(metrics[name]), name
  # Sigmoid losses report probabilities.
  assert 0.0 < float(metrics['d_real']) < 1.0 and 0.0 < float(metrics['d_fake']) < 1.0


def test_simultaneous_equals_d_first_for_d_and_g_first_for_g():
  _, (d_first, _) = run(make_spec(update_order='d_first'))
  _, (g_first, _) = run(make_spec(update_order='g_first'))
  _, (simul, _) = run(make_spec(update_order='simultaneous'))
  tree_close(simul.d_params, d_first.d_params, rtol=1e-6, atol=1e-7)
  tree_close(simul.g_params, g_first.g_params, rtol=1e-6, atol=1e-7)
  # ...and the alternating orders really differ from each other.
  assert not tree_equal(d_first.g_params, g_first.g_params)
  assert not tree_equal(d_first.d_params, g_first.d_params)


def test_d_steps_updates_d_that_many_times_per_g_update():
  spec = make_spec(d_steps=3)
  _, (new, _) = run(spec, batch(3 * BATCH))
  assert int(new.d_opt_state[0].count) == 3
  assert int(new.g_opt_state[0].count) == 1
  with pytest.raises(ValueError, match='d_steps=3'):
    run(spec, batch(3 * BATCH + 1))


def test_weight_clipping_bounds_every_critic_parameter():
  spec = make_spec(loss=losses.get_loss('wasserstein'), weight_clip=0.01)
  _, (new, _) = run(spec)
  for leaf in jax.tree_util.tree_leaves(new.d_params):
    assert float(jnp.max(jnp.abs(leaf))) <= 0.01 + 1e-7


def test_gradient_penalty_is_added_to_the_critic_loss():
  spec = make_spec(loss=losses.get_loss('wasserstein_gp'), gradient_penalty=10.0)
  _, (_, metrics) = run(spec)
  _, (_, plain) = run(dataclasses.replace(spec, gradient_penalty=0.0))
  assert float(metrics['gradient_penalty']) > 0
  np.testing.assert_allclose(metrics['d_loss'],
                             plain['d_loss'] + 10.0 * metrics['gradient_penalty'], rtol=1e-5)


def test_ema_is_the_decayed_average_of_g_params():
  spec = make_spec(ema_decay=0.25)
  state, (new, _) = run(spec)
  expected = jax.tree_util.tree_map(lambda e, p: 0.25 * e + 0.75 * p,
                                    state.g_params, new.g_params)
  tree_close(new.ema_params, expected, rtol=1e-6)


def test_label_smoothing_lowers_the_real_target():
  # BCE(l, 1 - s) - BCE(l, 1) = s (log sigmoid(l) - log sigmoid(-l)) = s l, so at
  # the same D the smoothed loss is the plain one plus s * mean(real logits).
  state, (_, plain) = run(make_spec())
  _, (_, smooth) = run(make_spec(label_smoothing=0.2))
  assert float(smooth['d_loss']) != float(plain['d_loss'])
  real_logits = steps.discriminate(make_spec(), state.d_params, {}, batch()['x'])
  np.testing.assert_allclose(smooth['d_loss'] - plain['d_loss'],
                             0.2 * jnp.mean(real_logits), rtol=1e-4, atol=1e-6)
  with pytest.raises(ValueError, match='label_smoothing'):
    make_spec(loss=losses.get_loss('hinge'), label_smoothing=0.1)


def test_conditional_step_needs_labels_and_matching_aware_changes_d():
  cond = dict(generator=mlp.MLPGenerator(out_shape=(2,), widths=(16,),
                                         out_activation='linear', num_classes=3),
              discriminator=mlp.MLPDiscriminator(widths=(16,), activation='relu',
                                                 dropout=0.0, num_classes=3),
              num_classes=3)
  spec = make_spec(**cond)
  _, (plain, _) = run(spec, batch(labels=True))
  _, (aware, metrics) = run(make_spec(matching_aware=True, **cond), batch(labels=True))
  assert np.isfinite(metrics['d_loss'])
  assert not tree_equal(plain.d_params, aware.d_params)
  with pytest.raises(ValueError, match='needs labels'):
    run(spec, batch())


def test_invalid_options_are_named():
  with pytest.raises(ValueError, match='update_order'):
    make_spec(update_order='random')
  with pytest.raises(ValueError, match='d_steps'):
    make_spec(update_order='simultaneous', d_steps=2)
  with pytest.raises(ValueError, match='matching_aware'):
    make_spec(matching_aware=True)
  with pytest.raises(ValueError, match='latent_distribution'):
    make_spec(latent_distribution='cauchy')


def test_step_is_deterministic_and_per_step_noise_differs():
  spec = make_spec()
  _, (a, ma) = run(spec)
  _, (b, mb) = run(spec)
  assert tree_equal(a, b) and tree_equal(ma, mb)
  # The next step draws fresh z: fold_in(rng, step) differs from step 0's.
  step = jax.jit(functools.partial(steps.train_step, spec=spec))
  _, m1 = step(a, batch())
  assert float(m1['d_fake']) != float(ma['d_fake'])
