"""Loss values on fixed logits against numbers computed by hand.

Logits are chosen so sigmoid gives simple probabilities: sigmoid(0) = 1/2,
sigmoid(ln 3) = 3/4, sigmoid(-ln 3) = 1/4.
"""

import math

import jax
import jax.test_util  # noqa: F401  (check_grads)
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import losses

LN3 = math.log(3.0)
REAL_P = jnp.array([0.0, LN3])    # D(x) = 1/2, 3/4
FAKE_P = jnp.array([0.0, -LN3])   # D(G(z)) = 1/2, 1/4
REAL_S = jnp.array([1.0, 3.0])    # raw critic scores
FAKE_S = jnp.array([0.0, -2.0])


# ---------------------------------------------------------------------------
# Every registered loss, one generic class (TF-GAN's _LossesTest): golden
# numbers computed by hand, finite values and gradients at +-1e4 logits,
# gradients against finite differences, jit == eager. A new loss is one pair of
# functions in losses.py plus one GOLDEN entry here.
# ---------------------------------------------------------------------------

def sp(t):
  """softplus(t) = ln(1 + e^t), by hand."""
  return math.log1p(math.exp(t))


# name -> (real logits, fake logits, L_D, L_G).
GOLDEN = {
    # -(ln 1/2 + ln 3/4)/2 for real, -(ln(1 - 1/2) + ln(1 - 1/4))/2 for fake;
    # G: E[log(1 - D(G(z)))] = (ln 1/2 + ln 3/4) / 2, the saturating one.
    'minimax': (REAL_P, FAKE_P, math.log(2) + math.log(4 / 3),
                (math.log(0.5) + math.log(0.75)) / 2),
    # G: -E[log D(G(z))] = -(ln 1/2 + ln 1/4) / 2.
    'non_saturating': (REAL_P, FAKE_P, math.log(2) + math.log(4 / 3),
                       -(math.log(0.5) + math.log(0.25)) / 2),
    # mean(fake) - mean(real) = -1 - 2; G: -mean(fake) = 1.
    'wasserstein': (REAL_S, FAKE_S, -3.0, 1.0),
    'wasserstein_gp': (REAL_S, FAKE_S, -3.0, 1.0),
    # 1/2 [mean((1-1)^2, (3-1)^2) + mean(0^2, (-2)^2)] = 2; G: 1/2 mean(1, 9) = 2.5.
    'least_squares': (REAL_S, FAKE_S, 2.0, 2.5),
    # real: relu(1-1), relu(1-3) -> 0; fake: relu(1+0), relu(1-2) -> 1/2; G: 1.
    'hinge': (REAL_S, FAKE_S, 0.5, 1.0),
    # Pairs (1, 0), (3, -2): D: mean softplus(f - r) = (sp(-1) + sp(-5)) / 2;
    # G: mean softplus(r - f) = (sp(1) + sp(5)) / 2.
    'rsgan': (REAL_S, FAKE_S, (sp(-1) + sp(-5)) / 2, (sp(1) + sp(5)) / 2),
    # E C(x_r) = 2, E C(x_f) = -1: r - E f = (2, 4), f - E r = (-2, -4).
    # D: mean sp(-(2, 4)) + mean sp((-2, -4)) = sp(-2) + sp(-4); G: sp(2) + sp(4).
    'ragan': (REAL_S, FAKE_S, sp(-2) + sp(-4), sp(2) + sp(4)),
    # D: mean((2-1)^2, (4-1)^2) + mean((-2+1)^2, (-4+1)^2) = 5 + 5;
    # G: mean((-2-1)^2, (-4-1)^2) + mean((2+1)^2, (4+1)^2) = 17 + 17.
    'ralsgan': (REAL_S, FAKE_S, 10.0, 34.0),
    # Real (0.5, 1.5), fake (0, 1): E r = 1, E f = 0.5; r - E f = (0, 1), f - E r = (-1, 0).
    # D: mean(relu(1 - 0), relu(1 - 1)) + mean(relu(1 - 1), relu(1 + 0)) = 1/2 + 1/2;
    # G: mean(relu(1 + 1), relu(1 - 0)) + mean(relu(1 + 0), relu(1 + 1)) = 3/2 + 3/2.
    'rahinge': (jnp.array([0.5, 1.5]), jnp.array([0.0, 1.0]), 1.0, 3.0),
}

# Away from the hinges' kinks and from saturation (finite differences).
REAL_FD = jnp.array([0.3, -1.2, 2.0, 0.7])
FAKE_FD = jnp.array([-0.4, 0.9, -2.1, 0.2])
BIG = 1e4


@pytest.fixture(params=sorted(losses.LOSSES))
def loss(request):
  return losses.get_loss(request.param)


class TestEveryLoss:
  """Run over every entry of `losses.LOSSES`."""

  def test_every_registered_loss_has_golden_numbers(self):
    assert sorted(GOLDEN) == sorted(losses.LOSSES)

  def test_golden_numbers(self, loss):
    real, fake, d_expected, g_expected = GOLDEN[loss.name]
    np.testing.assert_allclose(loss.d_loss(real, fake), d_expected, rtol=1e-6)
    np.testing.assert_allclose(loss.generator_loss(real, fake), g_expected, rtol=1e-6)

  def test_generator_loss_reads_real_only_when_declared(self, loss):
    real, fake, _, g_expected = GOLDEN[loss.name]
    if loss.g_needs_real:
      with pytest.raises(ValueError, match=f'config.loss={loss.name!r}.*g_needs_real'):
        loss.generator_loss(None, fake)
    else:  # what the step passes when it skips D(real).
      np.testing.assert_allclose(loss.generator_loss(None, fake), g_expected, rtol=1e-6)

  @pytest.mark.parametrize('real_sign, fake_sign', [(1, -1), (-1, 1), (1, 1), (-1, -1)])
  def test_finite_values_and_gradients_at_extreme_logits(self, loss, real_sign, fake_sign):
    real = real_sign * BIG * jnp.ones(4)
    fake = fake_sign * BIG * jnp.ones(4)
    for fn in (loss.d_loss, loss.generator_loss):
      value, grads = jax.value_and_grad(fn, argnums=(0, 1))(real, fake)
      assert np.isfinite(value), fn
      assert all(np.all(np.isfinite(g)) for g in grads), fn

  def test_gradients_match_finite_differences(self, loss):
    jax.test_util.check_grads(loss.d_loss, (REAL_FD, FAKE_FD), order=2, modes=['rev'])
    jax.test_util.check_grads(loss.generator_loss, (REAL_FD, FAKE_FD), order=2,
                              modes=['rev'])

  def test_jit_equals_eager(self, loss):
    for fn in (loss.d_loss, loss.generator_loss):
      np.testing.assert_allclose(jax.jit(fn)(REAL_FD, FAKE_FD), fn(REAL_FD, FAKE_FD),
                                 rtol=1e-6)


def test_relativistic_losses_are_antisymmetric_in_real_and_fake():
  # Swapping the roles of real and fake turns D's relativistic loss into G's.
  for name in ('rsgan', 'ragan', 'ralsgan', 'rahinge'):
    loss = losses.get_loss(name)
    np.testing.assert_allclose(loss.generator_loss(REAL_FD, FAKE_FD),
                               loss.d_loss(FAKE_FD, REAL_FD), rtol=1e-6)


def test_rsgan_needs_paired_batches():
  with pytest.raises(ValueError, match='RSGAN pairs real and fake'):
    losses.relativistic_discriminator_loss(jnp.zeros(4), jnp.zeros(8))


def test_cross_entropy_matches_the_formula_at_fractional_targets():
  # -(t ln sigmoid(l) + (1 - t) ln(1 - sigmoid(l))) at l = ln 3 (D = 3/4), t = 0.9, and
  # finite at |l| = 1e4 where sigmoid rounds to 0 or 1.
  value = losses.minimax_discriminator_loss(jnp.array([LN3]), jnp.array([-1e4]),
                                            real_targets=0.9)
  np.testing.assert_allclose(value, -(0.9 * math.log(0.75) + 0.1 * math.log(0.25)),
                             rtol=1e-6)


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


def test_unknown_loss_lists_the_valid_names():
  with pytest.raises(ValueError, match='config.loss=.*non_saturating.*wasserstein_gp'):
    losses.get_loss('non-saturating')
