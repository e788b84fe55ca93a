"""factory: each config field's effect on the GANSpec, each optimizer's update by hand.

The spec table sets one group of config fields at a time and checks *every*
option of the resulting spec: the ones the row names take its values, all the
others keep the defaults, so a field wired to the wrong option shows up either
way. The optimizer tests run a few updates of `make_optimizer`'s result and
compare them with the update rules written out in numpy (float64).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from gan_jax import config_base
from gan_jax import factory
from gan_jax import input_pipeline
from gan_jax import steps


def base_config() -> ml_collections.ConfigDict:
  c = config_base.get_base()
  config_base.ring(c)  # 8 classes, so conditional rows are possible
  config_base.toy_2d(c)
  c.model.update(dict(latent_dim=3, g_widths=(4,), d_widths=(4,)))
  return c


def with_overrides(overrides: dict) -> ml_collections.ConfigDict:
  c = base_config()
  for path, value in overrides.items():
    node = c
    *parents, leaf = path.split('.')
    for key in parents:
      node = node[key]
    node[leaf] = value
  return c


def build(overrides: dict):
  config = with_overrides(overrides)
  return factory.build_spec(config, input_pipeline.get_info(config.data))


DEFAULTS = dict(
    latent_dim=3, num_classes=0, latent_distribution='normal', d_steps=1,
    update_order='d_first', gradient_penalty=0.0, r1_gamma=0.0, weight_clip=0.0,
    label_smoothing=0.0, label_noise=0.0, instance_noise=0.0, instance_noise_decay_steps=0,
    matching_aware=False, unroll_steps=0, unroll_exact=True, unroll_remat=False,
    unroll_g_once=True, ema_decay=0.0, label_smoothing_fake=0.0, freeze_g=False, game='gd', consensus_gamma=0.1,
    r2_gamma=0.0, dragan=0.0)

SPEC_TABLE = [
    # (config overrides, spec options that must change, loss name)
    ({}, {}, 'non_saturating'),
    ({'loss': 'minimax'}, {}, 'minimax'),
    ({'loss': 'hinge'}, {}, 'hinge'),
    ({'loss': 'least_squares'}, {}, 'least_squares'),
    # Penalty defaults come from the loss; a set value (also 0) overrides them.
    ({'loss': 'wasserstein_gp'}, {'gradient_penalty': 10.0}, 'wasserstein_gp'),
    ({'loss': 'wasserstein_gp', 'penalty.gradient': 2.5}, {'gradient_penalty': 2.5},
     'wasserstein_gp'),
    ({'loss': 'wasserstein_gp', 'penalty.gradient': 0.0}, {}, 'wasserstein_gp'),
    ({'loss': 'wasserstein'}, {'weight_clip': 0.01}, 'wasserstein'),
    ({'loss': 'wasserstein', 'penalty.weight_clip': 0.05}, {'weight_clip': 0.05},
     'wasserstein'),
    ({'loss': 'wasserstein', 'penalty.weight_clip': 0.0}, {}, 'wasserstein'),
    ({'loss': 'wasserstein', 'penalty.gradient': 1.0},
     {'weight_clip': 0.01, 'gradient_penalty': 1.0}, 'wasserstein'),
    ({'penalty.gradient': 3.0}, {'gradient_penalty': 3.0}, 'non_saturating'),
    ({'penalty.r1': 0.7}, {'r1_gamma': 0.7}, 'non_saturating'),
    ({'penalty.r2': 0.3}, {'r2_gamma': 0.3}, 'non_saturating'),
    ({'penalty.dragan': 10.0}, {'dragan': 10.0}, 'non_saturating'),
    ({'d_steps': 3}, {'d_steps': 3}, 'non_saturating'),
    ({'update_order': 'g_first'}, {'update_order': 'g_first'}, 'non_saturating'),
    ({'update_order': 'simultaneous'}, {'update_order': 'simultaneous'}, 'non_saturating'),
    ({'label_smoothing': 0.1}, {'label_smoothing': 0.1}, 'non_saturating'),
    ({'label_noise': 0.05}, {'label_noise': 0.05}, 'non_saturating'),
    ({'label_smoothing': 0.1, 'label_smoothing_fake': 0.1},
     {'label_smoothing': 0.1, 'label_smoothing_fake': 0.1}, 'non_saturating'),
    ({'train.freeze_g': True}, {'freeze_g': True}, 'non_saturating'),
    ({'instance_noise.std': 0.2}, {'instance_noise': 0.2}, 'non_saturating'),
    ({'instance_noise.std': 0.2, 'instance_noise.decay_steps': 50},
     {'instance_noise': 0.2, 'instance_noise_decay_steps': 50}, 'non_saturating'),
    ({'ema_decay': 0.99}, {'ema_decay': 0.99}, 'non_saturating'),
    ({'loss': 'ragan'}, {}, 'ragan'),
    ({'update_order': 'simultaneous', 'game.method': 'extragradient'},
     {'update_order': 'simultaneous', 'game': 'extragradient'}, 'non_saturating'),
    ({'update_order': 'simultaneous', 'game.method': 'consensus',
      'game.consensus_gamma': 0.5},
     {'update_order': 'simultaneous', 'game': 'consensus', 'consensus_gamma': 0.5},
     'non_saturating'),
    ({'unroll.steps': 5}, {'unroll_steps': 5}, 'non_saturating'),
    ({'unroll.steps': 5, 'unroll.exact': False}, {'unroll_steps': 5, 'unroll_exact': False},
     'non_saturating'),
    ({'unroll.steps': 2, 'unroll.remat': True}, {'unroll_steps': 2, 'unroll_remat': True},
     'non_saturating'),
    ({'unroll.steps': 2, 'unroll.g_once': False}, {'unroll_steps': 2, 'unroll_g_once': False},
     'non_saturating'),
    ({'model.latent_dim': 7}, {'latent_dim': 7}, 'non_saturating'),
    ({'model.latent_distribution': 'uniform'}, {'latent_distribution': 'uniform'},
     'non_saturating'),
    ({'model.conditional': True}, {'num_classes': 8}, 'non_saturating'),
    ({'model.conditional': True, 'matching_aware': True},
     {'num_classes': 8, 'matching_aware': True}, 'non_saturating'),
]


@pytest.mark.parametrize('overrides,changed,loss', SPEC_TABLE,
                         ids=[','.join(o) or 'defaults' for o, _, _ in SPEC_TABLE])
def test_config_fields_map_onto_the_spec(overrides, changed, loss):
  spec = build(overrides)
  expected = dict(DEFAULTS, **changed)
  actual = {name: getattr(spec, name) for name in expected}
  assert actual == expected
  assert spec.loss.name == loss


def test_every_spec_option_is_covered_by_the_table():
  options = {f.name for f in dataclasses.fields(steps.GANSpec)}
  assert options - set(DEFAULTS) == {'generator', 'discriminator', 'g_tx', 'd_tx', 'loss'}
  changed = set().union(*(c for _, c, _ in SPEC_TABLE))
  assert changed == set(DEFAULTS), set(DEFAULTS) - changed


@pytest.mark.parametrize('overrides,message', [
    ({'loss': 'hinge', 'label_smoothing': 0.1}, 'label_smoothing'),
    ({'update_order': 'random'}, 'update_order'),
    ({'d_steps': 0}, 'd_steps'),
    ({'matching_aware': True}, 'matching_aware'),
    ({'loss': 'wgan'}, 'valid choices'),
    ({'label_smoothing': 1.0}, r'label_smoothing=1.0 must lie in \[0.0, 1.0\)'),
    ({'label_smoothing_fake': 1.0}, r'label_smoothing_fake=1.0 must lie in \[0.0, 1.0\)'),
    ({'label_smoothing_fake': -0.1}, 'label_smoothing_fake'),
    ({'label_smoothing': 0.6, 'label_smoothing_fake': 0.4},
     r'label_smoothing_fake=0.4 must be below the real target 1 - config.label_smoothing'),
    ({'loss': 'hinge', 'label_smoothing_fake': 0.1}, 'label_smoothing_fake'),
    ({'ema_decay': -0.1}, 'ema_decay'),
    ({'penalty.r1': -1.0}, 'penalty.r1'),
    ({'penalty.r2': -1.0}, 'penalty.r2'),
    ({'penalty.dragan': -1.0}, 'penalty.dragan'),
    ({'optim.d.b2': 1.0}, 'optim.d.b2'),
    ({'model.latent_dim': 0}, 'model.latent_dim'),
    ({'optim.g.name': 'adagrad'}, r'config.optim.g.name=.adagrad.'),
    ({'optim.d.lr': 0.0}, r'config.optim.d.lr=0.0 must be positive'),
    ({'optim.g.decay_steps': -1}, 'config.optim.g.decay_steps'),
    ({'optim.g.name': 'adagrad'}, 'valid choices: .*optimistic, optimistic_adam'),
    ({'optim.d.optimism': -1.0}, 'optim.d.optimism'),
    ({'game.method': 'sga'}, r'config.game.method=.sga.; valid choices: gd, extragradient'),
    ({'game.method': 'extragradient'}, 'needs config.update_order=simultaneous'),
    ({'game.consensus_gamma': -0.1}, 'game.consensus_gamma'),
    ({'update_order': 'simultaneous', 'game.method': 'consensus',
      'game.consensus_gamma': 0.0}, 'consensus_gamma > 0'),
])
def test_bad_fields_are_named(overrides, message):
  with pytest.raises(ValueError, match=message):
    build(overrides)


# ---------------------------------------------------------------------------
# Optimizers: a few updates against the update rules by hand.
# ---------------------------------------------------------------------------

GRADS = [np.array([0.3, -1.2, 2.0]), np.array([-0.5, 0.1, 1.0]),
         np.array([0.7, 0.7, -0.2]), np.array([1.5, -0.3, 0.4])]


def updates_of(tx, grads=GRADS):
  params = jnp.zeros(3, jnp.float32)
  state = tx.init(params)
  out = []
  for g in grads:
    u, state = tx.update(jnp.asarray(g, jnp.float32), state, params)
    out.append(np.asarray(u, np.float64))
  return out


def adam_by_hand(lr, b1, b2, eps=1e-8, eps_root=0.0, grads=GRADS):
  m = v = 0.0
  out = []
  for t, g in enumerate(grads, start=1):
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g**2
    m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
    out.append(-lr * m_hat / (np.sqrt(v_hat + eps_root) + eps))
  return out


def rmsprop_by_hand(lr, decay=0.9, eps=1e-8, grads=GRADS):
  v = 0.0
  out = []
  for g in grads:
    v = decay * v + (1 - decay) * g**2
    out.append(-lr * g / np.sqrt(v + eps))  # eps inside the sqrt
  return out


def momentum_by_hand(lr, momentum, grads=GRADS):
  m = 0.0
  out = []
  for g in grads:
    m = g + momentum * m
    out.append(-lr * m)
  return out


def _opt_with(fields) -> ml_collections.ConfigDict:
  c = config_base.optimizer()
  c.update(fields)
  return c


def optimistic_by_hand(lr, beta, grads=GRADS):
  # -lr ((1 + beta) g_t - beta g_{t-1}); the first step has no g_{-1} and uses g_0.
  return [-lr * ((1 + beta) * g - beta * (grads[t - 1] if t else g))
          for t, g in enumerate(grads)]


OPTIMIZER_TABLE = [
    ('adam', dict(name='adam', lr=1e-2, b1=0.5, b2=0.99), adam_by_hand(1e-2, 0.5, 0.99)),
    ('adam_defaults', dict(name='adam'), adam_by_hand(2e-4, 0.5, 0.999)),
    ('rmsprop', dict(name='rmsprop', lr=1e-2), rmsprop_by_hand(1e-2)),
    ('sgd', dict(name='sgd', lr=0.3), [-0.3 * g for g in GRADS]),
    ('momentum', dict(name='momentum', lr=0.1, momentum=0.8), momentum_by_hand(0.1, 0.8)),
    ('optimistic', dict(name='optimistic', lr=0.1), optimistic_by_hand(0.1, 1.0)),
    ('optimistic_0.5', dict(name='optimistic', lr=0.1, optimism=0.5),
     optimistic_by_hand(0.1, 0.5)),
]


@pytest.mark.parametrize('name,fields,expected', OPTIMIZER_TABLE,
                         ids=[row[0] for row in OPTIMIZER_TABLE])
def test_optimizer_updates_by_hand(name, fields, expected):
  del name
  tx = factory.make_optimizer(_opt_with(fields), 'config.optim.g')
  for t, (u, e) in enumerate(zip(updates_of(tx), expected)):
    np.testing.assert_allclose(u, e, rtol=2e-5, atol=1e-9, err_msg=f'update {t}')


def test_cosine_decay_of_the_learning_rate():
  # lr_t = lr (alpha + (1 - alpha) (1 + cos(pi t / T)) / 2) for t <= T, then alpha lr.
  lr, steps, alpha = 0.5, 3, 0.2
  tx = factory.make_optimizer(_opt_with(dict(name='sgd', lr=lr, decay_steps=steps,
                                             final_lr_fraction=alpha)), 'config.optim.d')
  g = np.array([1.0, -2.0, 0.5])
  updates = updates_of(tx, [g] * 5)
  for t, u in enumerate(updates):
    frac = alpha + (1 - alpha) * 0.5 * (1 + math.cos(math.pi * min(t, steps) / steps))
    np.testing.assert_allclose(u, -lr * frac * g, rtol=1e-5, err_msg=f'update {t}')


def test_differentiable_adam_has_eps_root_and_a_finite_derivative_at_zero():
  # With g = 1e-6, v_hat = g^2 = 1e-12: eps_root = 1e-12 inside the sqrt is visible.
  tiny = [np.full(3, 1e-6)]
  config = _opt_with(dict(name='adam', lr=1.0))
  plain = updates_of(factory.make_optimizer(config, 'f'), tiny)[0]
  diff = updates_of(factory.make_optimizer(config, 'f', differentiable=True), tiny)[0]
  np.testing.assert_allclose(plain, adam_by_hand(1.0, 0.5, 0.999, grads=tiny)[0], rtol=1e-4)
  np.testing.assert_allclose(diff, adam_by_hand(1.0, 0.5, 0.999, eps_root=1e-12,
                                                grads=tiny)[0], rtol=1e-4)
  # d update / d g at g = 0 is what the exact unrolled gradient needs.
  tx = factory.make_optimizer(config, 'f', differentiable=True)
  params = jnp.zeros(3)
  d = jax.grad(lambda g: jnp.sum(tx.update(g, tx.init(params), params)[0]))(jnp.zeros(3))
  assert np.all(np.isfinite(np.asarray(d)))


@pytest.mark.parametrize('unroll,exact,d_eps_root', [(0, True, 0.0), (2, True, 1e-12),
                                                     (2, False, 0.0)])
def test_build_spec_routes_each_optimizer_to_its_player(unroll, exact, d_eps_root):
  tiny = [np.full(3, 1e-6)]
  spec = build({'optim.g': _opt_with(dict(name='sgd', lr=0.25)),
                'optim.d': _opt_with(dict(name='adam', lr=1.0, b1=0.5, b2=0.999)),
                'unroll.steps': unroll, 'unroll.exact': exact})
  np.testing.assert_allclose(updates_of(spec.g_tx, tiny)[0], -0.25 * tiny[0], rtol=1e-6)
  np.testing.assert_allclose(updates_of(spec.d_tx, tiny)[0],
                             adam_by_hand(1.0, 0.5, 0.999, eps_root=d_eps_root, grads=tiny)[0],
                             rtol=1e-4)
