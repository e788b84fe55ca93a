"""Loss values on fixed logits against numbers computed by hand.

Logits are chosen so sigmoid gives simple probabilities: sigmoid(0) = 1/2,
sigmoid(ln 3) = 3/4, sigmoid(-ln 3) = 1/4.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import losses

LN3 = math.log(3.0)
REAL_P = jnp.array([0.0, LN3])    # D(x) = 1/2, 3/4
FAKE_P = jnp.array([0.0, -LN3])   # D(G(z)) = 1/2, 1/4
REAL_S = jnp.array([1.0, 3.0])    # raw critic scores
FAKE_S = jnp.array([0.0, -2.0])


def test_minimax_discriminator_loss():
  # -(ln 1/2 + ln 3/4)/2 for real, -(ln(1 - 1/2) + ln(1 - 1/4))/2 for fake.
  expected = 2 * (math.log(2) + math.log(4 / 3)) / 2
  np.testing.assert_allclose(losses.minimax_discriminator_loss(REAL_P, FAKE_P),
                             expected, rtol=1e-6)


def test_minimax_generator_loss_is_the_saturating_one():
  # E[log(1 - D(G(z)))] = (ln 1/2 + ln 3/4) / 2.
  expected = (math.log(0.5) + math.log(0.75)) / 2
  np.testing.assert_allclose(losses.minimax_generator_loss(FAKE_P), expected, rtol=1e-6)


def test_non_saturating_generator_loss():
  # -E[log D(G(z))] = -(ln 1/2 + ln 1/4) / 2.
  expected = -(math.log(0.5) + math.log(0.25)) / 2
  np.testing.assert_allclose(losses.non_saturating_generator_loss(FAKE_P), expected,
                             rtol=1e-6)


def test_wasserstein():
  np.testing.assert_allclose(losses.wasserstein_discriminator_loss(REAL_S, FAKE_S),
                             -1.0 - 2.0)  # mean(fake) - mean(real)
  np.testing.assert_allclose(losses.wasserstein_generator_loss(FAKE_S), 1.0)


def test_least_squares():
  # 1/2 [mean((1-1)^2, (3-1)^2) + mean(0^2, (-2)^2)] = 1/2 (2 + 2).
  np.testing.assert_allclose(losses.least_squares_discriminator_loss(REAL_S, FAKE_S), 2.0)
  # 1/2 mean((0-1)^2, (-2-1)^2) = 1/2 * 5.
  np.testing.assert_allclose(losses.least_squares_generator_loss(FAKE_S), 2.5)


def test_hinge():
  # real: relu(1-1), relu(1-3) -> 0; fake: relu(1+0), relu(1-2) -> mean 1/2.
  np.testing.assert_allclose(losses.hinge_discriminator_loss(REAL_S, FAKE_S), 0.5)
  np.testing.assert_allclose(losses.hinge_generator_loss(FAKE_S), 1.0)


def test_one_sided_label_smoothing():
  # Target 0.9 at D(x) = 3/4: -(0.9 ln 3/4 + 0.1 ln 1/4); fake part as before.
  real = -(0.9 * math.log(0.75) + 0.1 * math.log(0.25))
  fake = -math.log(0.75)
  targets = losses.real_targets(jax.random.PRNGKey(0), (1,), smoothing=0.1)
  value = losses.minimax_discriminator_loss(jnp.array([LN3]), jnp.array([-LN3]),
                                            real_targets=targets)
  np.testing.assert_allclose(value, real + fake, rtol=1e-6)


def test_noisy_targets_stay_in_range_with_half_normal_mean():
  key = jax.random.PRNGKey(1)
  real = losses.real_targets(key, (200_000,), noise_std=0.05)
  fake = losses.fake_targets(key, (200_000,), noise_std=0.05)
  assert float(real.max()) <= 1.0 and float(fake.min()) >= 0.0
  half_normal_mean = 0.05 * math.sqrt(2 / math.pi)
  np.testing.assert_allclose(1.0 - real.mean(), half_normal_mean, rtol=0.01)
  np.testing.assert_allclose(fake.mean(), half_normal_mean, rtol=0.01)


def test_gradient_penalty_of_a_linear_critic():
  # f(x) = 3 x1 + 4 x2 has |grad f| = 5 everywhere: GP = (5 - 1)^2.
  f = lambda x: x @ jnp.array([3.0, 4.0])
  real = jax.random.normal(jax.random.PRNGKey(0), (16, 2))
  fake = jax.random.normal(jax.random.PRNGKey(1), (16, 2))
  np.testing.assert_allclose(
      losses.gradient_penalty(f, real, fake, jax.random.PRNGKey(2)), 16.0, rtol=1e-5)


def test_gradient_penalty_uses_per_example_interpolates():
  real = jnp.array([[1.0], [2.0]])
  fake = jnp.array([[3.0], [6.0]])
  np.testing.assert_allclose(losses.interpolate(real, fake, jnp.array([0.5, 0.25])),
                             [[2.0], [5.0]])


def test_r1_penalty_of_a_quadratic_critic():
  # f(x) = |x|^2: grad = 2x, R1 = 1/2 mean(4 |x|^2) = 2 mean(1, 2) = 3.
  f = lambda x: jnp.sum(x**2, axis=-1)
  np.testing.assert_allclose(losses.r1_penalty(f, jnp.array([[1.0, 0.0], [1.0, 1.0]])), 3.0)


def test_weight_clipping():
  params = {'w': jnp.array([-1.0, 0.005, 2.0]), 'b': jnp.array([0.3])}
  clipped = losses.clip_weights(params, 0.01)
  np.testing.assert_allclose(clipped['w'], [-0.01, 0.005, 0.01])
  np.testing.assert_allclose(clipped['b'], [0.01])


def test_instance_noise_has_the_requested_std():
  x = jnp.zeros((100_000,))
  noisy = losses.add_instance_noise(jax.random.PRNGKey(0), x, 0.3)
  np.testing.assert_allclose(jnp.std(noisy), 0.3, rtol=0.02)


def test_confident_logits_stay_finite():
  big = jnp.array([-200.0, 200.0])
  for loss in losses.LOSSES.values():
    assert np.isfinite(loss.d_loss(big, -big))
    assert np.isfinite(loss.g_loss(big))


def test_unknown_loss_lists_the_valid_names():
  with pytest.raises(ValueError, match='config.loss=.*non_saturating.*wasserstein_gp'):
    losses.get_loss('non-saturating')
