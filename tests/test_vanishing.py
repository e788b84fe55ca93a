"""Issue 12: a frozen G (`freeze_g`), two-sided label smoothing, and the
vanishing-gradient measurement of `gan_jax.vanishing`, against closed forms.

The step tests run the real `train_step` on the linear game of conftest.py
(G(z) = a, D(x) = w.x + c), where every gradient is a formula in the parameters:
for a fake logit l = w.a + c, G's gradient w.r.t. a is dL/dl * w, with
dL/dl = -sigmoid(l) (minimax), -(1 - sigmoid(l)) (non-saturating), -1
(Wasserstein) and l - 1 (least squares).
"""

from __future__ import annotations

import dataclasses
import math
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from gan_jax import config_base
from gan_jax import losses
from gan_jax import steps
from gan_jax import vanishing
from gan_jax.models import mlp

from conftest import A0, ETA_D, REAL, RBAR, W0, ConstantG, LinearD, linear_spec, run_steps, write_idx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENT = os.path.join(ROOT, 'experiments', 'vanishing_gradients.py')


def sigmoid(l):
  return 1.0 / (1.0 + np.exp(-np.asarray(l, np.float64)))


def tree_equal(a, b) -> bool:
  return all(jax.tree_util.tree_leaves(jax.tree_util.tree_map(
      lambda x, y: bool(jnp.array_equal(x, y)), a, b)))


# ---------------------------------------------------------------------------
# The G losses' derivative in the logit (issue 12, item 4).
# ---------------------------------------------------------------------------


def test_minimax_gradient_in_the_logit_vanishes_and_the_non_saturating_one_does_not():
  # L = mean_i f(l_i), so dL/dl_i = f'(l_i) / n.
  l = jnp.array([-30.0, -8.0, -2.0, 0.0, 3.0])
  n = l.shape[0]
  np.testing.assert_allclose(jax.grad(losses.minimax_generator_loss)(l),
                             -sigmoid(l) / n, rtol=1e-5, atol=0)
  np.testing.assert_allclose(jax.grad(losses.non_saturating_generator_loss)(l),
                             -(1 - sigmoid(l)) / n, rtol=1e-5, atol=0)
  # At l = -30 (D(G(z)) = 9e-14) the minimax gradient is 1e-13 of the other.
  assert abs(float(jax.grad(losses.minimax_generator_loss)(l)[0])) < 1e-13
  assert float(jax.grad(losses.non_saturating_generator_loss)(l)[0]) == pytest.approx(-1 / n)


def confident_d_spec(loss: str) -> steps.GANSpec:
  """G(z) = a = (-1, 0) frozen, reals at (1, 0); D(x) = w.x + c.

  D follows the sign of its gradient with step 0.1 (gradient descent on a
  separable logistic problem grows w only like log t): w_1 = 0.5 + 0.1 t, so
  the fake logit -w_1 + c falls linearly, to about -20 after 200 steps.
  """
  spec = linear_spec(generator=ConstantG(a0=(-1.0, 0.0)), loss=loss, freeze_g=True,
                     discriminator=LinearD(w0=(0.5, 1.0), c0=0.2))
  return dataclasses.replace(spec, d_tx=optax.chain(optax.scale_by_sign(), optax.scale(-0.1)))


def test_a_confident_d_silences_the_minimax_gradient_through_the_step():
  # The step computes G's gradient after D's update (d_first) and reports its
  # norm without applying it: |dL/dl| |w| at l = w.a + c = -w_1 + c, i.e.
  # sigmoid(l) |w| (minimax) and (1 - sigmoid(l)) |w| (non-saturating). Both
  # specs train the same D (the same cross-entropy D loss and keys).
  real = {'x': np.tile(np.array([[1.0, 0.0]], np.float32), (8, 1))}
  a = np.array([-1.0, 0.0])
  runs = {loss: run_steps(confident_d_spec(loss), [real] * 200)
          for loss in ('minimax', 'non_saturating')}
  norms = {loss: [] for loss in runs}
  for t in range(200):
    (before, after, m_mm), (_, after_ns, m_ns) = runs['minimax'][t], runs['non_saturating'][t]
    assert tree_equal(after.d_params, after_ns.d_params)
    assert tree_equal(after.g_params, before.g_params)         # G frozen
    assert tree_equal(after.g_opt_state, before.g_opt_state)
    w = np.asarray(after.d_params['w'], np.float64)
    l_fake = w @ a + float(after.d_params['c'])
    for loss, m, dl in (('minimax', m_mm, sigmoid(l_fake)),
                        ('non_saturating', m_ns, 1 - sigmoid(l_fake))):
      np.testing.assert_allclose(m['g_grad_norm'], dl * np.linalg.norm(w), rtol=1e-4,
                                 err_msg=f'{loss} at step {t}')
      norms[loss].append(float(m['g_grad_norm']))
  final = runs['minimax'][-1][1]
  l_real = float(final.d_params['w'][0] + final.d_params['c'])
  assert sigmoid(l_real) > 0.999 and float(runs['minimax'][-1][2]['d_fake']) < 1e-3
  assert norms['minimax'][-1] < 1e-3 * norms['minimax'][0]     # >= 3 decades
  assert min(norms['non_saturating']) >= 0.1 * norms['non_saturating'][0]


# ---------------------------------------------------------------------------
# freeze_g: one option of the same step.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize('order', ['d_first', 'g_first', 'simultaneous'])
def test_frozen_g_linear_game_closed_form(order):
  # G never moves: a_t = A0, so w_t = W0 - t eta_D (A0 - RBAR) in every order.
  # G's (unapplied) Wasserstein gradient is -w at the D it is taken against:
  # the updated one for d_first, the one before the update otherwise.
  out = run_steps(linear_spec(update_order=order, freeze_g=True), [{'x': REAL}] * 3)
  for t, (before, after, m) in enumerate(out):
    w_next = W0 - (t + 1) * ETA_D * (A0 - RBAR)
    np.testing.assert_allclose(after.g_params['a'], A0, rtol=0, atol=0)
    np.testing.assert_allclose(after.d_params['w'], w_next, rtol=1e-6)
    w_seen = w_next if order == 'd_first' else W0 - t * ETA_D * (A0 - RBAR)
    np.testing.assert_allclose(m['g_grad_norm'], np.linalg.norm(w_seen), rtol=1e-6)
    np.testing.assert_allclose(m['g_loss'], -(w_seen @ A0), rtol=1e-5, atol=1e-7)
  # The frozen d_first step's D update is the unfrozen one's (same keys).
  [(_, free, m_free)] = run_steps(linear_spec(), [{'x': REAL}])
  [(_, frozen, m_frozen)] = run_steps(linear_spec(freeze_g=True), [{'x': REAL}])
  assert tree_equal(free.d_params, frozen.d_params)
  assert float(m_free['g_grad_norm']) == float(m_frozen['g_grad_norm'])
  assert not tree_equal(free.g_params, frozen.g_params)


@pytest.mark.parametrize('order', ['d_first', 'g_first', 'simultaneous'])
def test_frozen_g_keeps_params_optimizer_batch_stats_and_ema(order):
  spec = steps.GANSpec(
      generator=mlp.MLPGenerator(out_shape=(2,), widths=(8,), batch_norm=True,
                                 out_activation='linear'),
      discriminator=mlp.MLPDiscriminator(widths=(8,), activation='relu', dropout=0.0),
      g_tx=optax.adam(1e-2), d_tx=optax.adam(1e-2), loss=losses.get_loss('non_saturating'),
      latent_dim=3, update_order=order, ema_decay=0.5, freeze_g=True)
  init = steps.init_state(spec, jax.random.PRNGKey(0), (2,))
  assert init.g_batch_stats  # BatchNorm statistics exist and would move.
  x = {'x': np.asarray(jax.random.normal(jax.random.PRNGKey(1), (16, 2)))}
  out = run_steps(spec, [x, x], state=init)
  last = out[-1][1]
  for field in ('g_params', 'g_opt_state', 'g_batch_stats', 'ema_params'):
    assert tree_equal(getattr(init, field), getattr(last, field)), field
  assert not tree_equal(init.d_params, last.d_params)
  assert int(last.d_opt_state[0].count) == 2 and int(last.step) == 2
  assert all(float(m['g_grad_norm']) > 0 for _, _, m in out)
  # ...and the same spec unfrozen moves all four.
  free = run_steps(dataclasses.replace(spec, freeze_g=False), [x], state=init)[-1][1]
  for field in ('g_params', 'g_opt_state', 'g_batch_stats', 'ema_params'):
    assert not tree_equal(getattr(init, field), getattr(free, field)), field


def test_frozen_g_refuses_a_game_method_that_moves_both_players():
  for game in ('extragradient', 'consensus'):
    with pytest.raises(ValueError, match='freeze_g=True trains D alone'):
      linear_spec(update_order='simultaneous', game=game, consensus_gamma=0.1, freeze_g=True)


# ---------------------------------------------------------------------------
# Two-sided label smoothing.
# ---------------------------------------------------------------------------


def targets_spec(loss: str = 'minimax', **options) -> steps.GANSpec:
  """Reals at (1, 0), fakes at (0, 0); D(x) = w.x + c, w0 = (0.5, 1), c0 = 0.2, eta_D = 1.

  So l_real = 0.7 and l_fake = 0.2 at the first D update.
  """
  return linear_spec(generator=ConstantG(a0=(0.0, 0.0)), loss=loss, eta_d=1.0,
                     discriminator=LinearD(w0=(0.5, 1.0), c0=0.2), **options)


REAL_10 = {'x': np.tile(np.array([[1.0, 0.0]], np.float32), (4, 1))}


def test_two_sided_smoothing_d_loss_and_update_by_hand():
  # BCE(l, t) = softplus(l) - t l with t_real = 1 - alpha = 0.9, t_fake = beta = 0.2:
  #   L_D = softplus(0.7) - 0.63 + softplus(0.2) - 0.04
  #       = 1.1031860 - 0.63 + 0.7981389 - 0.04 = 1.2313249,
  # dL/dw_1 = sigmoid(0.7) - 0.9, dL/dc = sigmoid(0.7) - 0.9 + sigmoid(0.2) - 0.2.
  [(_, new, m)] = run_steps(targets_spec(label_smoothing=0.1, label_smoothing_fake=0.2),
                            [REAL_10])
  np.testing.assert_allclose(m['d_loss'], 1.2313249, rtol=1e-6)
  np.testing.assert_allclose(new.d_params['w'], [0.5 - (sigmoid(0.7) - 0.9), 1.0], rtol=1e-6)
  np.testing.assert_allclose(new.d_params['c'],
                             0.2 - (sigmoid(0.7) - 0.9 + sigmoid(0.2) - 0.2), rtol=1e-5)
  # One-sided (beta = 0): the fake term is softplus(0.2) = 0.7981389, L_D = 1.2713249.
  [(_, _, m1)] = run_steps(targets_spec(label_smoothing=0.1), [REAL_10])
  np.testing.assert_allclose(m1['d_loss'], 1.2713249, rtol=1e-6)


def test_two_sided_smoothing_least_squares_by_hand():
  # L_D = 1/2 (0.7 - 0.9)^2 + 1/2 (0.2 - 0.2)^2 = 0.02; dL/dw_1 = -0.2, dL/dc = -0.2 + 0.
  [(_, new, m)] = run_steps(targets_spec('least_squares', label_smoothing=0.1,
                                         label_smoothing_fake=0.2), [REAL_10])
  np.testing.assert_allclose(m['d_loss'], 0.02, rtol=1e-5)
  np.testing.assert_allclose(new.d_params['w'], [0.7, 1.0], rtol=1e-6)
  np.testing.assert_allclose(new.d_params['c'], 0.4, rtol=1e-6)


def test_fake_smoothing_with_noisy_labels_has_the_shifted_half_normal_mean():
  # One SGD step with eta = 1 reads the mean fake target back (tests/test_steps.py):
  # mean t_f = sigmoid(l_r) - mean t_r + sigmoid(l_f) - (c0 - c1), E t_f = beta + s sqrt(2/pi).
  n, beta, noise = 4096, 0.1, 0.2
  real = {'x': np.tile(np.array([[1.0, 0.0]], np.float32), (n, 1))}
  [(_, new, _)] = run_steps(targets_spec(label_smoothing_fake=beta, label_noise=noise), [real])
  mean_tr = sigmoid(0.7) - (0.5 - float(new.d_params['w'][0]))
  mean_tf = sigmoid(0.7) - mean_tr + sigmoid(0.2) - (0.2 - float(new.d_params['c']))
  se = noise * math.sqrt(1 - 2 / math.pi) / math.sqrt(n)
  np.testing.assert_allclose(mean_tf, beta + noise * math.sqrt(2 / math.pi), atol=5 * se + 1e-4)


def test_beta_zero_is_bitwise_the_one_sided_loss():
  key = jax.random.PRNGKey(3)
  for noise in (0.0, 0.05):
    default = losses.fake_targets(key, (64,), noise_std=noise)
    zero = losses.fake_targets(key, (64,), smoothing=0.0, noise_std=noise)
    assert np.array_equal(np.asarray(default), np.asarray(zero))
  assert np.array_equal(np.asarray(losses.fake_targets(key, (5,))), np.zeros(5, np.float32))
  real_l, fake_l = jax.random.normal(key, (2, 64))
  t0 = losses.fake_targets(key, (64,), smoothing=0.0)
  for fn in (losses.minimax_discriminator_loss, losses.least_squares_discriminator_loss):
    assert float(fn(real_l, fake_l, real_targets=0.9, fake_targets=t0)) == float(
        fn(real_l, fake_l, real_targets=0.9, fake_targets=0.0))
  # Through the step: beta = 0 set explicitly is the one-sided step, state and metrics.
  plain = run_steps(targets_spec(label_smoothing=0.1, label_noise=0.05), [REAL_10] * 2)
  zero = run_steps(targets_spec(label_smoothing=0.1, label_noise=0.05,
                                label_smoothing_fake=0.0), [REAL_10] * 2)
  for (_, a, ma), (_, b, mb) in zip(plain, zero):
    assert tree_equal(a, b) and tree_equal(ma, mb)


@pytest.mark.parametrize('options,message', [
    (dict(label_smoothing_fake=1.0), r'label_smoothing_fake=1.0 must lie in \[0, 1\)'),
    (dict(label_smoothing_fake=-0.1), r'label_smoothing_fake=-0.1 must lie in \[0, 1\)'),
    (dict(label_smoothing=0.5, label_smoothing_fake=0.5),
     r'label_smoothing_fake=0.5 must be below the real target 1 - config.label_smoothing'),
    (dict(label_smoothing=0.3, label_smoothing_fake=0.8), 'label_smoothing_fake=0.8'),
])
def test_fake_smoothing_range_is_checked(options, message):
  with pytest.raises(ValueError, match=message):
    targets_spec(**options)


def test_fake_smoothing_needs_a_loss_with_targets():
  with pytest.raises(ValueError, match='label_smoothing_fake needs a loss with targets'):
    targets_spec('hinge', label_smoothing_fake=0.1)


# ---------------------------------------------------------------------------
# The probe of gan_jax.vanishing.
# ---------------------------------------------------------------------------


def test_g_gradient_norms_of_the_linear_game():
  # l = w.a + c for every z; grad_a L = dL/dl * w.
  spec = linear_spec(generator=ConstantG(a0=(0.3, -0.2)),
                     discriminator=LinearD(w0=(0.5, 1.0), c0=-0.4))
  state = steps.init_state(spec, jax.random.PRNGKey(0), (2,))
  z = jnp.zeros((6, 1))
  norms = vanishing.g_gradient_norms(spec, state.g_params, {}, state.d_params, {}, z)
  w, l = np.array([0.5, 1.0]), 0.5 * 0.3 - 0.2 - 0.4
  expected = {'minimax': sigmoid(l), 'non_saturating': 1 - sigmoid(l), 'wasserstein_gp': 1.0,
              'least_squares': abs(l - 1)}
  assert set(norms) == set(vanishing.G_LOSS_NAMES)
  for name, dl in expected.items():
    np.testing.assert_allclose(norms[name], dl * np.linalg.norm(w), rtol=1e-5, err_msg=name)


def test_d_accuracy_and_statistics():
  acc = vanishing.d_accuracy(jnp.array([1.0, -1.0, 2.0, 3.0]), jnp.array([-1.0, 0.5]))
  assert float(acc) == pytest.approx(0.5 * (3 / 4 + 1 / 2))
  mean, std = vanishing.log_stats(np.array([[1e-2, 10.0], [1e-4, 10.0]]))
  np.testing.assert_allclose(mean, [-3.0, 1.0])
  np.testing.assert_allclose(std, [math.sqrt(2), 0.0])
  np.testing.assert_allclose(vanishing.decades_fallen(np.array([[1.0, 1e-2, 1e-5]]), -1), [5.0])


def experiment_config(arg=None) -> ml_collections.ConfigDict:
  return config_base.load_config(EXPERIMENT + (f':{arg}' if arg else ''))


@pytest.mark.parametrize('field,value,message', [
    ('budgets', (1000, 250), 'budgets=.* must be strictly increasing'),
    ('budgets', (), 'budgets=.* must be a non-empty tuple'),
    ('d_steps', 2001, 'd_steps=2001 must be a multiple of config.vanishing.log_every=20'),
    ('table_steps', (0, 30), 'table_steps=.*multiple of log_every=20'),
    ('num_seeds', 0, 'num_seeds=0 must be a positive integer'),
    ('remedy_log_every', 300, 'remedy_log_every=300'),
])
def test_protocol_fields_are_checked(field, value, message):
  config = experiment_config()
  config.vanishing[field] = value
  with pytest.raises(ValueError, match=message):
    vanishing.protocol(config)


def test_default_protocol_is_the_stated_cpu_equivalent():
  p = vanishing.protocol(experiment_config())
  assert p.budgets == (250, 1000, 4000) and p.num_seeds >= 3 and p.d_steps == 2000
  assert p.d_steps % p.log_every == 0 and p.d_steps in p.table_steps


def fake_fashion_mnist(root) -> str:
  """40 random 28x28 images with labels 0..9, MNIST-named IDX files."""
  rng = np.random.default_rng(0)
  root.mkdir()
  for prefix, n in (('train', 40), ('t10k', 20)):
    write_idx(root / f'{prefix}-images-idx3-ubyte.gz',
              rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
    write_idx(root / f'{prefix}-labels-idx1-ubyte.gz', (np.arange(n) % 10).astype(np.uint8))
  return str(root)


def run_quick(tmp_path, variants):
  config = experiment_config('quick')
  config.data.dir = fake_fashion_mnist(tmp_path / 'idx')
  workdir = tmp_path / 'run'
  out = vanishing.run(config, str(workdir), variants=variants, log=lambda _: None)
  return config, workdir, out


def test_quick_variant_end_to_end(tmp_path):
  # The :quick protocol on random images, with the plain D and one remedy (each
  # D variant is one more compiled program): every output written, one probe
  # per log step.
  variants = [('plain D', {}), ('two-sided', {'label_smoothing': 0.1,
                                              'label_smoothing_fake': 0.1})]
  config, workdir, out = run_quick(tmp_path, variants)
  for name in ('vanishing_gradients.png', 'vanishing_gradients.md', 'curves.npz', 'config.json'):
    assert (workdir / name).exists(), name
  assert sorted(os.listdir(workdir / 'checkpoints')) == ['budget_4', 'budget_8']
  p = vanishing.protocol(config)
  assert list(out['results']) == ['plain D', 'two-sided']
  plain = out['results']['plain D']
  for budget in p.budgets:
    assert plain[budget]['grad/minimax'].shape == (p.num_seeds, p.d_steps // p.log_every + 1)
    for values in plain[budget].values():
      assert np.all(np.isfinite(values))
  text = (workdir / 'vanishing_gradients.md').read_text()
  assert '## Remedies on the same checkpoints' in text and '| two-sided | 8 |' in text
  npz = np.load(workdir / 'curves.npz')
  np.testing.assert_array_equal(npz['plain D/8/grad/minimax'], plain[8]['grad/minimax'])
  with pytest.raises(ValueError, match='changes G'):
    vanishing.run(config, str(workdir), variants=[('plain D', {}),
                                                  ('wider G', {'model.g_widths': (32,)})])


@pytest.mark.slow
def test_quick_variant_with_every_remedy_of_the_config(tmp_path):
  config = experiment_config('quick')
  variants = vanishing.variants_of(EXPERIMENT + ':quick', config)
  assert [name for name, _ in variants] == [
      'plain D', 'label_smoothing=0.1', 'label_smoothing=0.1,label_smoothing_fake=0.1',
      'instance_noise.std=0.1', 'penalty.r1=1.0']
  _, _, out = run_quick(tmp_path, variants)
  for by_budget in out['results'].values():
    for metrics in by_budget.values():
      assert all(np.all(np.isfinite(v)) for v in metrics.values())
