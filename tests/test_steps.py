"""Semantics of the two-player step: every option against a closed form.

Most tests run the real `train_step` on the linear game of conftest.py (G(z) = a
or a + z, D(x) = w.x + c + ..., SGD), where each update is a formula in the
parameters and the data: the expected numbers are computed here by hand, never
by the code under test. Where an option draws noise, a large batch turns the
update into a sample mean whose expectation is known (the tolerances are several
standard errors). A few tests on tiny MLPs check what must hold for any net
(simultaneous = D-first for D and G-first for G, determinism).
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

from conftest import (A0, ETA_D, ETA_G, REAL, RBAR, W0, ConstantG, LinearD, ShiftG,
                      linear_spec, run_steps)

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


def test_step_is_deterministic():
  spec = make_spec()
  _, (a, ma) = run(spec)
  _, (b, mb) = run(spec)
  assert tree_equal(a, b) and tree_equal(ma, mb)


# ---------------------------------------------------------------------------
# Closed forms on the linear game (conftest.py).
# ---------------------------------------------------------------------------

N_LARGE = 4096  # a batch whose sample means are within ~1.6 % of expectations.


def zeros(n: int = N_LARGE) -> dict[str, np.ndarray]:
  return {'x': np.zeros((n, 2), np.float32)}


def probe_spec(**options) -> steps.GANSpec:
  """G(z) = z, frozen; D(x) = w.x + v/2 |x|^2 + u sum relu(|x_j| - 1), all 0, eta_D = 1.

  Against all-zero real data one D update reads the latents back:
  w1 = -mean(z), v1 = -mean |z|^2 / 2, u1 = -mean sum_j relu(|z_j| - 1).
  """
  return linear_spec(generator=ShiftG(), eta_g=0.0, eta_d=1.0, latent_dim=2,
                     discriminator=LinearD(w0=(0.0, 0.0), v0=0.0, u0=0.0), **options)


def test_each_step_draws_fresh_latents():
  # w_{t+1} = w_t - mean(z_t): the D updates of two consecutive steps give both
  # steps' latent means, which must differ (the rng is folded with the step).
  (_, s1, _), (_, s2, _) = run_steps(probe_spec(), [zeros(), zeros()])
  zbar0 = -np.asarray(s1.d_params['w'])
  zbar1 = np.asarray(s1.d_params['w']) - np.asarray(s2.d_params['w'])
  assert np.all(np.abs(zbar0) < 5 / np.sqrt(N_LARGE)), zbar0  # N(0, 1/n) each
  assert np.all(np.abs(zbar1) < 5 / np.sqrt(N_LARGE)), zbar1
  assert np.min(np.abs(zbar0 - zbar1)) > 1e-5, (zbar0, zbar1)


@pytest.mark.parametrize('distribution,variance,outside', [
    # U[-1, 1]: variance 1/3, never outside [-1, 1].
    ('uniform', 1.0 / 3.0, 0.0),
    # N(0, 1): E relu(|z| - 1) = 2 (phi(1) - (1 - Phi(1))) = 0.16663 per coordinate.
    ('normal', 1.0, 2 * 0.166631),
])
def test_latent_distribution(distribution, variance, outside):
  [(_, new, _)] = run_steps(probe_spec(latent_distribution=distribution), [zeros()])
  d = jax.device_get(new.d_params)
  se = 1 / np.sqrt(N_LARGE)
  np.testing.assert_allclose(-d['w'], 0.0, atol=5 * se)                 # mean 0
  np.testing.assert_allclose(-2 * d['v'] / 2, variance, rtol=8 * se)    # 2 coordinates
  np.testing.assert_allclose(-d['u'], outside, atol=5 * se)
  if distribution == 'uniform':
    assert float(d['u']) == 0.0


def test_gradient_penalty_update_of_a_linear_critic():
  # D(x) = w.x + c: grad_x D = w everywhere, so GP = (|w| - 1)^2 (plus the 1e-12
  # inside the norm) and D's SGD step is w1 = w0 - eta (a - rbar + 2 lam (|w0| - 1) w0/|w0|).
  lam = 2.0
  spec = linear_spec(loss='wasserstein_gp', gradient_penalty=lam)
  [(_, new, m)] = run_steps(spec, [{'x': REAL}])
  norm = np.sqrt(np.sum(W0.astype(np.float64) ** 2) + 1e-12)
  w1 = W0 - ETA_D * ((A0 - RBAR) + 2 * lam * (norm - 1) * W0 / norm)
  np.testing.assert_allclose(new.d_params['w'], w1, rtol=1e-6)
  np.testing.assert_allclose(new.d_params['c'], 0.0, atol=1e-7)
  np.testing.assert_allclose(m['gradient_penalty'], (norm - 1) ** 2, rtol=1e-5)
  np.testing.assert_allclose(m['d_loss'], W0 @ (A0 - RBAR) + lam * (norm - 1) ** 2, rtol=1e-5)
  np.testing.assert_allclose(new.g_params['a'], A0 + ETA_G * w1, rtol=1e-6)


def test_gradient_penalty_is_taken_at_uniform_interpolates():
  # Reals at r = (1, 0), fakes at a = (-1, 0): x_hat = (s, 0), s = 2 eps - 1 ~ U[-1, 1].
  # D(x) = w.x + v/2 |x|^2 with w = (2, 0), v = 1/2: |grad_x D| = 2 + s/2, so
  #   GP = E (1 + s/2)^2 = 1 + 1/12   (1.0 at the midpoints, 2.25 at the reals, 0.25 at the fakes),
  #   dGP/dv = E 2 (1 + s/2) s = 1/3,  dGP/dw_1 = E 2 (1 + s/2) = 2.
  # The losses' own gradients are a - r = (-2, 0) for w and (|a|^2 - |r|^2)/2 = 0 for v.
  lam, n = 3.0, N_LARGE
  spec = linear_spec(generator=ConstantG(a0=(-1.0, 0.0)), loss='wasserstein_gp',
                     discriminator=LinearD(w0=(2.0, 0.0), v0=0.5), eta_d=1.0,
                     gradient_penalty=lam)
  real = np.tile(np.array([[1.0, 0.0]], np.float32), (n, 1))
  [(_, new, m)] = run_steps(spec, [{'x': real}])
  se = 1 / np.sqrt(n)
  np.testing.assert_allclose(m['gradient_penalty'], 13 / 12, atol=4 * se)
  np.testing.assert_allclose(0.5 - new.d_params['v'], lam / 3, atol=4 * lam * se)
  np.testing.assert_allclose(2.0 - new.d_params['w'][0], -2.0 + 2 * lam, atol=4 * lam * se)
  np.testing.assert_allclose(new.d_params['w'][1], 0.0, atol=1e-6)


def test_r1_penalty_update_at_the_real_points():
  # D(x) = w.x + c + v/2 |x|^2: grad_x D(r_i) = w + v r_i, R1 = 1/2 mean_i |w + v r_i|^2,
  # dR1/dw = w + v rbar, dR1/dv = w.rbar + v mean |r_i|^2.
  gamma, v0 = 0.7, 0.3
  spec = linear_spec(discriminator=LinearD(v0=v0), r1_gamma=gamma)
  [(_, new, m)] = run_steps(spec, [{'x': REAL}])
  r = REAL.astype(np.float64)
  grads_x = W0 + v0 * r
  sq = np.mean(np.sum(r ** 2, axis=1))
  np.testing.assert_allclose(m['r1_penalty'], 0.5 * np.mean(np.sum(grads_x ** 2, axis=1)),
                             rtol=1e-5)
  w1 = W0 - ETA_D * ((A0 - RBAR) + gamma * (W0 + v0 * RBAR))
  v1 = v0 - ETA_D * (0.5 * (A0 @ A0 - sq) + gamma * (W0 @ RBAR + v0 * sq))
  np.testing.assert_allclose(new.d_params['w'], w1, rtol=1e-5)
  np.testing.assert_allclose(new.d_params['v'], v1, rtol=1e-5)
  np.testing.assert_allclose(new.d_params['c'], 0.0, atol=1e-7)


def test_instance_noise_std_decays_linearly_to_zero():
  # G = 0 and reals = 0, D(x) = |x|^2 frozen: D's inputs are the noise alone, so
  # d_real = d_fake = -g_loss = E |n|^2 = 2 std_t^2 with std_t = sigma max(0, 1 - t/T).
  sigma, decay = 0.5, 4
  spec = linear_spec(generator=ConstantG(a0=(0.0, 0.0)), eta_g=0.0, eta_d=0.0,
                     discriminator=LinearD(w0=(0.0, 0.0), v0=2.0),
                     instance_noise=sigma, instance_noise_decay_steps=decay)
  out = run_steps(spec, [zeros()] * 6)
  rtol = 5 * 1 / np.sqrt(N_LARGE)  # mean of chi^2_2 / 2: relative std 1/sqrt(n)
  for t, (_, _, m) in enumerate(out):
    std = sigma * max(0.0, 1.0 - t / decay)
    for name, sign in (('d_real', 1), ('d_fake', 1), ('g_loss', -1)):
      np.testing.assert_allclose(sign * m[name], 2 * std ** 2, rtol=rtol, atol=1e-12,
                                 err_msg=f'{name} at step {t}')
    if std > 0:  # real and fake inputs get independent noise
      assert abs(float(m['d_loss'])) > 1e-4


def test_constant_instance_noise_without_decay():
  spec = linear_spec(generator=ConstantG(a0=(0.0, 0.0)), eta_g=0.0, eta_d=0.0,
                     discriminator=LinearD(w0=(0.0, 0.0), v0=2.0), instance_noise=0.3)
  for _, _, m in run_steps(spec, [zeros()] * 2):
    np.testing.assert_allclose(m['d_real'], 2 * 0.09, rtol=5 / np.sqrt(N_LARGE))


def targets_spec(**options) -> steps.GANSpec:
  """Minimax loss; reals at (1, 0), fakes at (0, 0); D(x) = w.x + c with eta_D = 1."""
  return linear_spec(generator=ConstantG(a0=(0.0, 0.0)), loss='minimax', eta_d=1.0,
                     discriminator=LinearD(w0=(0.5, 1.0), c0=0.2), **options)


HALF_NORMAL_MEAN = np.sqrt(2 / np.pi)  # E |N(0, 1)|


@pytest.mark.parametrize('smoothing,noise', [(0.0, 0.0), (0.2, 0.0), (0.0, 0.2), (0.1, 0.2)])
def test_targets_of_smoothing_and_label_noise(smoothing, noise):
  # BCE(l, t) = softplus(l) - t l, so with l_r = w_1 + c and l_f = c:
  #   dL/dw_1 = sigmoid(l_r) - mean t_r,  dL/dc = sigmoid(l_r) - mean t_r + sigmoid(l_f) - mean t_f,
  # and one SGD step with eta = 1 reads both mean targets back. One-sided smoothing
  # sets t_r = 1 - s; noisy labels subtract |N(0, s^2)| from t_r and add it to t_f.
  n = N_LARGE
  real = np.tile(np.array([[1.0, 0.0]], np.float32), (n, 1))
  spec = targets_spec(label_smoothing=smoothing, label_noise=noise)
  [(_, new, m)] = run_steps(spec, [{'x': real}])
  sig = lambda l: 1 / (1 + np.exp(-l))
  l_r, l_f = 0.5 + 0.2, 0.2
  mean_tr = sig(l_r) - (0.5 - float(new.d_params['w'][0]))
  mean_tf = sig(l_r) - mean_tr + sig(l_f) - (0.2 - float(new.d_params['c']))
  se = noise * np.sqrt(1 - 2 / np.pi) / np.sqrt(n)
  np.testing.assert_allclose(mean_tr, 1 - smoothing - noise * HALF_NORMAL_MEAN,
                             atol=5 * se + 1e-4)
  np.testing.assert_allclose(mean_tf, noise * HALF_NORMAL_MEAN, atol=5 * se + 1e-4)
  np.testing.assert_allclose(new.d_params['w'][1], 1.0, atol=1e-6)  # the reals' x_2 is 0
  softplus = lambda l: np.log1p(np.exp(l))
  np.testing.assert_allclose(m['d_loss'], softplus(l_r) - mean_tr * l_r + softplus(l_f)
                             - mean_tf * l_f, rtol=1e-4)


def test_matching_aware_discriminator_loss_by_hand():
  # Two classes: the only wrong label of y is 1 - y. D(x, y) = w.x + c + (2y - 1) q.x
  # with q = (0, 0.7) and G(z) = (0.3, 0), so the fakes' logit w.a + c does not
  # depend on their (random) labels. The negatives are [fakes, reals with wrong
  # labels], n each, all with target 0:
  #   L_D = mean_i softplus(-l(r_i, y_i)) + 1/2 (softplus(l_f) + mean_i softplus(l(r_i, 1 - y_i))).
  w, c, q, a = np.array([0.5, 1.0]), 0.1, np.array([0.0, 0.7]), np.array([0.3, 0.0])
  labels = np.array([0, 1, 1, 0])
  spec = linear_spec(generator=ConstantG(a0=tuple(a)), loss='minimax', num_classes=2,
                     discriminator=LinearD(w0=tuple(w), c0=c, q0=tuple(q)))
  softplus = lambda l: np.log1p(np.exp(l))
  logit = lambda y: REAL @ w + c + (2 * y - 1) * (REAL @ q)
  l_f = a @ w + c
  l_real, l_wrong = logit(labels), logit(1 - labels)
  batch = {'x': REAL, 'label': labels}
  [(_, _, aware)] = run_steps(dataclasses.replace(spec, matching_aware=True), [batch])
  [(_, _, plain)] = run_steps(spec, [batch])
  np.testing.assert_allclose(aware['d_loss'], np.mean(softplus(-l_real)) + 0.5 * (
      softplus(l_f) + np.mean(softplus(l_wrong))), rtol=1e-5)
  np.testing.assert_allclose(plain['d_loss'], np.mean(softplus(-l_real)) + softplus(l_f),
                             rtol=1e-5)
  sig = lambda l: 1 / (1 + np.exp(-l))
  np.testing.assert_allclose(aware['d_real'], np.mean(sig(l_real)), rtol=1e-5)
  np.testing.assert_allclose(aware['d_fake'], sig(l_f), rtol=1e-5)


def linear_game_trajectory(num_steps: int):
  """(a_t, w_t) of the D-first linear game: w' = w - eta_D (a - rbar), a' = a + eta_G w'."""
  a, w = A0.astype(np.float64), W0.astype(np.float64)
  out = [(a, w)]
  for _ in range(num_steps):
    w = w - ETA_D * (a - RBAR)
    a = a + ETA_G * w
    out.append((a, w))
  return out


def test_ema_over_several_steps_follows_the_recursion():
  # e_0 = a_0, e_{t+1} = d e_t + (1 - d) a_{t+1}, with a_t the closed-form trajectory.
  decay, num_steps = 0.6, 4
  out = run_steps(linear_spec(ema_decay=decay), [{'x': REAL}] * num_steps)
  trajectory = linear_game_trajectory(num_steps)
  e = trajectory[0][0]
  for t, (_, new, _) in enumerate(out):
    a_next = trajectory[t + 1][0]
    e = decay * e + (1 - decay) * a_next
    np.testing.assert_allclose(new.g_params['a'], a_next, rtol=1e-5)
    np.testing.assert_allclose(new.ema_params['a'], e, rtol=1e-5, err_msg=f'step {t}')
  # Without EMA the "EMA" is G itself.
  [(_, new, _)] = run_steps(linear_spec(), [{'x': REAL}])
  np.testing.assert_array_equal(new.ema_params['a'], new.g_params['a'])


@pytest.mark.parametrize('unroll', [0, 1])
def test_weight_clipping_after_every_critic_update(unroll):
  # a - rbar = (2, -0.5); clip 0.5. init: w0 = clip((0.5, 1)) = (0.5, 0.5);
  # D step: w1 = clip(w0 - 0.1 (2, -0.5)) = clip((0.3, 0.55)) = (0.3, 0.5).
  # With one first-order lookahead step G answers w_K = clip(w1 - 0.1 (2, -0.5)) = (0.1, 0.5).
  a0 = np.array([3.0, -0.5], np.float32)
  spec = linear_spec(generator=ConstantG(a0=tuple(a0)), weight_clip=0.5,
                     unroll_steps=unroll, unroll_exact=False)
  [(before, new, _)] = run_steps(spec, [{'x': REAL}])
  np.testing.assert_allclose(before.d_params['w'], [0.5, 0.5], rtol=1e-6)
  np.testing.assert_allclose(new.d_params['w'], [0.3, 0.5], rtol=1e-6)
  w_seen = [0.3, 0.5] if unroll == 0 else [0.1, 0.5]
  np.testing.assert_allclose(new.g_params['a'], a0 + ETA_G * np.array(w_seen), rtol=1e-6)
