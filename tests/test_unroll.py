"""The unrolled GAN (Metz et al. 2016) in steps.train_step, against closed forms.

A constant generator G(z) = a and a linear critic D(x) = w.x + c under the
Wasserstein loss with SGD make every quantity of the unrolled step a
polynomial in (a, w): D's gradient w.r.t. w is (a - rbar) whatever w is, so K
lookahead steps give w_K = w - K eta (a - rbar), and

    G's loss after K steps   L(a) = -(w_K(a).a + c)
    exact gradient           dL/da = -w + K eta (2a - rbar)
    first-order gradient     -w_K = -w + K eta (a - rbar)      (w_K held fixed)

On a small nonlinear net the exact gradient (through Adam's moments) is checked
against central finite differences (float32, a directional derivative).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
from jax import flatten_util
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gan_jax import losses
from gan_jax import models
from gan_jax import steps

from conftest import A0, ETA_D, ETA_G, REAL, RBAR, W0, linear_spec

def one_step(spec: steps.GANSpec) -> steps.GANState:
  state = steps.init_state(spec, jax.random.PRNGKey(0), (2,))
  state, _ = jax.jit(functools.partial(steps.train_step, spec=spec))(
      state, {'x': jnp.asarray(REAL)})
  return state


def closed_form_step(k: int, exact: bool) -> tuple[np.ndarray, np.ndarray]:
  """(a1, w1) of one d_first step with K = k lookahead steps."""
  w1 = W0 - ETA_D * (A0 - RBAR)
  if exact:
    grad_a = -w1 + k * ETA_D * (2 * A0 - RBAR)
  else:
    grad_a = -w1 + k * ETA_D * (A0 - RBAR)
  return A0 - ETA_G * grad_a, w1


@pytest.mark.parametrize('k,exact', [(0, True), (1, True), (3, True), (3, False)])
def test_unrolled_step_matches_closed_form(k, exact):
  state = one_step(linear_spec(unroll_steps=k, unroll_exact=exact))
  a1, w1 = closed_form_step(k, exact)
  # D's real update is the plain one whatever K is.
  np.testing.assert_allclose(state.d_params['w'], w1, rtol=1e-6)
  np.testing.assert_allclose(state.d_params['c'], 0.0, atol=1e-7)
  np.testing.assert_allclose(state.g_params['a'], a1, rtol=1e-6)


def test_zero_unroll_is_exactly_the_plain_gan_step():
  # K = 0: G follows -w1, D after its own update (Goodfellow et al. 2014, alg. 1),
  # bit for bit, with or without the unrolling switches.
  a1, w1 = closed_form_step(0, True)
  for exact, remat in [(True, False), (False, True)]:
    state = one_step(linear_spec(unroll_steps=0, unroll_exact=exact, unroll_remat=remat))
    np.testing.assert_array_equal(state.g_params['a'], np.float32(A0) - np.float32(ETA_G) * -(
        np.float32(W0) - np.float32(ETA_D) * (np.float32(A0) - np.float32(RBAR))))
    np.testing.assert_allclose(state.g_params['a'], a1, rtol=1e-6)
    np.testing.assert_allclose(state.d_params['w'], w1, rtol=1e-6)


def test_unroll_remat_gives_the_same_step():
  plain = one_step(linear_spec(unroll_steps=3))
  remat = one_step(linear_spec(unroll_steps=3, unroll_remat=True))
  np.testing.assert_allclose(remat.g_params['a'], plain.g_params['a'], rtol=1e-6)


# ---------------------------------------------------------------------------
# Exact gradient through Adam against finite differences.
# ---------------------------------------------------------------------------


def test_exact_unrolled_gradient_matches_finite_differences():
  # The losses reduce in float32, so this is a float32 check: a smooth (tanh)
  # net, eps = 1e-2 and a directional derivative keep the rounding error of the
  # central difference (~1e-7 |L| / eps) and its O(eps^2) bias near 1e-4.
  g, d = models.build_models(
      dict(name='mlp', g_widths=(4,), d_widths=(4,), g_activation='tanh',
           d_activation='tanh', d_dropout=0.0, out_activation='linear'), (2,), 0)
  spec = steps.GANSpec(
      generator=g, discriminator=d, g_tx=optax.sgd(0.1),
      d_tx=optax.adam(0.1, b1=0.5, eps_root=1e-12),
      loss=losses.get_loss('non_saturating'), latent_dim=3, unroll_steps=3)
  state = steps.init_state(spec, jax.random.PRNGKey(1), (2,))
  real = jax.random.normal(jax.random.PRNGKey(2), (8, 2))
  key = jax.random.PRNGKey(3)

  def g_loss(g_params, exact=True):
    s = dataclasses.replace(spec, unroll_exact=exact)
    return steps._g_objective(g_params, s, state, real, None, key, None)[0]  # pylint: disable=protected-access

  flat, unravel = flatten_util.ravel_pytree(state.g_params)
  direction = jax.random.normal(jax.random.PRNGKey(4), flat.shape)
  direction = direction / jnp.linalg.norm(direction)
  directional = lambda grads: float(jnp.dot(flatten_util.ravel_pytree(grads)[0],
                                            direction))
  eps = 1e-2
  g_loss = jax.jit(g_loss, static_argnames='exact')
  fd = float(g_loss(unravel(flat + eps * direction)) -
             g_loss(unravel(flat - eps * direction))) / (2 * eps)
  exact = directional(jax.grad(g_loss)(state.g_params))
  first_order = directional(jax.grad(functools.partial(g_loss, exact=False))(
      state.g_params))
  np.testing.assert_allclose(exact, fd, rtol=2e-3, atol=1e-4)
  # The lookahead matters here: the first-order gradient is measurably different.
  assert abs(first_order - fd) > 10 * abs(exact - fd) + 1e-3, (exact, first_order, fd)


# ---------------------------------------------------------------------------
# G run once on the K lookahead batches == the K-pass loop.
# ---------------------------------------------------------------------------


# Each branch of the G-once lookahead (one flat G call; vmapped for BatchNorm)
# and each mode (exact; first order) in CI; the other two pairings are slow.
@pytest.mark.parametrize('exact,batch_norm', [
    (True, False), (False, True),
    pytest.param(True, True, marks=pytest.mark.slow),
    pytest.param(False, False, marks=pytest.mark.slow)])
def test_g_once_lookahead_gives_the_k_pass_gradients(exact, batch_norm):
  # The same keys draw the same latents in both; with a BatchNorm G each of the K
  # batches must keep its own statistics (vmap), or the fakes would differ.
  g, d = models.build_models(
      dict(name='mlp', g_widths=(16, 16), d_widths=(16,), g_activation='relu',
           d_activation='relu', d_dropout=0.0, out_activation='linear',
           batch_norm=batch_norm), (2,), 0)
  spec = steps.GANSpec(
      generator=g, discriminator=d, g_tx=optax.adam(1e-3),
      d_tx=optax.adam(0.05, b1=0.5, eps_root=1e-12),
      loss=losses.get_loss('non_saturating'), latent_dim=2, unroll_steps=4,
      unroll_exact=exact)
  state = steps.init_state(spec, jax.random.PRNGKey(1), (2,))
  real = jax.random.normal(jax.random.PRNGKey(2), (32, 2))

  def grads(g_once):
    s = dataclasses.replace(spec, unroll_g_once=g_once)
    return jax.jit(lambda st: steps._g_grads(s, st, real, None, jax.random.PRNGKey(3), None)[0])(state)  # pylint: disable=protected-access

  once, k_pass = grads(True), grads(False)
  flat_once = flatten_util.ravel_pytree(once)[0]
  flat_k = flatten_util.ravel_pytree(k_pass)[0]
  assert float(jnp.linalg.norm(flat_k)) > 1e-3  # a gradient worth comparing
  np.testing.assert_allclose(flat_once, flat_k, rtol=1e-4, atol=1e-6)
  # The lookahead changes G's gradient (K = 0 would be a different number), so
  # agreeing above is not agreeing on the plain GAN's gradient.
  plain = jax.jit(lambda st: steps._g_grads(dataclasses.replace(spec, unroll_steps=0), st, real,  # pylint: disable=protected-access
                                             None, jax.random.PRNGKey(3), None)[0])(state)
  assert float(jnp.linalg.norm(flatten_util.ravel_pytree(plain)[0] - flat_k)) > 1e-4
