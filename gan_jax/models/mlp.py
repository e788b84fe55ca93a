"""Fully connected GAN players: the image MLPs and the 2-D toy nets.

Defaults reproduce the dense Fashion-MNIST GAN (G 100 -> 64 -> 128 -> 256 -> 784
tanh; D 784 -> 256 -> 128 -> 64 -> 1, LeakyReLU 0.2, dropout 0.5 / 0.3 / 0.2).
The same classes with small widths, ReLU, no dropout and out_activation='linear'
are the 2-D mixture nets of Metz et al. 2016 ("Unrolled GANs"): G two hidden
layers of 128 ReLU, D one hidden layer of 128 ReLU.

Conditioning (Mirza & Osindero 2014): with num_classes > 0 the one-hot label is
concatenated to G's z and to D's flattened input.

The toy path is plain `nn.Dense` stacks with no reshapes on 2-D data: it is
vmapped over seeds and unrolled through D's optimizer, where per-op overhead,
not arithmetic, sets the speed.
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax import memory
from gan_jax.models import layers

Array = jax.Array


def _rates(dropout: float | Sequence[float], num_layers: int) -> tuple[float, ...]:
  """One dropout rate per hidden layer; a scalar applies to every layer."""
  if isinstance(dropout, (int, float)):
    return (float(dropout),) * num_layers
  rates = tuple(float(r) for r in dropout)
  if len(rates) != num_layers:
    raise ValueError(
        f'dropout needs one rate per hidden layer ({num_layers} for widths), '
        f'got {len(rates)}: {rates}; a single float applies to every layer.')
  return rates


class MLPGenerator(nn.Module):
  """z (B, latent_dim) [+ one-hot labels] -> Dense stack -> x (B, *out_shape).

  Attributes:
    out_shape: shape of one sample, e.g. (28, 28, 1) or (2,).
    widths: hidden layer widths.
    activation: hidden activation name (see `layers.ACTIVATIONS`).
    out_activation: 'tanh' ([-1, 1]), 'sigmoid' ([0, 1]) or 'linear'.
    num_classes: 0 for an unconditional G.
    batch_norm: BatchNorm after each hidden Dense (before the activation).
    bn_axis_name: device axis over which BatchNorm averages its statistics.
    weight_init, weight_init_scale: kernel initialiser (`layers.INITS`; config
      model.init / model.init_scale); biases start at 0.
  """
  out_shape: tuple[int, ...]
  widths: Sequence[int] = (64, 128, 256)
  activation: str = 'relu'
  out_activation: str = 'tanh'
  num_classes: int = 0
  batch_norm: bool = False
  bn_axis_name: str | None = None
  weight_init: str = 'lecun_normal'
  weight_init_scale: float = 1.0

  @nn.compact
  def __call__(self, z: Array, labels: Array | None = None, *, train: bool) -> Array:
    act = layers.get_activation(self.activation)
    out_act = layers.get_out_activation(self.out_activation)
    kernel_init = layers.get_kernel_init(self.weight_init, self.weight_init_scale)
    h = z
    if self.num_classes > 0:
      h = jnp.concatenate(
          [h, layers.one_hot_labels(labels, self.num_classes, z.shape[0])], axis=-1)
    for i, width in enumerate(self.widths):
      # BatchNorm's shift makes a bias redundant (PacGAN's G has none).
      h = nn.Dense(width, use_bias=not self.batch_norm, kernel_init=kernel_init,
                   name=f'dense_{i}')(h)
      if self.batch_norm:
        h = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                         axis_name=self.bn_axis_name, name=f'bn_{i}')(h)
      h = act(h)
    x = out_act(nn.Dense(math.prod(self.out_shape), kernel_init=kernel_init,
                         name='dense_out')(h))
    if len(self.out_shape) > 1:
      x = x.reshape(z.shape[0], *self.out_shape)
    return x


class MLPDiscriminator(nn.Module):
  """x (B, ...) [+ one-hot labels] -> Dense stack -> logits (B // pack,).

  Attributes:
    widths: hidden layer widths.
    activation: hidden activation name; 'leaky_relu' has slope 0.2.
    dropout: one rate per hidden layer (or one for all); 0 = no dropout. Uses
      the 'dropout' rng stream and is active only when train=True.
    num_classes: 0 for an unconditional D.
    minibatch: 'none', 'discrimination' (Salimans et al. 2016) or 'stddev'
      (Karras et al. 2018), applied to the last hidden features.
    pack: PacGAN degree m (Lin et al. 2018): m examples are judged jointly.
    maxout_pieces: k > 0 makes every hidden layer a maxout layer of k pieces
      (Goodfellow et al. 2013; PacGAN's D: 3 x 200 units, 5 pieces) in place of
      Dense + `activation`; 0 (default) = Dense + activation.
    weight_init, weight_init_scale: kernel initialiser (`layers.INITS`; config
      model.init / model.init_scale); biases start at 0.
    spectral_norm: every Dense / maxout kernel, the output layer's too, divided
      by its largest singular value (Miyato et al. 2018; `layers.spectral_norm`).
  """
  widths: Sequence[int] = (256, 128, 64)
  activation: str = 'leaky_relu'
  dropout: float | Sequence[float] = (0.5, 0.3, 0.2)
  num_classes: int = 0
  minibatch: str = 'none'
  pack: int = 1
  maxout_pieces: int = 0
  weight_init: str = 'lecun_normal'
  weight_init_scale: float = 1.0
  spectral_norm: bool = False

  @nn.compact
  def __call__(self, x: Array, labels: Array | None = None, *, train: bool) -> Array:
    act = layers.get_activation(self.activation)
    kernel_init = layers.get_kernel_init(self.weight_init, self.weight_init_scale)
    sn = functools.partial(layers.spectral_norm, enabled=self.spectral_norm, train=train)
    if isinstance(self.maxout_pieces, bool) or not isinstance(self.maxout_pieces, int) \
        or self.maxout_pieces < 0:
      raise ValueError(f'model.d_maxout_pieces={self.maxout_pieces!r} must be an '
                       'integer >= 0 (0 = Dense + d_activation).')
    rates = _rates(self.dropout, len(self.widths))
    mb_layer = layers.minibatch_layer(self.minibatch)
    batch = x.shape[0]
    h = x if x.ndim == 2 else x.reshape(batch, -1)
    if self.num_classes > 0:
      h = jnp.concatenate(
          [h, layers.one_hot_labels(labels, self.num_classes, batch)], axis=-1)
    h = layers.pack_inputs(h, self.pack)
    for i, (width, rate) in enumerate(zip(self.widths, rates)):
      if self.maxout_pieces:
        h = sn(layers.Maxout(width, self.maxout_pieces, kernel_init=kernel_init,
                             name=f'maxout_{i}'))(h)
      else:
        h = act(sn(nn.Dense(width, kernel_init=kernel_init, name=f'dense_{i}'))(h))
      if rate > 0:
        h = nn.Dropout(rate, deterministic=not train)(h)
    if mb_layer is not None:
      h = mb_layer(h)
    return sn(nn.Dense(1, kernel_init=kernel_init, name='dense_out'))(h)[:, 0]


def check_parameter_memory(g_widths, d_widths, *, latent_dim: int, data_shape,
                           num_classes: int, pack: int, maxout_pieces: int) -> None:
  """ValueError naming the fields when the two MLPs' parameters cannot fit in RAM.

  A lower bound: the kernels alone, G's latent_dim -> g_widths -> prod(data_shape)
  and D's (pack prod(data_shape) + classes) -> d_widths -> 1, each D kernel
  `maxout_pieces` times over, stored 4 times in float32 (parameters, gradients,
  Adam's two moments). Catches sizes off by orders of magnitude (a maxout of
  10^16 pieces) before XLA aborts the process on an impossible allocation.
  """
  ram = memory.ram_bytes()
  if ram is None:
    return
  data = math.prod(int(d) for d in data_shape)
  g = [int(latent_dim), *(int(w) for w in g_widths), data]
  d = [pack * data + num_classes, *(int(w) for w in d_widths)]
  pieces = max(1, int(maxout_pieces))
  count = sum(a * b for a, b in zip(g, g[1:])) + pieces * sum(
      a * b for a, b in zip(d, d[1:])) + d[-1]
  need = 16 * count
  if need > ram:
    raise ValueError(
        f'the MLP generator and discriminator have at least {count:.3g} parameters '
        f"({need / 2**30:.0f} GiB with gradients and Adam's moments), more than this "
        f"machine's {ram / 2**30:.0f} GiB of memory; lower config.model.g_widths, "
        'config.model.d_widths, config.model.d_maxout_pieces, config.model.pack or '
        'config.model.latent_dim.')


def build(cfg, data_shape: tuple[int, ...], num_classes: int, *, minibatch: str,
          pack: int, bn_axis_name: str | None) -> tuple[nn.Module, nn.Module]:
  """(G, D) from `config.model` (fields in gan_jax/models/__init__.py)."""
  maxout_pieces = cfg.get('d_maxout_pieces', 0)
  if isinstance(maxout_pieces, int) and not isinstance(maxout_pieces, bool) \
      and maxout_pieces >= 0:
    check_parameter_memory(layers.as_tuple(cfg.get('g_widths', (64, 128, 256))),
                           layers.as_tuple(cfg.get('d_widths', (256, 128, 64))),
                           latent_dim=int(cfg.get('latent_dim', 100)),
                           data_shape=data_shape, num_classes=num_classes, pack=pack,
                           maxout_pieces=maxout_pieces)
  init = cfg.get('init', 'lecun_normal')
  init_scale = float(cfg.get('init_scale', 1.0))
  g = MLPGenerator(
      out_shape=data_shape,
      widths=layers.as_tuple(cfg.get('g_widths', (64, 128, 256))),
      activation=cfg.get('g_activation', 'relu'),
      out_activation=cfg.get('out_activation', 'linear' if len(data_shape) == 1 else 'tanh'),
      num_classes=num_classes,
      batch_norm=bool(cfg.get('batch_norm', False)),
      bn_axis_name=bn_axis_name, weight_init=init, weight_init_scale=init_scale)
  d = MLPDiscriminator(
      widths=layers.as_tuple(cfg.get('d_widths', (256, 128, 64))),
      activation=cfg.get('d_activation', 'leaky_relu'),
      dropout=layers.as_tuple(cfg.get('d_dropout', (0.5, 0.3, 0.2))),
      num_classes=num_classes, minibatch=minibatch, pack=pack,
      maxout_pieces=int(cfg.get('d_maxout_pieces', 0)),
      weight_init=init, weight_init_scale=init_scale,
      spectral_norm=layers.check_flag(cfg.get('d_spectral_norm', False),
                                      'model.d_spectral_norm'))
  return g, d
