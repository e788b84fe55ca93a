"""Tests for gan_jax.models: shapes, hand-counted parameters, conditioning,
dropout / BatchNorm modes, minibatch layers and PacGAN packing.

Shapes and parameter counts go through `jax.eval_shape` (tracing, no compile);
the value tests use tiny widths and batch 4-6.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from gan_jax import models
from gan_jax.models import layers
from gan_jax.models.cgan_mlp import CGANMLPDiscriminator, CGANMLPGenerator
from gan_jax.models.dcgan import DCGANDiscriminator, DCGANGenerator
from gan_jax.models.mlp import MLPDiscriminator, MLPGenerator

KEY = jax.random.key(0)
B = 4
LATENT = 3
LABELS = jnp.array([0, 1, 2, 3], jnp.int32)
OTHER_LABELS = jnp.array([3, 2, 1, 0], jnp.int32)

# Tiny versions of each family, so the value tests compile few small ops.
TINY_G = {
    'mlp': lambda k: MLPGenerator(out_shape=(4, 4, 1), widths=(8,), num_classes=k),
    'cgan_mlp': lambda k: CGANMLPGenerator(out_shape=(4, 4, 1), num_classes=k, z_width=6,
                                           y_width=5, joint_width=7),
    'dcgan': lambda k: DCGANGenerator(out_shape=(16, 16, 1), base_width=4, num_classes=k),
}
TINY_D = {
    'mlp': lambda k, **kw: MLPDiscriminator(widths=(8,), dropout=0.0, num_classes=k, **kw),
    'cgan_mlp': lambda k, **kw: CGANMLPDiscriminator(
        num_classes=k, x_units=4, y_units=3, joint_units=5, dropout=0.0, **kw),
    'dcgan': lambda k, **kw: DCGANDiscriminator(base_width=4, num_classes=k, **kw),
}
TINY_X_SHAPE = {'mlp': (4, 4, 1), 'cgan_mlp': (4, 4, 1), 'dcgan': (16, 16, 1)}
FAMILIES = tuple(TINY_G)


def num_params(module: nn.Module, *args, **kwargs) -> int:
  variables = jax.eval_shape(
      lambda: module.init({'params': KEY, 'dropout': KEY}, *args, train=False, **kwargs))
  return sum(math.prod(p.shape) for p in jax.tree.leaves(variables['params']))


def out_shape(module: nn.Module, *args, **kwargs) -> tuple[int, ...]:
  out, _ = jax.eval_shape(lambda: module.init_with_output(
      {'params': KEY, 'dropout': KEY}, *args, train=False, **kwargs))
  return out.shape


def init_variables(module: nn.Module, *args, **kwargs):
  """Deterministic variables of the right structure, without jax.random.

  Shapes come from tracing `init`; values from numpy (kernels ~ N(0, 1/fan_in),
  biases ~ N(0, 0.1^2), BatchNorm scale 1 and fresh statistics). Compiling
  flax's random initialisers for every tiny shape would dominate the runtime.
  """
  rng = np.random.default_rng(0)
  shapes = jax.eval_shape(
      lambda: module.init({'params': KEY, 'dropout': KEY}, *args, train=False, **kwargs))

  def fill(path, leaf):
    name = jax.tree_util.keystr(path[-1:])
    if 'kernel' in name:
      value = rng.normal(size=leaf.shape) / math.sqrt(math.prod(leaf.shape[:-1]))
    elif 'scale' in name or 'var' in name:
      value = np.ones(leaf.shape)
    elif 'mean' in name:
      value = np.zeros(leaf.shape)
    else:
      value = 0.1 * rng.normal(size=leaf.shape)
    return jnp.asarray(value, leaf.dtype)

  return jax.tree_util.tree_map_with_path(fill, shapes)


def init_apply(module: nn.Module, *args, train: bool = False, rng=KEY, **kwargs):
  """Initialises `module` and applies it once; returns (output, variables)."""
  variables = init_variables(module, *args, **kwargs)
  out = module.apply(variables, *args, train=train, rngs={'dropout': rng},
                     mutable=['batch_stats'] if train else False, **kwargs)
  return (out[0] if train else out), variables


# ---------------------------------------------------------------------------
# Shapes and parameter counts.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize('num_classes', [0, 10])
@pytest.mark.parametrize('data_shape', [(28, 28, 1), (28, 28, 3), (32, 32, 1), (32, 32, 3)])
def test_dcgan_shapes(data_shape, num_classes):
  z = jnp.zeros((B, LATENT))
  g = DCGANGenerator(out_shape=data_shape, base_width=4, num_classes=num_classes)
  d = DCGANDiscriminator(base_width=2, num_classes=num_classes)
  assert out_shape(g, z, LABELS) == (B, *data_shape)
  assert out_shape(d, jnp.zeros((B, *data_shape)), LABELS) == (B,)


@pytest.mark.parametrize('num_classes', [0, 10])
def test_mlp_and_cgan_shapes(num_classes):
  z = jnp.zeros((B, LATENT))
  for g in (MLPGenerator(out_shape=(28, 28, 1), num_classes=num_classes),
            CGANMLPGenerator(out_shape=(28, 28, 1), num_classes=num_classes)):
    assert out_shape(g, z, LABELS) == (B, 28, 28, 1)
  for d in (MLPDiscriminator(num_classes=num_classes),
            CGANMLPDiscriminator(num_classes=num_classes)):
    assert out_shape(d, jnp.zeros((B, 28, 28, 1)), LABELS) == (B,)
  toy_g = MLPGenerator(out_shape=(2,), widths=(128, 128), out_activation='linear',
                       num_classes=num_classes)
  assert out_shape(toy_g, z, LABELS) == (B, 2)
  assert out_shape(MLPDiscriminator(widths=(128,), dropout=0.0, num_classes=num_classes),
                   jnp.zeros((B, 2)), LABELS) == (B,)


def test_dcgan_rejects_bad_image_sizes():
  with pytest.raises(ValueError, match='27x27'):
    out_shape(DCGANGenerator(out_shape=(27, 27, 1)), jnp.zeros((B, LATENT)))
  with pytest.raises(ValueError, match=r'\(H, W, C\)'):
    out_shape(DCGANGenerator(out_shape=(784,)), jnp.zeros((B, LATENT)))


def test_cgan_mlp_param_counts():
  # Mirza & Osindero 2014 on MNIST: 784 pixels, 10 classes, z of 100 dims.
  # G: z->200: 100*200+200 = 20,200; y->1000: 10*1000+1000 = 11,000;
  #    [200,1000]->1200: 1200*1200+1200 = 1,441,200; 1200->784: 1200*784+784 = 941,584.
  #    Total 20,200 + 11,000 + 1,441,200 + 941,584 = 2,413,984.
  # D: maxout x 240x5: 784*1200+1200 = 942,000; maxout y 50x5: 10*250+250 = 2,750;
  #    joint maxout 240x4 on 240+50: 290*960+960 = 279,360; logit: 240+1 = 241.
  #    Total 942,000 + 2,750 + 279,360 + 241 = 1,224,351.
  z = jnp.zeros((B, 100))
  assert num_params(CGANMLPGenerator(), z, LABELS) == 2_413_984
  assert num_params(CGANMLPDiscriminator(), jnp.zeros((B, 28, 28, 1)), LABELS) == 1_224_351
  # Unconditional: G loses the y branch (11,000) and 1000*1200 joint weights:
  # 2,413,984 - 11,000 - 1,200,000 = 1,202,984. D loses maxout y (2,750) and
  # 50*960 joint weights: 1,224,351 - 2,750 - 48,000 = 1,173,601.
  assert num_params(CGANMLPGenerator(num_classes=0), z) == 1_202_984
  assert num_params(CGANMLPDiscriminator(num_classes=0), jnp.zeros((B, 784))) == 1_173_601


def test_mlp_param_counts():
  # Dense Fashion-MNIST GAN (defaults), z of 100 dims.
  # G: 100*64+64 = 6,464; 64*128+128 = 8,320; 128*256+256 = 33,024;
  #    256*784+784 = 201,488. Total 249,296.
  # D: 784*256+256 = 200,960; 256*128+128 = 32,896; 128*64+64 = 8,256; 64+1 = 65.
  #    Total 242,177.
  assert num_params(MLPGenerator(out_shape=(28, 28, 1)), jnp.zeros((B, 100))) == 249_296
  assert num_params(MLPDiscriminator(), jnp.zeros((B, 28, 28, 1))) == 242_177
  # Metz et al. 2016 ring nets, z of 256 dims.
  # G: 256*128+128 = 32,896; 128*128+128 = 16,512; 128*2+2 = 258. Total 49,666.
  # D: 2*128+128 = 384; 128+1 = 129. Total 513.
  toy_g = MLPGenerator(out_shape=(2,), widths=(128, 128), out_activation='linear')
  assert num_params(toy_g, jnp.zeros((B, 256))) == 49_666
  assert num_params(MLPDiscriminator(widths=(128,), activation='relu', dropout=0.0),
                    jnp.zeros((B, 2))) == 513


def test_dcgan_param_counts():
  # base_width 8, z of 4 dims, 28x28x1 (two stride-2 stages, from 7x7x16).
  # G: dense 4 -> 7*7*16 = 784 without bias: 3,136; BN(16): 32; deconv 16->8 4x4
  #    without bias: 16*16*8 = 2,048; BN(8): 16; deconv 8->1 4x4: 16*8+1 = 129.
  #    Total 3,136 + 32 + 2,048 + 16 + 129 = 5,361.
  # D: conv 1->8 4x4 (bias, no BN): 16*8+8 = 136; conv 8->16 without bias: 16*8*16
  #    = 2,048; BN(16): 32; logit on 7*7*16 = 784 features: 785.
  #    Total 136 + 2,048 + 32 + 785 = 3,001.
  assert num_params(DCGANGenerator(base_width=8), jnp.zeros((B, 4))) == 5_361
  assert num_params(DCGANDiscriminator(base_width=8), jnp.zeros((B, 28, 28, 1))) == 3_001
  # Conditional D on 10 classes: 10 more input channels for conv_0: +16*10*8 = 1,280.
  assert num_params(DCGANDiscriminator(base_width=8, num_classes=10),
                    jnp.zeros((B, 28, 28, 1)), LABELS) == 4_281


# ---------------------------------------------------------------------------
# Conditioning.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize('family', FAMILIES)
def test_labels_change_the_generator_output(family):
  g = TINY_G[family](10)
  z = jax.random.normal(KEY, (B, LATENT))
  x, variables = init_apply(g, z, LABELS)
  x_other = g.apply(variables, z, OTHER_LABELS, train=False)
  assert x.shape == (B, *g.out_shape)
  per_example_change = np.abs(np.asarray(x - x_other)).reshape(B, -1).max(axis=1)
  assert np.all(per_example_change > 1e-6)


@pytest.mark.parametrize('family', FAMILIES)
def test_labels_change_the_discriminator_logits(family):
  d = TINY_D[family](10)
  x = jax.random.uniform(KEY, (B, *TINY_X_SHAPE[family]))
  logits, variables = init_apply(d, x, LABELS)
  logits_other = d.apply(variables, x, OTHER_LABELS, train=False)
  assert logits.shape == (B,) and logits.dtype == jnp.float32
  assert np.all(np.abs(np.asarray(logits - logits_other)) > 1e-7)


@pytest.mark.parametrize('family', FAMILIES)
def test_unconditional_models_ignore_labels(family):
  g, d = TINY_G[family](0), TINY_D[family](0)
  z = jax.random.normal(KEY, (B, LATENT))
  x, g_vars = init_apply(g, z)
  np.testing.assert_array_equal(g.apply(g_vars, z, LABELS, train=False), x)
  logits, d_vars = init_apply(d, x)
  np.testing.assert_array_equal(d.apply(d_vars, x, LABELS, train=False), logits)


@pytest.mark.parametrize('family', FAMILIES)
def test_conditional_models_require_labels(family):
  z = jnp.zeros((B, LATENT))
  with pytest.raises(ValueError, match='labels is None'):
    out_shape(TINY_G[family](10), z)
  with pytest.raises(ValueError, match='labels is None'):
    out_shape(TINY_D[family](10), jnp.zeros((B, *TINY_X_SHAPE[family])))
  with pytest.raises(ValueError, match=r'labels must have shape \(4,\)'):
    out_shape(TINY_G[family](10), z, LABELS[:2])


# ---------------------------------------------------------------------------
# Dropout and BatchNorm modes.
# ---------------------------------------------------------------------------


def test_dropout_only_in_train_mode():
  d = MLPDiscriminator(widths=(16,), dropout=0.5)
  x = jax.random.normal(KEY, (B, 5))
  variables = init_variables(d, x)
  eval_logits = d.apply(variables, x, train=False)  # needs no 'dropout' rng
  key_a, key_b = jax.random.split(jax.random.key(1))
  train_a = d.apply(variables, x, train=True, rngs={'dropout': key_a})
  train_b = d.apply(variables, x, train=True, rngs={'dropout': key_b})
  assert not np.allclose(train_a, eval_logits)
  assert not np.allclose(train_a, train_b)
  np.testing.assert_array_equal(
      d.apply(variables, x, train=True, rngs={'dropout': key_a}), train_a)
  # Rate 0 builds no dropout layer: train and eval agree.
  d0 = MLPDiscriminator(widths=(16,), dropout=0.0)
  np.testing.assert_allclose(d0.apply(variables, x, train=True),
                             d0.apply(variables, x, train=False), rtol=1e-6)


def test_cgan_generator_dropout_only_in_train_mode():
  g = TINY_G['cgan_mlp'](10)
  z = jax.random.normal(KEY, (B, LATENT))
  variables = init_variables(g, z, LABELS)
  eval_x = g.apply(variables, z, LABELS, train=False)
  train_x = g.apply(variables, z, LABELS, train=True, rngs={'dropout': jax.random.key(1)})
  assert not np.allclose(train_x, eval_x)


def test_dropout_rates_must_match_widths():
  with pytest.raises(ValueError, match='one rate per hidden layer'):
    out_shape(MLPDiscriminator(widths=(8, 8), dropout=(0.5,)), jnp.zeros((B, 2)))


def test_pacgan_net_param_counts():
  # PacGAN's 2-D G: z 2 -> 4 x 400 (Dense without bias, BatchNorm scale + bias) -> 2.
  #   2*400 + 3 * 400*400 = 480,800 kernels; 4 * 800 BatchNorm; 400*2 + 2 = 802 out.
  #   Total 484,802.
  g = MLPGenerator(out_shape=(2,), widths=(400,) * 4, batch_norm=True,
                   out_activation='linear')
  assert num_params(g, jnp.zeros((B, 2))) == 484_802
  # D: 3 maxout layers of 200 units x 5 pieces on the packed input (2 m values):
  #   (2m*1000 + 1000) + 2 * (200*1000 + 1000) + (200 + 1).
  for m, expected in ((1, 405_201), (2, 407_201), (4, 411_201)):
    d = MLPDiscriminator(widths=(200,) * 3, dropout=0.0, maxout_pieces=5, pack=m)
    assert num_params(d, jnp.zeros((2 * m, 2))) == expected


def test_maxout_discriminator_is_the_max_over_pieces():
  d = MLPDiscriminator(widths=(3,), dropout=0.0, maxout_pieces=2)
  x = jnp.array([[1.0, -2.0], [0.5, 0.25]])
  variables = init_variables(d, x)
  p = variables['params']
  h = np.asarray(x) @ np.asarray(p['maxout_0']['dense']['kernel']) + np.asarray(
      p['maxout_0']['dense']['bias'])
  h = h.reshape(2, 3, 2).max(axis=-1)  # unit i takes pieces 2i and 2i + 1
  expected = h @ np.asarray(p['dense_out']['kernel'])[:, 0] + np.asarray(
      p['dense_out']['bias'])[0]
  np.testing.assert_allclose(d.apply(variables, x, train=False), expected, rtol=1e-5)


def test_kernel_initialisers():
  z = jnp.zeros((B, 400))
  g = MLPGenerator(out_shape=(2,), widths=(400,), out_activation='linear',
                   weight_init='normal', weight_init_scale=0.02)
  params = g.init({'params': KEY}, z, train=False)['params']
  kernel = np.asarray(params['dense_0']['kernel'])
  # 160,000 draws of N(0, 0.02^2): the sample std is within 1 % of 0.02.
  np.testing.assert_allclose(kernel.std(), 0.02, rtol=0.01)
  assert np.all(np.asarray(params['dense_0']['bias']) == 0)
  # Orthogonal with gain 1.4 (Metz et al.'s demo): W^T W = 1.96 I for a square W.
  d = MLPDiscriminator(widths=(16, 16), activation='tanh', dropout=0.0,
                       weight_init='orthogonal', weight_init_scale=1.4)
  w = np.asarray(d.init({'params': KEY}, jnp.zeros((B, 2)), train=False)
                 ['params']['dense_1']['kernel'])
  np.testing.assert_allclose(w.T @ w, 1.96 * np.eye(16), atol=1e-5)
  with pytest.raises(ValueError, match="Unknown model.init 'xavier'; valid"):
    MLPGenerator(out_shape=(2,), weight_init='xavier').init({'params': KEY}, z,
                                                            train=False)
  with pytest.raises(ValueError, match='model.init_scale=0.0 must be'):
    MLPGenerator(out_shape=(2,), weight_init_scale=0.0).init({'params': KEY}, z,
                                                             train=False)


def test_build_models_reads_the_protocol_fields():
  g, d = models.build_models(dict(name='mlp', g_widths=(400,) * 4, batch_norm=True,
                                  d_widths=(200,) * 3, d_maxout_pieces=5, d_dropout=0.0,
                                  init='normal', init_scale=0.02), (2,), 0)
  assert (g.batch_norm, g.weight_init, g.weight_init_scale) == (True, 'normal', 0.02)
  assert (d.maxout_pieces, d.weight_init, d.weight_init_scale) == (5, 'normal', 0.02)
  with pytest.raises(ValueError, match='model.d_maxout_pieces=-1 must be'):
    _, d = models.build_models(dict(name='mlp', d_maxout_pieces=-1), (2,), 0)
    d.init({'params': KEY}, jnp.zeros((B, 2)), train=False)


def test_batch_norm_running_stats_closed_form():
  # One train step from the initial stats (mean 0, var 1) with momentum 0.9:
  #   mean <- 0.1 * mean_b(h),  var <- 0.9 + 0.1 * var_b(h)  (biased), h = z W.
  g = MLPGenerator(out_shape=(2,), widths=(3,), batch_norm=True, out_activation='linear')
  z = jnp.array([[1.0, 0.0], [0.0, 2.0], [-1.0, 1.0], [3.0, -2.0]])
  variables = init_variables(g, z)
  _, updates = g.apply(variables, z, train=True, mutable=['batch_stats'])
  h = np.asarray(z) @ np.asarray(variables['params']['dense_0']['kernel'])
  stats = updates['batch_stats']['bn_0']
  np.testing.assert_allclose(stats['mean'], 0.1 * h.mean(0), rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(stats['var'], 0.9 + 0.1 * h.var(0), rtol=1e-5)
  # In eval mode the stored statistics are used: x = relu(BN(h)) W_out + b_out with
  # BN(h) = scale (h - mean) / sqrt(var + 1e-5) + bias.
  out = g.apply({**variables, **updates}, z, train=False)
  bn = variables['params']['bn_0']
  normed = (np.asarray(bn['scale']) * (h - np.asarray(stats['mean']))
            / np.sqrt(np.asarray(stats['var']) + 1e-5) + np.asarray(bn['bias']))
  dense_out = variables['params']['dense_out']
  expected = np.maximum(normed, 0) @ np.asarray(dense_out['kernel']) + np.asarray(
      dense_out['bias'])
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_batch_norm_averages_stats_over_the_device_axis():
  # Two "devices" (a vmapped axis) of two examples each: with bn_axis_name the
  # running mean is that of all four examples on both devices.
  g = MLPGenerator(out_shape=(2,), widths=(3,), batch_norm=True, out_activation='linear',
                   bn_axis_name='devices')
  z = jnp.array([[1.0, 0.0], [0.0, 2.0], [-1.0, 1.0], [3.0, -2.0]])
  variables = init_variables(g, z)
  step = jax.vmap(lambda zz: g.apply(variables, zz, train=True, mutable=['batch_stats'])[1],
                  axis_name='devices')
  mean = step(z.reshape(2, 2, 2))['batch_stats']['bn_0']['mean']
  h = np.asarray(z) @ np.asarray(variables['params']['dense_0']['kernel'])
  np.testing.assert_allclose(mean, np.stack([0.1 * h.mean(0)] * 2), rtol=1e-5, atol=1e-7)


def test_dcgan_batch_norm_updates_in_train_mode():
  g, d = TINY_G['dcgan'](0), TINY_D['dcgan'](0)
  z = jax.random.normal(KEY, (B, LATENT))
  g_vars = init_variables(g, z)
  x, g_updates = g.apply(g_vars, z, train=True, mutable=['batch_stats'])
  d_vars = init_variables(d, x)
  _, d_updates = d.apply(d_vars, x, train=True, mutable=['batch_stats'])
  for before, after in ((g_vars, g_updates), (d_vars, d_updates)):
    changed = jax.tree.map(lambda a, b: bool(np.any(a != b)),
                           before['batch_stats'], after['batch_stats'])
    assert all(jax.tree.leaves(changed))


# ---------------------------------------------------------------------------
# Layers.
# ---------------------------------------------------------------------------


def test_maxout_closed_form():
  # features=1, pieces=2, kernel [[1, -1]], no bias: max(x, -x) = |x|.
  params = {'params': {'dense': {'kernel': jnp.array([[1.0, -1.0]]),
                                 'bias': jnp.zeros(2)}}}
  out = layers.Maxout(1, 2).apply(params, jnp.array([[-2.0], [3.0], [0.5]]))
  np.testing.assert_allclose(out, [[2.0], [3.0], [0.5]])


def test_minibatch_discrimination_closed_form():
  # A = B = C = 1 and T = 1: M_i = x_i, o_i = sum_{j != i} exp(-|x_i - x_j|).
  x = jnp.array([[0.0], [1.0], [3.0]])
  layer = layers.MinibatchDiscrimination(num_kernels=1, kernel_dim=1)
  out = layer.apply({'params': {'kernel': jnp.ones((1, 1))}}, x)
  e = np.exp
  expected_o = [e(-1) + e(-3), e(-1) + e(-2), e(-3) + e(-2)]
  np.testing.assert_allclose(out, np.stack([[0.0, 1.0, 3.0], expected_o], axis=1), rtol=1e-6)


def test_minibatch_discrimination_sees_the_batch():
  layer = layers.MinibatchDiscrimination(num_kernels=3, kernel_dim=2)
  diverse = jax.random.normal(KEY, (B, 5))
  params = {'params': {'kernel': jnp.asarray(
      np.random.default_rng(0).normal(size=(5, 6)), jnp.float32)}}
  # Identical examples: every c_b = exp(0) = 1, so o_b = N - 1 for every b.
  same = layer.apply(params, jnp.tile(diverse[:1], (B, 1)))
  np.testing.assert_allclose(same[:, 5:], np.full((B, 3), B - 1.0))
  out = layer.apply(params, diverse)
  assert np.all(np.asarray(out[:, 5:]) < B - 1.0)
  np.testing.assert_array_equal(out[:, :5], diverse)  # features pass through
  # Example 0's minibatch features change when only example 3 changes.
  moved = layer.apply(params, diverse.at[3].add(1.0))
  np.testing.assert_array_equal(moved[0, :5], out[0, :5])
  assert np.all(np.abs(np.asarray(moved[0, 5:] - out[0, 5:])) > 1e-6)


def test_minibatch_stddev_closed_form():
  layer = layers.MinibatchStddev(eps=0.0)
  # Two examples 0 and 2: population std 1.
  np.testing.assert_allclose(layer.apply({}, jnp.array([[0.0], [2.0]])),
                             [[0.0, 1.0], [2.0, 1.0]])
  # Identical examples: 0 with eps=0, sqrt(eps) with the default eps=1e-8.
  same = jnp.ones((B, 2, 2, 3))
  out = layer.apply({}, same)
  assert out.shape == (B, 2, 2, 4)
  np.testing.assert_array_equal(out[..., 3], 0.0)
  np.testing.assert_allclose(layers.MinibatchStddev().apply({}, same)[..., 3], 1e-4,
                             rtol=1e-5)
  # Groups of 2 are strided: {x0, x2} = {0, 2} (std 1), {x1, x3} = {10, 10} (std 0).
  grouped = layers.MinibatchStddev(group_size=2, eps=0.0).apply(
      {}, jnp.array([[0.0], [10.0], [2.0], [10.0]]))
  np.testing.assert_allclose(grouped[:, 1], [1.0, 0.0, 1.0, 0.0])
  with pytest.raises(ValueError, match='group_size=3'):
    layers.MinibatchStddev(group_size=3).apply({}, jnp.zeros((B, 2)))


@pytest.mark.parametrize('minibatch, extra', [('discrimination', 50), ('stddev', 1)])
@pytest.mark.parametrize('family, features', [('mlp', 8), ('cgan_mlp', 5), ('dcgan', 128)])
def test_discriminators_with_minibatch_layers(family, features, minibatch, extra):
  # The logit layer sees D's last features plus the minibatch features: 50
  # kernels for discrimination; one feature, or for dcgan one 4x4 channel
  # (16 values next to 4*4*8 = 128), for stddev.
  if family == 'dcgan' and minibatch == 'stddev':
    extra = 16
  d = TINY_D[family](0, minibatch=minibatch)
  x = jnp.zeros((B, *TINY_X_SHAPE[family]))
  assert out_shape(d, x) == (B,)
  variables = jax.eval_shape(lambda: d.init(KEY, x, train=False))
  assert variables['params']['dense_out']['kernel'].shape == (features + extra, 1)


def test_pack_inputs_layout():
  x = jnp.arange(12.0).reshape(6, 2)
  np.testing.assert_array_equal(layers.pack_inputs(x, 2),
                                [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]])
  img = jnp.arange(8.0).reshape(4, 1, 1, 2)  # example k has channels (2k, 2k + 1)
  packed = layers.pack_inputs(img, 2, channels_last=True)
  assert packed.shape == (2, 1, 1, 4)
  np.testing.assert_array_equal(packed[:, 0, 0], [[0, 1, 2, 3], [4, 5, 6, 7]])
  with pytest.raises(ValueError, match='pack=4 does not divide the batch size 6'):
    layers.pack_inputs(x, 4)


@pytest.mark.parametrize('family', FAMILIES)
def test_packed_discriminators(family):
  x = jnp.zeros((6, *TINY_X_SHAPE[family]))
  labels = jnp.arange(6)
  assert out_shape(TINY_D[family](10, pack=2), x, labels) == (3,)
  assert out_shape(TINY_D[family](0, pack=3), x) == (2,)
  with pytest.raises(ValueError, match='pack=4'):
    out_shape(TINY_D[family](0, pack=4), x)


def test_bad_activation_names():
  with pytest.raises(ValueError, match=r"out_activation 'softmax'.*'tanh'"):
    out_shape(MLPGenerator(out_shape=(2,), out_activation='softmax'), jnp.zeros((B, 2)))
  with pytest.raises(ValueError, match=r"activation 'relu6'.*'leaky_relu'"):
    out_shape(MLPDiscriminator(activation='relu6'), jnp.zeros((B, 2)))
  with pytest.raises(ValueError, match=r"minibatch 'mbd'.*'stddev'"):
    out_shape(MLPDiscriminator(minibatch='mbd'), jnp.zeros((B, 2)))


# ---------------------------------------------------------------------------
# Registry.
# ---------------------------------------------------------------------------


def _config(**fields) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(fields)


def test_build_models_names_and_defaults():
  g, d = models.build_models(_config(name='mlp'), (2,), num_classes=0)
  assert isinstance(g, MLPGenerator) and isinstance(d, MLPDiscriminator)
  assert g.out_activation == 'linear' and g.num_classes == 0  # 2-D data
  g, d = models.build_models(_config(name='cgan_mlp'), (28, 28, 1), num_classes=10)
  assert isinstance(g, CGANMLPGenerator) and isinstance(d, CGANMLPDiscriminator)
  assert g.num_classes == d.num_classes == 10  # conditional by default
  g, d = models.build_models(
      _config(name='dcgan', conditional=True, base_width=32, d_base_width=8, pack=2),
      (28, 28, 3), num_classes=10)
  assert isinstance(g, DCGANGenerator) and isinstance(d, DCGANDiscriminator)
  assert (g.base_width, d.base_width, d.pack, g.num_classes) == (32, 8, 2, 10)
  g, d = models.build_models(_config(name='dcgan'), (28, 28, 1), num_classes=10)
  assert g.num_classes == d.num_classes == 0  # unconditional unless asked


def test_build_models_makes_hashable_modules_from_lists():
  g, d = models.build_models(
      _config(name='mlp', g_widths=[128, 128], d_widths=[128], d_dropout=[0.0]),
      (2,), num_classes=0)
  assert g.widths == (128, 128) and d.dropout == (0.0,)
  hash(g), hash(d)  # usable as static jit arguments


def test_build_models_errors():
  with pytest.raises(ValueError, match=r"'gan'.*\['mlp', 'cgan_mlp', 'dcgan'\]"):
    models.build_models(_config(name='gan'), (2,), num_classes=0)
  with pytest.raises(ValueError, match='num_classes=0'):
    models.build_models(_config(name='mlp', conditional=True), (2,), num_classes=0)
  with pytest.raises(ValueError, match='minibatch'):
    models.build_models(_config(name='mlp', minibatch='yes'), (2,), num_classes=0)
  with pytest.raises(ValueError, match=r'\(H, W, C\)'):
    models.build_models(_config(name='dcgan'), (2,), num_classes=0)
