"""Game dynamics: relativistic losses in the step, extragradient / consensus /
optimistic updates, and the Dirac-GAN convergence table against closed forms.

Closed forms (Mescheder et al. 2018, arXiv:1801.04406, section 2; Mescheder et
al. 2017; Gidel et al. 2019): for the GAN losses the Dirac-GAN Jacobian at the
equilibrium is J = [[0, 1/2], [-1/2, 0]] (eigenvalues +-i/2), for WGAN
[[0, 1], [-1, 0]] (+-i). A discrete method's linearisation has eigenvalues
p(h lambda) for a polynomial p of the method (1 + x for gradient descent,
1 + x + x^2 for extragradient), so its spectral radius is |p(h i/2)|.
"""

from __future__ import annotations

import cmath
import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gan_jax import losses
from gan_jax import steps
from gan_jax import theory

from conftest import A0, ETA_D, ETA_G, REAL, RBAR, W0, LinearD, linear_spec, run_steps

H = 0.1


# ---------------------------------------------------------------------------
# The step: G's loss sees D(real) only when the loss asks for it.
# ---------------------------------------------------------------------------


def test_ralsgan_generator_update_of_the_linear_game_by_hand():
  # G(z) = a, C(x) = w.x + c: C(x_f) - E C(x_r) = w.(a - rbar), C(x_r,i) - C(x_f) = w.(r_i - a).
  # L_G = (w.(a - rbar) - 1)^2 + mean_i (w.(r_i - a) + 1)^2, dL_G/da = 4 w (w.(a - rbar) - 1).
  spec = linear_spec(loss='ralsgan', update_order='g_first')
  (_, after, m), = run_steps(spec, [{'x': REAL}])
  gap = float(W0 @ (A0 - RBAR))
  expected_loss = (gap - 1) ** 2 + np.mean((REAL @ W0 - W0 @ A0 + 1) ** 2)
  np.testing.assert_allclose(m['g_loss'], expected_loss, rtol=1e-5)
  np.testing.assert_allclose(after.g_params['a'], A0 - ETA_G * 4 * W0 * (gap - 1), rtol=1e-5)


_CALLS = []


class _CountingD(nn.Module):
  """C(x) = w.x; records in _CALLS each batch it is applied to while traced."""

  @nn.compact
  def __call__(self, x, labels=None, *, train):
    _CALLS.append(x.shape)
    return x @ self.param('w', lambda k: jnp.asarray(W0))


@pytest.mark.parametrize('loss, g_calls', [('non_saturating', 1), ('ragan', 2)])
def test_d_real_is_computed_for_g_only_when_the_loss_needs_it(loss, g_calls):
  spec = linear_spec(loss=loss, discriminator=_CountingD())
  state = steps.init_state(spec, jax.random.PRNGKey(0), (2,))
  _CALLS.clear()
  jax.make_jaxpr(lambda s: steps._g_update(spec, s, jnp.asarray(REAL), None,  # pylint: disable=protected-access
                                           jax.random.PRNGKey(1), None))(state)
  assert len(_CALLS) == g_calls


def test_relativistic_loss_rejects_matching_aware():
  with pytest.raises(ValueError, match="matching_aware.*config.loss='rsgan'"):
    linear_spec(loss='rsgan', matching_aware=True, num_classes=3)


# ---------------------------------------------------------------------------
# Dirac-GAN: closed forms of each method's discrete iteration.
# ---------------------------------------------------------------------------


def rho(method, loss='non_saturating', h=H, gamma=0.0, **options):
  return float(theory.spectral_radius(theory.dirac_gan_update_jacobian(
      method, loss, learning_rate=h, gamma=gamma, **options)))


def optimistic_radius(lam: complex, h: float) -> float:
  # mu^2 - (1 + 2 h lam) mu + h lam = 0 (state (z_t, z_{t-1}) of z + h (2 v_t - v_{t-1})).
  b, c = 1 + 2 * h * lam, h * lam
  disc = cmath.sqrt(b * b - 4 * c)
  return max(abs((b + disc) / 2), abs((b - disc) / 2))


@pytest.mark.parametrize('h', [0.1, 0.5, 1.5])  # optimistic at h = 1: a double root
def test_dirac_discrete_spectral_radii_match_the_closed_forms(h):
  # Gradient descent: |1 + h i/2| = sqrt(1 + h^2/4) > 1 for every h (Mescheder et al. 2018).
  assert rho('simultaneous', h=h) == pytest.approx(math.sqrt(1 + h * h / 4), rel=1e-5)
  assert rho('simultaneous', 'wasserstein', h=h) == pytest.approx(math.sqrt(1 + h * h),
                                                                  rel=1e-5)
  # Alternating: [[1 - h^2/4, h/2], [-h/2, 1]] has det 1 and |trace| < 2: on the unit circle.
  assert rho('alternating', h=h) == pytest.approx(1.0, abs=1e-6)
  # Extragradient: |1 + x + x^2| at x = i h/2: (1 - h^2/4)^2 + h^2/4 < 1.
  assert rho('extragradient', h=h) == pytest.approx(
      math.sqrt((1 - h * h / 4) ** 2 + h * h / 4), rel=1e-5)
  assert rho('optimistic', h=h) == pytest.approx(optimistic_radius(0.5j, h), rel=1e-5)
  if h < 1:  # small steps converge; at h = 1.5 the closed form says rho = 1.40
    assert rho('optimistic', h=h) < 1


@pytest.mark.parametrize("gamma", [0.3, 2.0, 3.0])  # 1.0 is a defective (double) root
def test_dirac_regularised_fields_match_the_closed_forms(gamma):
  # Consensus: J - gamma J^T J = J - gamma/4 I, eigenvalues -gamma/4 +- i/2.
  jac = theory.dirac_gan_update_jacobian('consensus', learning_rate=H, gamma=gamma)
  continuous = theory.eigenvalues_2x2((jac - jnp.eye(2)) / H)
  np.testing.assert_allclose(continuous, [-gamma / 4 + 0.5j, -gamma / 4 - 0.5j], atol=1e-5)
  assert rho('consensus', gamma=gamma) == pytest.approx(
      abs(1 + H * (-gamma / 4 + 0.5j)), rel=1e-5)
  # R1: -gamma/2 +- sqrt(gamma^2/4 - 1/4) (Theorem 4.1), discretised as 1 + h lambda.
  lam = -gamma / 2 + cmath.sqrt(gamma ** 2 / 4 - 0.25)
  lam2 = -gamma / 2 - cmath.sqrt(gamma ** 2 / 4 - 0.25)
  assert rho('r1', gamma=gamma) == pytest.approx(max(abs(1 + H * lam), abs(1 + H * lam2)),
                                                 rel=1e-5)


def test_dirac_wgan_distances_after_n_steps_are_the_closed_forms():
  # The WGAN field v = (psi, -theta) is linear and normal: |z_N| = rho^N |z_0| exactly.
  n, z0 = 50, jnp.array([0.6, -0.8])
  for method, radius in (('simultaneous', math.sqrt(1 + H * H)),
                         ('extragradient', math.sqrt((1 - H * H) ** 2 + H * H))):
    update = theory.dirac_gan_update(method, 'wasserstein', learning_rate=H)
    z = z0
    for _ in range(n):
      z = update(z)
    assert float(jnp.linalg.norm(z)) == pytest.approx(radius ** n, rel=1e-4)


def test_dirac_optimistic_update_is_optax_optimistic_gradient_descent():
  field = theory.dirac_gan_vector_field('non_saturating')
  update = theory.dirac_gan_update('optimistic', learning_rate=H)
  tx = optax.optimistic_gradient_descent(H)
  z = jnp.array([0.7, -0.4])
  s, opt_state = theory.dirac_gan_initial_state('optimistic', z), tx.init(z)
  for _ in range(5):
    # optax descends a gradient; the field is minus each player's gradient.
    updates, opt_state = tx.update(-field(z), opt_state)
    z = optax.apply_updates(z, updates)
    s = update(s)
    np.testing.assert_allclose(s[:2], z, rtol=1e-6)


@pytest.mark.parametrize('sigma', [0.5, 1.0, 2.5])
def test_dirac_instance_noise_matches_the_closed_form(sigma):
  # E over eps ~ N(0, sigma^2) of the losses: J_psi,psi = -sigma^2/2, eigenvalues
  # -sigma^2/4 +- sqrt(sigma^4/16 - 1/4) (Mescheder et al. 2018, section 3.2).
  field = theory.dirac_gan_vector_field('non_saturating', noise_std=sigma)
  eig = theory.eigenvalues_2x2(jax.jacfwd(field)(jnp.zeros(2)))
  root = cmath.sqrt(sigma ** 4 / 16 - 0.25)
  np.testing.assert_allclose(eig, [-sigma ** 2 / 4 + root, -sigma ** 2 / 4 - root], atol=1e-5)


@pytest.mark.parametrize('k', [1, 3, 5])
def test_dirac_unrolled_wgan_matches_the_closed_form(k):
  # psi_K = psi - K h theta, so G's gradient is -psi + 2 K h theta and
  # F = [[1 - 2 K h^2, h], [-h, 1]]: complex roots of modulus sqrt(1 - (2K - 1) h^2).
  jac = theory.dirac_gan_update_jacobian('unrolled', 'wasserstein', learning_rate=H,
                                         unroll_steps=k)
  np.testing.assert_allclose(jac, [[1 - 2 * k * H * H, H], [-H, 1]], atol=1e-6)
  assert rho('unrolled', 'wasserstein', unroll_steps=k) == pytest.approx(
      math.sqrt(1 - (2 * k - 1) * H * H), rel=1e-5)


def test_dirac_convergence_table():
  labels = ('WGAN, simultaneous', 'WGAN, alternating', 'R1', 'consensus', 'extragradient',
            'WGAN, unrolled K')
  chosen = [r for r in theory.DIRAC_TABLE_ROWS if r[0] in labels]
  rows = {r['label']: r for r in theory.dirac_gan_convergence_table(
      learning_rate=0.5, gamma=1.0, num_steps=200, unroll_steps=1, rows=chosen)}
  assert sorted(rows) == sorted(labels)
  sim = rows['WGAN, simultaneous']
  assert not sim['converges'] and not sim['neutral']
  assert sim['distance'] == pytest.approx(math.sqrt(2) * (1 + 0.25) ** 100, rel=1e-3)
  assert rows['WGAN, alternating']['neutral']
  for label in ('R1', 'consensus', 'extragradient', 'WGAN, unrolled K'):
    assert rows[label]['converges'], label
  # WGAN, unrolled K = 1: |z_N| = (1 - h^2)^(N/2) |z_0| is not exact (F is not normal),
  # but it contracts at rho^N up to a constant.
  assert rows['WGAN, unrolled K']['distance'] < 10 * math.sqrt(1 - 0.25) ** 200
  text = theory.format_convergence_table(list(rows.values()), num_steps=200)
  assert 'diverges' in text and 'neutral' in text and 'converges' in text


def test_dirac_update_rejects_unknown_methods():
  with pytest.raises(ValueError, match='method=.*valid choices: simultaneous'):
    theory.dirac_gan_update('adam', learning_rate=H)
  with pytest.raises(ValueError, match='unroll_steps >= 1'):
    theory.dirac_gan_update('unrolled', learning_rate=H)
  with pytest.raises(ValueError, match='noise_std > 0'):
    theory.dirac_gan_update('instance_noise', learning_rate=H)


def test_table_cli_prints_every_row(capsys):
  theory.main(['--steps', '3'])
  out = capsys.readouterr().out
  for label, _, _ in theory.DIRAC_TABLE_ROWS:
    assert label in out


# ---------------------------------------------------------------------------
# The step's game methods are the Dirac-GAN updates above (SGD, one step).
# ---------------------------------------------------------------------------


class DiracG(nn.Module):
  """G's point mass at theta."""
  theta0: float = 0.7

  @nn.compact
  def __call__(self, z, labels=None, *, train):
    theta = self.param('theta', lambda k: jnp.float32(self.theta0))
    return jnp.broadcast_to(theta, (z.shape[0], 1)) + 0.0 * z[:, :1]


class DiracD(nn.Module):
  """D_psi(x) = psi x, no bias."""
  psi0: float = -0.4

  @nn.compact
  def __call__(self, x, labels=None, *, train):
    return self.param('psi', lambda k: jnp.float32(self.psi0)) * x[:, 0]


def dirac_step(game='gd', tx=None, **options):
  tx = tx or optax.sgd(H)
  spec = steps.GANSpec(generator=DiracG(), discriminator=DiracD(), g_tx=tx, d_tx=tx,
                       loss=losses.get_loss('non_saturating'), latent_dim=1,
                       update_order='simultaneous', game=game, **options)
  state = steps.init_state(spec, jax.random.PRNGKey(0), (1,))
  return state, jax.jit(functools.partial(steps.train_step, spec=spec))


def params(state):
  return np.array([float(state.g_params['theta']), float(state.d_params['psi'])])


@pytest.mark.parametrize('game, method, gamma', [('gd', 'simultaneous', 0.0),
                                                 ('extragradient', 'extragradient', 0.0),
                                                 ('consensus', 'consensus', 0.5)])
def test_step_game_methods_equal_the_dirac_updates(game, method, gamma):
  options = {'consensus_gamma': gamma} if gamma else {}
  state, step = dirac_step(game, **options)
  update = theory.dirac_gan_update(method, learning_rate=H, gamma=gamma)
  z = jnp.array([0.7, -0.4])
  data = {'x': jnp.zeros((4, 1))}
  for _ in range(3):
    state, metrics = step(state, data)
    z = update(z)
    np.testing.assert_allclose(params(state), z, rtol=1e-5, atol=1e-7)
  if game == 'consensus':
    assert float(metrics['consensus_penalty']) > 0


def test_step_with_optimistic_optimizers_equals_the_dirac_update():
  state, step = dirac_step(tx=optax.optimistic_gradient_descent(H))
  update = theory.dirac_gan_update('optimistic', learning_rate=H)
  s = theory.dirac_gan_initial_state('optimistic', jnp.array([0.7, -0.4]))
  for _ in range(4):
    state, _ = step(state, {'x': jnp.zeros((4, 1))})
    s = update(s)
    np.testing.assert_allclose(params(state), s[:2], rtol=1e-5, atol=1e-7)


def test_game_options_are_checked():
  with pytest.raises(ValueError, match=r'config.game.method=.*valid choices: gd, '
                                       'extragradient, consensus'):
    dirac_step('adam')
  with pytest.raises(ValueError, match='config.update_order=simultaneous'):
    linear_spec(game='extragradient')
  with pytest.raises(ValueError, match='consensus_gamma > 0'):
    dirac_step('consensus')


# ---------------------------------------------------------------------------
# R2 and DRAGAN beside R1 and GP.
# ---------------------------------------------------------------------------


def test_r2_and_dragan_penalties_by_hand():
  # f(x) = |x|^2: grad = 2x, R2 = 1/2 mean(4 |x|^2) = 2 mean(1, 2) = 3 (as R1, at the fakes).
  f = lambda x: jnp.sum(x ** 2, axis=-1)
  assert float(losses.r2_penalty(f, jnp.array([[1.0, 0.0], [1.0, 1.0]]))) == pytest.approx(3.0)
  # DRAGAN, linear critic with |u| = 5: (5 - 1)^2 wherever it is evaluated.
  u = jnp.array([3.0, -4.0])
  x = jax.random.normal(jax.random.PRNGKey(0), (8, 2))
  assert float(losses.dragan_penalty(lambda y: y @ u, x, jax.random.PRNGKey(1))) == (
      pytest.approx(16.0))
  # f(x) = |x|^2 / 2 at x + 0.5 std(x) u with u = 1: x = I_2, std = 1/2, x_hat = I + 1/4,
  # |grad| = |x_hat_i| = sqrt(1.25^2 + 0.25^2), penalty (that - 1)^2.
  half = lambda y: 0.5 * jnp.sum(y ** 2, axis=-1)
  ones = lambda key, shape: jnp.ones(shape)
  value = losses.dragan_penalty(half, jnp.eye(2), jax.random.PRNGKey(0), uniform=ones)
  assert float(value) == pytest.approx((math.sqrt(1.25 ** 2 + 0.25 ** 2) - 1) ** 2, rel=1e-5)


def test_r2_penalty_update_at_the_fake_points():
  # D(x) = w.x + c + v/2 |x|^2 and G(z) = a: grad_x D(a) = w + v a, R2 = 1/2 |w + v a|^2;
  # dR2/dw = w + v a, so w <- w - eta_D ((a - rbar) + gamma (w + v a)).
  gamma, v0 = 0.7, 0.3
  spec = linear_spec(discriminator=LinearD(v0=v0), r2_gamma=gamma)
  [(_, new, m)] = run_steps(spec, [{'x': REAL}])
  grad_x = W0 + v0 * A0
  np.testing.assert_allclose(m['r2_penalty'], 0.5 * grad_x @ grad_x, rtol=1e-5)
  np.testing.assert_allclose(new.d_params['w'], W0 - ETA_D * ((A0 - RBAR) + gamma * grad_x),
                             rtol=1e-5)


def test_dragan_penalty_in_the_step():
  # A linear critic's input gradient is w everywhere: DRAGAN = (|w| - 1)^2 and its
  # gradient w.r.t. w is 2 (|w| - 1) w / |w|.
  lam = 2.0
  spec = linear_spec(dragan=lam)
  [(_, new, m)] = run_steps(spec, [{'x': REAL}])
  norm = float(np.linalg.norm(W0))
  np.testing.assert_allclose(m['dragan_penalty'], (norm - 1) ** 2, rtol=1e-5)
  np.testing.assert_allclose(
      new.d_params['w'], W0 - ETA_D * ((A0 - RBAR) + lam * 2 * (norm - 1) * W0 / norm),
      rtol=1e-5)


def test_dirac_iterates_and_figure(tmp_path):
  zs = theory.dirac_gan_iterates('simultaneous', 'wasserstein', num_steps=3, learning_rate=H)
  np.testing.assert_allclose(zs[0], [1.0, 1.0])
  # One step of z + h (psi, -theta) from (1, 1).
  np.testing.assert_allclose(zs[1], [1.0 + H, 1.0 - H], rtol=1e-6)
  from gan_jax import theory_figure  # pylint: disable=g-import-not-at-top
  out = tmp_path / 'dirac.png'
  theory_figure.main(['--dirac', '--out', str(out), '--dirac_steps', '5'])
  assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


# ~10 s each (three compiled vmapped programs): slow.
# SGD for the relativistic loss: its output bias cancels (zero gradient up to rounding),
# which Adam would blow up to +-lr steps.
@pytest.mark.slow
@pytest.mark.parametrize('game, loss, tx', [('extragradient', 'ragan', 'sgd'),
                                            ('consensus', 'non_saturating', 'adam'),
                                            ('gd', 'rahinge', 'optimistic')])
def test_sweep_runner_vmaps_the_new_options(game, loss, tx):
  # The sweep trains seeds with jit(vmap(train_n_steps)); spectral norm, the game
  # methods and the relativistic losses run there and equal each seed run alone.
  from gan_jax import models, seeds  # pylint: disable=g-import-not-at-top,g-multiple-import
  from gan_jax.datasets import mixtures  # pylint: disable=g-import-not-at-top
  g, d = models.build_models(
      dict(name='mlp', g_widths=(8,), d_widths=(8,), g_activation='relu', d_activation='relu',
           d_dropout=0.0, out_activation='linear', d_spectral_norm=True), (2,), 0)
  opt = {'adam': optax.adam(1e-2, b1=0.5), 'sgd': optax.sgd(0.1),
         'optimistic': optax.optimistic_gradient_descent(1e-2)}[tx]
  spec = steps.GANSpec(generator=g, discriminator=d, g_tx=opt, d_tx=opt,
                       loss=losses.get_loss(loss), latent_dim=4, update_order='simultaneous',
                       game=game, consensus_gamma=0.1 if game == 'consensus' else 0.0)
  sampler = mixtures.make_sampler({'name': 'ring', 'num_modes': 3, 'radius': 1.0, 'std': 0.1})
  seed_list, keys = (0, 1), seeds.data_keys((0, 1))
  run = seeds.make_train_n_steps(spec, sampler, batch_size=8, num_steps=2)
  states, _ = run(seeds.init_states(spec, seed_list, (2,)), keys)
  step = jax.jit(functools.partial(steps.train_step, spec=spec))
  for i, s in enumerate(seed_list):
    state = steps.init_state(spec, jax.random.PRNGKey(s), (2,))
    for t in range(2):
      state, _ = step(state, sampler(jax.random.fold_in(keys[i], t), 8))
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5,
                                                atol=1e-6),
        seeds.unstack(states, i), state)
