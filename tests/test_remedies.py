"""Remedies for mode collapse as options of one step: update order, D steps per G
step, minibatch discrimination / stddev, PacGAN packing.

The update-order and D-steps tests use the closed-form linear game of conftest.py:
G(z) = a, D(x) = w.x + c, the Wasserstein loss and SGD, where D's gradient w.r.t.
w is (a - rbar) and G's gradient w.r.t. a is -w.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import models
from gan_jax import steps
from conftest import A0, ETA_D, ETA_G, REAL, RBAR, W0, linear_spec

REAL2 = REAL[::-1] * 2.0  # second micro-batch, mean (2, 0)


def run(spec: steps.GANSpec, x: np.ndarray) -> steps.GANState:
  state = steps.init_state(spec, jax.random.PRNGKey(0), (2,))
  state, _ = jax.jit(functools.partial(steps.train_step, spec=spec))(state, {'x': jnp.asarray(x)})
  return state


@pytest.mark.parametrize('order', ['d_first', 'g_first', 'simultaneous'])
def test_update_order(order):
  state = run(linear_spec(update_order=order), REAL)
  if order == 'd_first':      # G answers the updated D.
    w1 = W0 - ETA_D * (A0 - RBAR)
    a1 = A0 + ETA_G * w1
  elif order == 'g_first':    # D answers the updated G.
    a1 = A0 + ETA_G * W0
    w1 = W0 - ETA_D * (a1 - RBAR)
  else:                       # both gradients at (a0, w0).
    a1 = A0 + ETA_G * W0
    w1 = W0 - ETA_D * (A0 - RBAR)
  np.testing.assert_allclose(state.g_params['a'], a1, rtol=1e-6)
  np.testing.assert_allclose(state.d_params['w'], w1, rtol=1e-6)


@pytest.mark.parametrize('order', ['d_first', 'g_first'])
def test_two_d_steps_use_one_fresh_real_batch_each(order):
  x = np.concatenate([REAL, REAL2])
  state = run(linear_spec(d_steps=2, update_order=order), x)
  a1 = A0 + ETA_G * W0  # g_first: G moves first, against w0.
  a_seen = A0 if order == 'd_first' else a1
  w1 = W0 - ETA_D * (a_seen - REAL.mean(0))
  w2 = w1 - ETA_D * (a_seen - REAL2.mean(0))
  np.testing.assert_allclose(state.d_params['w'], w2, rtol=1e-6)
  np.testing.assert_allclose(state.g_params['a'],
                             A0 + ETA_G * w2 if order == 'd_first' else a1, rtol=1e-6)


def toy_d(**kw):
  _, d = models.build_models(dict(name='mlp', d_widths=(6,), d_activation='relu',
                                  d_dropout=0.0, **kw), (2,), 0)
  return d


@pytest.mark.parametrize('minibatch,out_features', [('none', 6), ('discrimination', 6 + 50),
                                                     ('stddev', 6 + 1)])
def test_minibatch_layers_let_d_see_the_batch(minibatch, out_features):
  d = toy_d(minibatch=minibatch)
  x = jax.random.normal(jax.random.PRNGKey(0), (8, 2))
  params = d.init(jax.random.PRNGKey(1), x, train=False)['params']
  assert params['dense_out']['kernel'].shape == (out_features, 1)
  logits = d.apply({'params': params}, x, train=False)
  assert logits.shape == (8,)
  # Collapse the other seven examples onto the first: D's verdict on example 0
  # changes only if D looks across the batch.
  collapsed = x.at[1:].set(x[0])
  changed = d.apply({'params': params}, collapsed, train=False)[0] != logits[0]
  assert bool(changed) == (minibatch != 'none')


def test_pacgan_packing_judges_m_samples_jointly():
  d = toy_d(pack=2)
  x = jax.random.normal(jax.random.PRNGKey(0), (8, 2))
  params = d.init(jax.random.PRNGKey(1), x, train=False)['params']
  assert params['dense_0']['kernel'].shape == (4, 6)  # two 2-D samples per input
  logits = d.apply({'params': params}, x, train=False)
  assert logits.shape == (4,)
  # Changing sample 1 changes the verdict on pack 0 = (x0, x1) only.
  moved = d.apply({'params': params}, x.at[1].add(1.0), train=False)
  assert moved[0] != logits[0]
  np.testing.assert_array_equal(moved[1:], logits[1:])


@pytest.mark.parametrize('model', [dict(minibatch='discrimination'), dict(minibatch='stddev'),
                                   dict(pack=2)])
def test_remedies_train(model):
  g, d = models.build_models(dict(name='mlp', g_widths=(6,), d_widths=(6,),
                                  d_activation='relu', d_dropout=0.0,
                                  out_activation='linear', **model), (2,), 0)
  base = linear_spec()
  spec = steps.GANSpec(generator=g, discriminator=d, g_tx=base.g_tx, d_tx=base.d_tx,
                       loss=base.loss, latent_dim=3)
  state = steps.init_state(spec, jax.random.PRNGKey(0), (2,))
  new, metrics = jax.jit(functools.partial(steps.train_step, spec=spec))(
      state, {'x': jnp.asarray(REAL)})
  assert all(np.isfinite(float(v)) for v in metrics.values())
  # Both players moved: every parameter tree differs from its initial value.
  for before, after in ((state.d_params, new.d_params), (state.g_params, new.g_params)):
    assert jax.tree_util.tree_structure(before) == jax.tree_util.tree_structure(after)
    assert not all(np.allclose(b, a) for b, a in zip(jax.tree_util.tree_leaves(before),
                                                       jax.tree_util.tree_leaves(after)))
