"""Spectral normalisation of D (Miyato et al. 2018, arXiv:1802.05957).

Closed form: after enough power iterations the stored sigma of each kernel is
its largest singular value (numpy.linalg.svd), so the normalised kernel
W / sigma has largest singular value 1; the layer applies exactly W / sigma.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from gan_jax import losses
from gan_jax import models
from gan_jax import steps
from gan_jax.models import dcgan
from gan_jax.models import mlp

NUM_ITERATIONS = 300  # one power iteration per call, as in training


def _iterate(d, x, num=NUM_ITERATIONS):
  """init, then `num` train-mode calls threading batch_stats (u) as the step does."""
  variables = d.init({'params': jax.random.PRNGKey(0), 'dropout': jax.random.PRNGKey(0)},
                     x, train=False)

  @jax.jit
  def run(variables):
    def body(_, stats):
      _, upd = d.apply({'params': variables['params'], 'batch_stats': stats}, x, train=True,
                       rngs={'dropout': jax.random.PRNGKey(1)}, mutable=['batch_stats'])
      return upd['batch_stats']
    return jax.lax.fori_loop(0, num, body, variables['batch_stats'])

  return variables['params'], run(variables)


def _kernels(params, stats):
  """[(name, W as (-1, out), stored sigma)] for every spectrally normalised layer."""
  out = []
  for sn_name, entry in stats.items():
    if not sn_name.endswith('_sn'):
      continue
    layer = sn_name[:-3]
    sigma = [v for k, v in entry.items() if k.endswith('/sigma')][0]
    kernel = params[layer]['kernel'] if 'kernel' in params[layer] else (
        params[layer]['dense']['kernel'])  # maxout: Dense inside
    out.append((layer, np.asarray(kernel).reshape(-1, kernel.shape[-1]), float(sigma)))
  return out


DISCRIMINATORS = [
    ('mlp', mlp.MLPDiscriminator(widths=(16, 8), dropout=0.0, spectral_norm=True), (6, 5)),
    ('maxout', mlp.MLPDiscriminator(widths=(12,), maxout_pieces=3, dropout=0.0,
                                    spectral_norm=True), (6, 5)),
    ('dcgan', dcgan.DCGANDiscriminator(base_width=4, batch_norm=False, spectral_norm=True),
     (2, 8, 8, 1)),
]


@pytest.mark.parametrize('name, d, shape', DISCRIMINATORS, ids=[r[0] for r in DISCRIMINATORS])
def test_normalised_kernels_have_unit_top_singular_value(name, d, shape):
  x = jax.random.normal(jax.random.PRNGKey(2), shape)
  params, stats = _iterate(d, x)
  kernels = _kernels(params, stats)
  expected = {'mlp': 3, 'maxout': 2, 'dcgan': 2}[name]
  assert len(kernels) == expected, [k[0] for k in kernels]
  for layer, w, sigma in kernels:
    top = np.linalg.svd(w.astype(np.float64), compute_uv=False)[0]
    assert sigma == pytest.approx(top, rel=1e-3), layer
    assert np.linalg.svd(w / sigma, compute_uv=False)[0] == pytest.approx(1.0, abs=1e-3), layer


def test_the_layer_applies_the_normalised_kernel():
  # D_SN(x) == D(x) with every kernel replaced by W / sigma(W) (sigma: top singular value).
  d_sn = mlp.MLPDiscriminator(widths=(16, 8), dropout=0.0, spectral_norm=True)
  d = mlp.MLPDiscriminator(widths=(16, 8), dropout=0.0)
  x = jax.random.normal(jax.random.PRNGKey(2), (6, 5))
  params, stats = _iterate(d_sn, x)
  divided = jax.tree_util.tree_map(lambda p: p, params)
  for layer, w, _ in _kernels(params, stats):
    top = np.linalg.svd(w, compute_uv=False)[0]
    divided[layer] = dict(params[layer], kernel=params[layer]['kernel'] / top)
  out_sn = d_sn.apply({'params': params, 'batch_stats': stats}, x, train=False)
  np.testing.assert_allclose(out_sn, d.apply({'params': divided}, x, train=False),
                             rtol=1e-3, atol=1e-5)


def test_power_iteration_state_flows_through_the_step():
  d = mlp.MLPDiscriminator(widths=(8,), activation='relu', dropout=0.0, spectral_norm=True)
  spec = steps.GANSpec(
      generator=mlp.MLPGenerator(out_shape=(2,), widths=(8,), out_activation='linear'),
      discriminator=d, g_tx=optax.adam(1e-2), d_tx=optax.adam(1e-2),
      loss=losses.get_loss('hinge'), latent_dim=2)
  state = steps.init_state(spec, jax.random.PRNGKey(0), (2,))
  assert set(state.d_batch_stats) == {'dense_0_sn', 'dense_out_sn'}
  step = jax.jit(functools.partial(steps.train_step, spec=spec))
  batch = {'x': jax.random.normal(jax.random.PRNGKey(3), (8, 2))}
  new, metrics = step(state, batch)
  u0 = state.d_batch_stats['dense_0_sn']['dense_0/kernel/u']
  u1 = new.d_batch_stats['dense_0_sn']['dense_0/kernel/u']
  assert not np.allclose(u0, u1)  # D's update advanced the power iteration
  assert np.isfinite(float(metrics['d_loss']))
  # Deterministic: the same state and batch give bitwise the same vectors.
  again, _ = step(state, batch)
  assert all(np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(new.d_batch_stats),
                                                  jax.tree_util.tree_leaves(again.d_batch_stats)))


def test_config_field_is_checked():
  base = dict(name='mlp', d_widths=(4,), g_widths=(4,), d_dropout=0.0)
  _, d = models.build_models(ml_collections.ConfigDict(dict(base, d_spectral_norm=True)),
                             (2,), 0)
  assert d.spectral_norm
  with pytest.raises(ValueError, match=r'config.model.d_spectral_norm=.yes. must be True'):
    models.build_models(ml_collections.ConfigDict(dict(base, d_spectral_norm='yes')), (2,), 0)
  with pytest.raises(ValueError, match=r"d_spectral_norm=True is available for the mlp and "
                                       r"dcgan.*'cgan_mlp'"):
    models.build_models(ml_collections.ConfigDict(dict(name='cgan_mlp',
                                                       d_spectral_norm=True)), (4,), 10)


def test_resume_from_a_checkpoint_is_bitwise_the_uninterrupted_run(tmp_path):
  # The power-iteration vectors are part of the state (d_batch_stats): a checkpoint
  # holds them, and a restored run continues exactly.
  from gan_jax import checkpointing  # pylint: disable=g-import-not-at-top
  d = mlp.MLPDiscriminator(widths=(8,), activation='relu', dropout=0.0, spectral_norm=True)
  spec = steps.GANSpec(
      generator=mlp.MLPGenerator(out_shape=(2,), widths=(8,), out_activation='linear'),
      discriminator=d, g_tx=optax.adam(1e-2), d_tx=optax.adam(1e-2),
      loss=losses.get_loss('hinge'), latent_dim=2)
  step = jax.jit(functools.partial(steps.train_step, spec=spec))
  batches = [{'x': jax.random.normal(jax.random.PRNGKey(10 + i), (8, 2))} for i in range(4)]
  template = steps.init_state(spec, jax.random.PRNGKey(0), (2,))
  state = template
  for i, b in enumerate(batches):
    state, _ = step(state, b)
    if i == 1:
      ckpt = checkpointing.Checkpointer(str(tmp_path / 'ckpt'))
      ckpt.save(2, state)
      ckpt.close()
  ckpt = checkpointing.Checkpointer(str(tmp_path / 'ckpt'))
  resumed, at = ckpt.restore(template)
  ckpt.close()
  assert at == 2
  for b in batches[2:]:
    resumed, _ = step(resumed, b)
  leaves = lambda s: jax.tree_util.tree_leaves(jax.device_get(s))
  assert all(np.array_equal(a, b) for a, b in zip(leaves(state), leaves(resumed)))
  assert 'dense_0_sn' in resumed.d_batch_stats
