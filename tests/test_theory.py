"""Tests for gan_jax.theory, and through it for the signs and shapes of gan_jax.losses.

Expected values are closed forms or hand-derived numbers: Goodfellow et al. 2014
(optimal D, C(G) = -log 4 + 2 JSD), Mescheder et al. 2018 (Dirac-GAN eigenvalues),
and the logit derivatives of the generator losses.
"""

from __future__ import annotations

import cmath
import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import jax.test_util
import numpy as np
import optax
import pytest
from jax.scipy.stats import norm
from scipy.spatial import distance

from gan_jax import losses
from gan_jax import steps
from gan_jax import theory
from gan_jax.models import mlp

LOG2 = math.log(2.0)
LOG4 = math.log(4.0)


# ---------------------------------------------------------------------------
# 1. h(y) = a log y + b log(1 - y) peaks at y* = a / (a + b).
# ---------------------------------------------------------------------------

AB_GRID = [(a, b) for a in (0.05, 0.3, 1.0, 2.5, 7.0) for b in (0.05, 0.3, 1.0, 2.5, 7.0)]


@pytest.mark.parametrize('a,b', AB_GRID[::3] + [(1.0, 1.0), (0.01, 9.0)])
def test_optimal_discriminator_maximises_pointwise_value(a, b):
  y_star = float(theory.optimal_discriminator(jnp.float32(a), jnp.float32(b)))
  assert y_star == pytest.approx(a / (a + b), rel=1e-6)
  # h'(y) = a/y - b/(1-y) and h''(y) = -a/y^2 - b/(1-y)^2, by hand and by jax.
  assert a / y_star - b / (1.0 - y_star) == pytest.approx(0.0, abs=1e-4 * (a + b))
  assert -a / y_star**2 - b / (1.0 - y_star)**2 < 0
  h = lambda y: theory.pointwise_value(y, a, b)
  assert float(jax.grad(h)(jnp.float32(y_star))) == pytest.approx(0.0, abs=1e-4 * (a + b))
  assert float(jax.grad(jax.grad(h))(jnp.float32(y_star))) < 0
  # Brute force: y* is the argmax of h over a fine grid (to the grid spacing).
  ys = np.linspace(1e-4, 1 - 1e-4, 99_999)
  assert abs(ys[np.argmax(a * np.log(ys) + b * np.log1p(-ys))] - y_star) < 2e-5


def test_optimal_discriminator_edge_cases():
  p_data = jnp.array([0.0, 2.0, 0.0, 1.0])
  p_g = jnp.array([3.0, 0.0, 0.0, 1.0])
  # Only fakes -> 0; only data -> 1; no mass at all -> 1/2 (no evidence); equal -> 1/2.
  np.testing.assert_array_equal(theory.optimal_discriminator(p_data, p_g),
                                [0.0, 1.0, 0.5, 0.5])
  # 0 log 0 = 0: a D that is certain where the other density vanishes costs nothing.
  np.testing.assert_array_equal(
      theory.pointwise_value(jnp.array([0.0, 1.0]), jnp.array([0.0, 2.0]),
                             jnp.array([3.0, 0.0])), [0.0, 0.0])
  np.testing.assert_allclose(
      theory.optimal_discriminator_logit(jnp.log(0.3), jnp.log(0.1)), math.log(3.0), rtol=1e-6)


# ---------------------------------------------------------------------------
# 2. The project's D, trained against a fixed generator, converges to D*.
# ---------------------------------------------------------------------------

P_DATA_MEAN, P_DATA_STD = 0.0, 1.0
P_G_MEAN, P_G_STD = 1.5, 0.7


def test_trained_discriminator_matches_optimal_discriminator():
  """The project's step, D and minimax loss, with G frozen at p_g = N(1.5, 0.7^2)."""
  steps_, batch = 2000, 512
  spec = steps.GANSpec(
      # x = G(z) = kernel z + bias with z ~ N(0, 1): p_g = N(bias, kernel^2).
      generator=mlp.MLPGenerator(out_shape=(1,), widths=(), out_activation='linear'),
      discriminator=mlp.MLPDiscriminator(widths=(32, 32), activation='relu', dropout=0.0),
      g_tx=optax.set_to_zero(),
      d_tx=optax.adam(optax.cosine_decay_schedule(1e-2, steps_)),
      loss=losses.get_loss('minimax'), latent_dim=1)
  state = steps.init_state(spec, jax.random.PRNGKey(0), (1,))
  g_params = {'dense_out': {'kernel': jnp.full((1, 1), P_G_STD),
                            'bias': jnp.full((1,), P_G_MEAN)}}
  state = state.replace(g_params=g_params, g_opt_state=spec.g_tx.init(g_params))
  train_step = functools.partial(steps.train_step, spec=spec)

  @jax.jit
  def train(state, key):
    def body(state, k):
      # Fresh data every step: D converges to D* of the densities, not of a sample.
      real = P_DATA_MEAN + P_DATA_STD * jax.random.normal(k, (batch, 1))
      return train_step(state, {'x': real})[0], None
    return jax.lax.scan(body, state, jax.random.split(key, steps_))[0]

  state = train(state, jax.random.PRNGKey(1))
  np.testing.assert_array_equal(state.g_params['dense_out']['bias'], [P_G_MEAN])
  x = jnp.linspace(-4.0, 5.0, 901)
  p_data = norm.pdf(x, P_DATA_MEAN, P_DATA_STD)
  p_g = norm.pdf(x, P_G_MEAN, P_G_STD)
  # Where both densities exceed 0.01 (x in about [-0.49, 2.71]); outside, D barely
  # sees samples of one class and its value there is not pinned down by the loss.
  both = np.asarray(jnp.minimum(p_data, p_g) > 0.01)
  assert both.sum() > 300
  d = jax.nn.sigmoid(steps.discriminate(spec, state.d_params, state.d_batch_stats, x[:, None]))
  d_star = theory.optimal_discriminator(p_data, p_g)
  max_err = float(jnp.max(jnp.abs(d - d_star)[both]))
  print(f'max |D - D*| on the overlap region: {max_err:.4f}')
  assert max_err < 0.03


# ---------------------------------------------------------------------------
# 3. C(G) = V(D*, G) = -log 4 + 2 JSD(p_data || p_g).
# ---------------------------------------------------------------------------


@pytest.fixture
def x64():
  with jax.enable_x64(True):
    yield


def _gaussian_grid():
  x = jnp.linspace(-15.0, 15.0, 30_001, dtype=jnp.float64)
  return x, float(x[1] - x[0])


def test_value_at_optimum_is_minus_log4_when_pg_equals_pdata(x64):
  del x64
  x, _ = _gaussian_grid()
  for mean, std in [(0.0, 1.0), (2.0, 0.3)]:
    p = norm.pdf(x, mean, std)
    assert float(theory.virtual_training_criterion(p, p, x)) == pytest.approx(-LOG4, abs=1e-6)
    assert float(theory.jensen_shannon_divergence(p, p, x)) == pytest.approx(0.0, abs=1e-12)
  # D = 1/2 everywhere gives -log 4 for *any* G; D* does at least as well.
  p_data, p_g = norm.pdf(x, 0.0, 1.0), norm.pdf(x, 1.5, 0.7)
  half = jnp.full_like(x, 0.5)
  assert float(theory.value_function(half, p_data, p_g, x)) == pytest.approx(-LOG4, abs=1e-6)
  c = float(theory.virtual_training_criterion(p_data, p_g, x))
  for bump in (0.05, -0.05):
    perturbed = jnp.clip(theory.optimal_discriminator(p_data, p_g) + bump, 1e-6, 1 - 1e-6)
    assert float(theory.value_function(perturbed, p_data, p_g, x)) < c


@pytest.mark.parametrize('m1,s1,m2,s2', [(0.0, 1.0, 1.5, 0.7), (0.0, 1.0, 0.0, 2.0),
                                         (-1.0, 0.5, 3.0, 0.5)])
def test_value_at_optimum_equals_minus_log4_plus_2jsd(x64, m1, s1, m2, s2):
  del x64
  x, dx = _gaussian_grid()
  p, q = norm.pdf(x, m1, s1), norm.pdf(x, m2, s2)
  c = float(theory.virtual_training_criterion(p, q, x))
  jsd = float(theory.jensen_shannon_divergence(p, q, x))
  assert c == pytest.approx(-LOG4 + 2 * jsd, abs=1e-8)
  # An independent JSD: scipy's, on the discretised densities (it returns sqrt(JSD)).
  jsd_scipy = distance.jensenshannon(np.asarray(p) * dx, np.asarray(q) * dx) ** 2
  assert jsd == pytest.approx(jsd_scipy, rel=1e-6)
  assert 0 < jsd < LOG2
  # KL between Gaussians in closed form: log(s2/s1) + (s1^2 + (m1-m2)^2) / (2 s2^2) - 1/2.
  kl = math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5
  assert float(theory.kl_divergence(p, q, x)) == pytest.approx(kl, rel=1e-6)


@pytest.mark.parametrize('shift', [0.0, 0.25, 0.5, 1.0, 1.5])
def test_jsd_of_shifted_uniforms_closed_form(x64, shift):
  """JSD(U[0,1] || U[s,1+s]) = min(s,1) log 2: the overlap adds 0, each side s log 2."""
  del x64
  h = 1.0 / 1000
  # Cell midpoints, with the uniforms' edges on cell edges: the rule is then exact.
  x = jnp.arange(-1.0 + h / 2, 3.0, h, dtype=jnp.float64)
  p = jnp.where((x > 0) & (x < 1), 1.0, 0.0)
  q = jnp.where((x > shift) & (x < 1 + shift), 1.0, 0.0)
  jsd = min(shift, 1.0) * LOG2
  assert float(theory.jensen_shannon_divergence(p, q, x)) == pytest.approx(jsd, abs=1e-9)
  assert float(theory.virtual_training_criterion(p, q, x)) == pytest.approx(
      -LOG4 + 2 * jsd, abs=1e-9)


def _reference_jsd(m1, s1, m2, s2, x):
  """JSD of two Gaussians by the trapezoidal rule in numpy float64, not by gan_jax.

  Within +-40 standard deviations float64 densities stay above 1e-308, so the
  naive formula p log(2p / (p + q)) is exact to rounding; where p = 0 its term is 0.
  """
  x = np.asarray(x, np.float64)
  p = np.exp(-0.5 * ((x - m1) / s1) ** 2) / (s1 * math.sqrt(2 * math.pi))
  q = np.exp(-0.5 * ((x - m2) / s2) ** 2) / (s2 * math.sqrt(2 * math.pi))
  m = 0.5 * (p + q)
  with np.errstate(divide='ignore', invalid='ignore'):
    terms = np.where(p > 0, p * np.log(p / m), 0.0) + np.where(q > 0, q * np.log(q / m), 0.0)
  return 0.5 * np.trapezoid(terms, x)


@pytest.mark.parametrize('lo,n', [(-20.0, 8001), (-30.0, 12001), (-14.0, 5601)])
@pytest.mark.parametrize('m1,s1,m2,s2', [(0.0, 1.0, 1.0, 1.0), (0.0, 1.0, 3.0, 0.5),
                                         (-2.0, 0.7, 2.0, 1.3)])
def test_jsd_in_float32_on_far_tail_grids(lo, n, m1, s1, m2, s2):
  # (p + q) / 2 falls below float32's smallest normal ~13 std out, where XLA
  # flushes it to 0: the naive p log(p / m) was inf from [-14, 14] outward.
  x = jnp.linspace(lo, -lo, n, dtype=jnp.float32)
  p, q = norm.pdf(x, m1, s1), norm.pdf(x, m2, s2)
  assert p.dtype == jnp.float32 and float(jnp.min(p)) == 0.0  # the tails underflow
  reference = _reference_jsd(m1, s1, m2, s2, x)
  jsd = float(theory.jensen_shannon_divergence(p, q, x))
  assert jsd == pytest.approx(reference, rel=2e-5)
  assert float(theory.jensen_shannon_divergence(q, p, x)) == pytest.approx(reference, rel=2e-5)
  # From log densities (finite everywhere) the same number.
  logs = (norm.logpdf(x, m1, s1), norm.logpdf(x, m2, s2))
  assert float(theory.jensen_shannon_divergence_from_logs(*logs, x)) == pytest.approx(
      reference, rel=2e-5)
  # KL between Gaussians in closed form: log(s2/s1) + (s1^2 + (m1-m2)^2) / (2 s2^2) - 1/2.
  kl = math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5
  assert float(theory.kl_divergence_from_logs(*logs, x)) == pytest.approx(kl, rel=1e-5)


def test_jsd_of_unit_gaussians_one_apart_is_0_1114_in_float32():
  x = jnp.linspace(-20.0, 20.0, 8001, dtype=jnp.float32)
  jsd = float(theory.jensen_shannon_divergence(norm.pdf(x, 0.0, 1.0), norm.pdf(x, 1.0, 1.0), x))
  # The float64 reference on a 10x finer grid: the value itself, not this grid's.
  fine = _reference_jsd(0.0, 1.0, 1.0, 1.0, np.linspace(-20.0, 20.0, 80_001))
  assert round(fine, 4) == 0.1114
  assert jsd == pytest.approx(fine, rel=1e-5)


def test_jsd_gradient_is_finite_in_the_far_tails():
  # d JSD / d mu of N(mu, 1) against N(0, 1), against a central difference of
  # the float64 reference: the where()s keep the underflowed tails out of it.
  x = jnp.linspace(-20.0, 20.0, 8001, dtype=jnp.float32)
  p = norm.pdf(x, 0.0, 1.0)
  grad = float(jax.grad(lambda mu: theory.jensen_shannon_divergence(
      p, norm.pdf(x, mu, 1.0), x))(jnp.float32(1.0)))
  h = 1e-4
  numeric = (_reference_jsd(0.0, 1.0, 1.0 + h, 1.0, x) -
             _reference_jsd(0.0, 1.0, 1.0 - h, 1.0, x)) / (2 * h)
  assert math.isfinite(grad) and grad == pytest.approx(numeric, rel=1e-3)


def test_kl_from_densities_is_infinite_where_q_vanishes_under_p():
  # Disjoint supports: KL(p || q) = inf, KL from logs agrees; JSD is log 2.
  x = jnp.linspace(0.0, 3.0, 301)
  p = jnp.where(x < 1.0, 1.0, 0.0)
  q = jnp.where(x > 2.0, 1.0, 0.0)
  assert float(theory.kl_divergence(p, q, x)) == math.inf
  assert float(theory.kl_divergence(p, p, x)) == 0.0
  assert float(theory.jensen_shannon_divergence(p, q, x)) == pytest.approx(
      LOG2 * float(jnp.trapezoid(p, x)), rel=1e-6)


def test_integrals_reject_mismatched_grids():
  x = jnp.linspace(0.0, 1.0, 5)
  with pytest.raises(ValueError, match='p_g'):
    theory.value_function(jnp.ones(5), jnp.ones(5), jnp.ones(4), x)
  with pytest.raises(ValueError, match='x must be a 1-D grid'):
    theory.kl_divergence(jnp.ones((5, 1)), jnp.ones((5, 1)), x[:, None])


# ---------------------------------------------------------------------------
# 4. Dirac-GAN (Mescheder et al. 2018).
# ---------------------------------------------------------------------------


def test_eigenvalues_2x2_closed_form():
  np.testing.assert_allclose(theory.eigenvalues_2x2(jnp.array([[2.0, 0.0], [0.0, 3.0]])),
                             [3.0, 2.0])
  np.testing.assert_allclose(theory.eigenvalues_2x2(jnp.array([[0.0, 1.0], [-1.0, 0.0]])),
                             [1j, -1j])
  with pytest.raises(ValueError, match='shape'):
    theory.eigenvalues_2x2(jnp.eye(3))


@pytest.mark.parametrize('name,f_prime', [('minimax', 0.5), ('non_saturating', 0.5),
                                          ('wasserstein', 1.0), ('hinge', 1.0)])
def test_dirac_gan_equilibrium_has_imaginary_eigenvalues(name, f_prime):
  field = theory.dirac_gan_vector_field(name)
  np.testing.assert_allclose(field(jnp.zeros(2)), [0.0, 0.0], atol=1e-7)
  # Hand-derived: v = (psi f'(psi theta) ..., -theta f'(psi theta) ...) -> [[0, f'], [-f', 0]].
  np.testing.assert_allclose(theory.dirac_gan_jacobian(name),
                             [[0.0, f_prime], [-f_prime, 0.0]], atol=1e-7)
  np.testing.assert_allclose(theory.dirac_gan_eigenvalues(name),
                             [1j * f_prime, -1j * f_prime], atol=1e-6)


@pytest.mark.parametrize('name', ['minimax', 'non_saturating'])
@pytest.mark.parametrize('gamma', [0.3, 1.0, 1.7, 4.0])
def test_dirac_gan_r1_eigenvalues(name, gamma):
  root = cmath.sqrt(gamma**2 / 4 - 0.25)
  expected = [-gamma / 2 + root, -gamma / 2 - root]
  np.testing.assert_allclose(theory.dirac_gan_eigenvalues(name, gamma=gamma), expected,
                             atol=1e-5)
  np.testing.assert_allclose(theory.dirac_gan_jacobian(name, gamma=gamma),
                             [[0.0, 0.5], [-0.5, -gamma]], atol=1e-6)


def test_dirac_gan_simultaneous_steps_spiral_outward():
  lr, steps = 0.1, 400
  field = theory.dirac_gan_vector_field('minimax')
  # Near the equilibrium each step multiplies |z| by |1 + lr i/2| = sqrt(1 + lr^2/4).
  z = theory.dirac_gan_trajectory(field, jnp.array([1e-3, 0.0]), learning_rate=lr,
                                  num_steps=steps)
  r = np.linalg.norm(np.asarray(z, np.float64), axis=1)
  assert r[-1] / r[0] == pytest.approx((1 + lr**2 / 4) ** (steps / 2), rel=1e-3)
  # For minimax, z . v(z) = 0 exactly, so the distance grows at every single step.
  z = theory.dirac_gan_trajectory(field, jnp.array([0.5, 0.5]), learning_rate=lr,
                                  num_steps=steps)
  r = np.linalg.norm(np.asarray(z), axis=1)
  assert np.all(np.diff(r) > 0)
  z = theory.dirac_gan_trajectory(theory.dirac_gan_vector_field('non_saturating'),
                                  jnp.array([1e-2, 1e-2]), learning_rate=lr, num_steps=steps)
  r = np.linalg.norm(np.asarray(z), axis=1)
  assert r[-1] > 1.5 * r[0]


def test_dirac_gan_alternating_steps_neither_converge_nor_diverge():
  field = theory.dirac_gan_vector_field('minimax')
  z = theory.dirac_gan_trajectory(field, jnp.array([0.5, 0.5]), learning_rate=0.1,
                                  num_steps=400, alternating=True)
  r = np.linalg.norm(np.asarray(z), axis=1)
  # The orbit stays within a few % of its start (0.975 r0 <= r <= 1.0001 r0 here),
  # and its envelope does not drift; simultaneous steps reach 1.64 r0 by step 400.
  assert 0.95 * r[0] < r.min() and r.max() < 1.05 * r[0]
  assert r[-100:].max() == pytest.approx(r[:100].max(), rel=0.01)


@pytest.mark.parametrize('name', ['minimax', 'non_saturating'])
def test_dirac_gan_with_r1_converges(name):
  field = theory.dirac_gan_vector_field(name, gamma=1.0)
  z = theory.dirac_gan_trajectory(field, jnp.array([1.0, 1.0]), learning_rate=0.1,
                                  num_steps=400)
  r = np.linalg.norm(np.asarray(z), axis=1)
  assert r[-1] < 1e-4 * r[0]


class _PointMass(nn.Module):
  """The Dirac-GAN generator: every sample is theta."""

  @nn.compact
  def __call__(self, z, labels=None, *, train):
    del labels, train
    theta = self.param('theta', nn.initializers.zeros, ())
    return jnp.broadcast_to(theta, (z.shape[0], 1))


class _Linear(nn.Module):
  """The Dirac-GAN discriminator: logit psi * x."""

  @nn.compact
  def __call__(self, x, labels=None, *, train):
    del labels, train
    return self.param('psi', nn.initializers.zeros, ()) * x[:, 0]


@pytest.mark.parametrize('update_order,gamma', [('simultaneous', 0.0), ('d_first', 0.7)])
def test_project_step_on_dirac_gan_follows_the_vector_field(update_order, gamma):
  """SGD through `steps.train_step` must reproduce z <- z + h v(z) (or its D-first form)."""
  lr, num_steps = 0.2, 25
  spec = steps.GANSpec(generator=_PointMass(), discriminator=_Linear(),
                       g_tx=optax.sgd(lr), d_tx=optax.sgd(lr),
                       loss=losses.get_loss('non_saturating'), latent_dim=1,
                       update_order=update_order, r1_gamma=gamma)
  state = steps.init_state(spec, jax.random.PRNGKey(0), (1,))
  state = state.replace(g_params={'theta': jnp.float32(0.6)},
                        d_params={'psi': jnp.float32(-0.4)})
  train_step = functools.partial(steps.train_step, spec=spec)
  batch = {'x': jnp.zeros((2, 1))}  # the data distribution is a point mass at 0.

  @jax.jit
  def run(state):
    def body(state, _):
      state = train_step(state, batch)[0]
      return state, jnp.stack([state.g_params['theta'], state.d_params['psi']])
    return jax.lax.scan(body, state, None, length=num_steps)[1]

  expected = theory.dirac_gan_trajectory(
      theory.dirac_gan_vector_field('non_saturating', gamma=gamma), jnp.array([0.6, -0.4]),
      learning_rate=lr, num_steps=num_steps, alternating=update_order == 'd_first')
  np.testing.assert_allclose(run(state), expected[1:], rtol=1e-5, atol=1e-6)


def test_dirac_gan_rejects_bad_arguments():
  with pytest.raises(ValueError, match='gamma'):
    theory.dirac_gan_vector_field('minimax', gamma=-1.0)
  with pytest.raises(ValueError, match='non_saturating'):
    theory.dirac_gan_vector_field('nonsaturating')


# ---------------------------------------------------------------------------
# 5. Saturation: the minimax G loss has vanishing gradients when D wins.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize('logit', [-5.0, -10.0, -15.0])
def test_minimax_generator_loss_saturates_when_d_rejects_fakes(logit):
  d_fake = 1.0 / (1.0 + math.exp(-logit))  # D(G(z)) -> 0
  g_grad = lambda fn: float(jax.grad(lambda l: fn(l[None]))(jnp.float32(logit)))
  # d/dl log(1 - sigmoid(l)) = -sigmoid(l); d/dl -log sigmoid(l) = -(1 - sigmoid(l)).
  minimax = g_grad(losses.minimax_generator_loss)
  non_saturating = g_grad(losses.non_saturating_generator_loss)
  assert minimax == pytest.approx(-d_fake, rel=1e-4)
  assert non_saturating == pytest.approx(-(1.0 - d_fake), rel=1e-4)
  # Both push the logit up (descent raises D(G(z))), but only one with force.
  assert -1e-2 < minimax < 0
  assert non_saturating < -0.99


def test_saturation_stalls_the_dirac_generator():
  # G's point mass at theta = 5; D's slope psi = -3 rejects it with logit -15.
  z = jnp.array([5.0, -3.0])
  v_minimax = theory.dirac_gan_vector_field('minimax')(z)
  v_non_saturating = theory.dirac_gan_vector_field('non_saturating')(z)
  # v_theta = psi sigmoid(psi theta) vs psi (1 - sigmoid(psi theta)); data is at 0.
  assert abs(float(v_minimax[0])) < 1e-5
  assert float(v_non_saturating[0]) == pytest.approx(-3.0, rel=1e-5)


# ---------------------------------------------------------------------------
# 6. Gradients of every penalty against finite differences; jit == eager.
# ---------------------------------------------------------------------------

# Every loss's gradients against finite differences (and jit == eager) are in
# tests/test_losses.py::TestEveryLoss, run over the whole registry.


def _smooth_critic(w: jax.Array, x: jax.Array) -> jax.Array:
  """A one-hidden-layer tanh critic, per example: (B, 2) -> (B,)."""
  return jnp.sum(jnp.tanh(x @ w) * jnp.array([1.0, -0.5, 0.7]), axis=-1)


W = jnp.array([[0.8, -0.3, 0.5], [0.2, 0.9, -0.6]])
X_REAL = jnp.array([[0.5, -1.0], [1.2, 0.3], [-0.7, 0.8]])
X_FAKE = jnp.array([[-0.2, 0.4], [0.9, -1.1], [0.1, 0.6]])


def test_gradient_penalty_gradients_match_finite_differences():
  key = jax.random.PRNGKey(3)
  gp = lambda w, real, fake: losses.gradient_penalty(
      lambda x: _smooth_critic(w, x), real, fake, key)
  # Second order in the critic's weights is what D's update differentiates.
  jax.test_util.check_grads(gp, (W, X_REAL, X_FAKE), order=2, modes=['rev'], eps=1e-3)
  np.testing.assert_allclose(jax.jit(gp)(W, X_REAL, X_FAKE), gp(W, X_REAL, X_FAKE), rtol=1e-6)


def test_gradient_norm_penalty_gradients_match_finite_differences():
  gnp = lambda w, x: losses.gradient_norm_penalty(lambda y: _smooth_critic(w, y), x)
  jax.test_util.check_grads(gnp, (W, X_FAKE), order=2, modes=['rev'], eps=1e-3)
  np.testing.assert_allclose(jax.jit(gnp)(W, X_FAKE), gnp(W, X_FAKE), rtol=1e-6)
  # Hand value for a linear critic x . u with |u| = 5: (5 - 1)^2.
  u = jnp.array([3.0, -4.0])
  assert float(losses.gradient_norm_penalty(lambda x: x @ u, X_FAKE)) == pytest.approx(16.0)


def test_r1_penalty_gradients_match_finite_differences():
  r1 = lambda w, real: losses.r1_penalty(lambda x: _smooth_critic(w, x), real)
  jax.test_util.check_grads(r1, (W, X_REAL), order=2, modes=['rev'], eps=1e-3)
  np.testing.assert_allclose(jax.jit(r1)(W, X_REAL), r1(W, X_REAL), rtol=1e-6)
  # Hand value for a linear critic x . u: 1/2 |u|^2 for every example.
  u = jnp.array([3.0, -4.0])
  assert float(losses.r1_penalty(lambda x: x @ u, X_REAL)) == pytest.approx(12.5)


# ---------------------------------------------------------------------------
# The Figure-1 script runs end to end (tiny settings; the real run is documented
# in gan_jax/theory_figure.py).
# ---------------------------------------------------------------------------


def test_theory_figure_writes_png(tmp_path):
  from gan_jax import theory_figure  # pylint: disable=g-import-not-at-top
  out = tmp_path / 'figure1.png'
  theory_figure.main(['--out', str(out), '--batch_size', '8', '--d_steps_a', '1',
                      '--d_steps_b', '1', '--g_steps_c', '1', '--train_steps_d', '1',
                      '--d_per_g', '1'])
  assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_theory_figure_stages_move_the_right_players():
  # (a), (b): D-only steps leave G at its initial (shift, scale); (c): G-only steps
  # leave D where (b) left it; (d): both move. All through steps.train_step.
  from gan_jax import theory_figure  # pylint: disable=g-import-not-at-top
  args = theory_figure._parse_args(['--batch_size', '16', '--d_steps_a', '2', '--d_steps_b',  # pylint: disable=protected-access
                                    '3', '--g_steps_c', '2', '--train_steps_d', '2',
                                    '--d_per_g', '2', '--g_shift', '-0.2', '--g_scale', '0.4'])
  a, b, c, d = theory_figure.train(args)
  leaves = lambda tree: [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]
  for snap in (a, b):
    assert float(snap.g['shift']) == np.float32(-0.2) and float(snap.g['scale']) == np.float32(0.4)
  assert not all(np.array_equal(x, y) for x, y in zip(leaves(a.d), leaves(b.d)))
  assert all(np.array_equal(x, y) for x, y in zip(leaves(b.d), leaves(c.d)))
  assert float(c.g['shift']) != float(b.g['shift'])
  assert float(d.g['shift']) != float(c.g['shift'])
  assert not all(np.array_equal(x, y) for x, y in zip(leaves(c.d), leaves(d.d)))
