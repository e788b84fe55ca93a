"""DCGAN-style convolutional players (Radford et al. 2016, arXiv:1511.06434) with
CGAN label conditioning (Mirza & Osindero 2014).

Generator: [z, one-hot y] -> Dense to an s x s x (w * 2^(n-1)) map -> n - 1
stride-2 4x4 ConvTranspose layers halving the width each time -> a last
stride-2 ConvTranspose to C channels -> tanh. BatchNorm + ReLU after every layer
but the last. The number of up-sampling stages n is the largest with
H / 2^n >= 4 (and W likewise) dividing exactly: 28x28 starts from 7x7 (n = 2),
32x32 from 4x4 (n = 3), 64x64 from 4x4 (n = 4).

Discriminator: the label as K constant one-hot channels concatenated to the
image, then n stride-2 4x4 convolutions doubling the width (w, 2w, 4w, ...),
LeakyReLU 0.2, BatchNorm on all but the first, then one logit. Its width `w`
is independent of G's, so "D = 1/4 of G" (Metz et al. 2016, stacked MNIST) is a
config value.

Weights are drawn from N(0, 0.02^2) as in the DCGAN paper; layers followed by
BatchNorm have no bias (BatchNorm's offset replaces it).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models import layers

Array = jax.Array

_INIT = nn.initializers.normal(0.02)


def num_stages(height: int, width: int) -> int:
  """Number of stride-2 stages between an s x s map (s >= 4) and H x W."""
  n = 0
  while (height % 2 ** (n + 1) == 0 and width % 2 ** (n + 1) == 0 and
         height // 2 ** (n + 1) >= 4 and width // 2 ** (n + 1) >= 4):
    n += 1
  if n == 0:
    raise ValueError(
        f'DCGAN image size {height}x{width} must be divisible by 2 with a quotient '
        '>= 4 (e.g. 28x28, 32x32, 64x64).')
  return n


def _batch_norm(train: bool, axis_name: str | None, name: str) -> nn.BatchNorm:
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                      axis_name=axis_name, name=name)


class DCGANGenerator(nn.Module):
  """z (B, latent_dim) [, labels (B,)] -> x (B, H, W, C).

  Attributes:
    out_shape: (H, W, C), e.g. (28, 28, 1), (28, 28, 3) (stacked MNIST), (32, 32, 3).
    base_width: channels of the last hidden layer; earlier layers double it.
    num_classes: 0 for an unconditional G.
    out_activation: 'tanh' ([-1, 1]), 'sigmoid' ([0, 1]) or 'linear'.
    bn_axis_name: device axis over which BatchNorm averages its statistics.
  """
  out_shape: tuple[int, int, int] = (28, 28, 1)
  base_width: int = 64
  num_classes: int = 0
  out_activation: str = 'tanh'
  bn_axis_name: str | None = None

  @nn.compact
  def __call__(self, z: Array, labels: Array | None = None, *, train: bool) -> Array:
    if len(self.out_shape) != 3:
      raise ValueError(f'DCGAN out_shape must be (H, W, C), got {self.out_shape}.')
    out_act = layers.get_out_activation(self.out_activation)
    height, width, channels = self.out_shape
    n = num_stages(height, width)
    h = z
    if self.num_classes > 0:
      h = jnp.concatenate(
          [h, layers.one_hot_labels(labels, self.num_classes, z.shape[0])], axis=-1)
    s_h, s_w, c = height // 2 ** n, width // 2 ** n, self.base_width * 2 ** (n - 1)
    h = nn.Dense(s_h * s_w * c, use_bias=False, kernel_init=_INIT, name='dense')(h)
    h = h.reshape(z.shape[0], s_h, s_w, c)
    h = nn.relu(_batch_norm(train, self.bn_axis_name, 'bn_dense')(h))
    for i in range(n - 1):
      c //= 2
      h = nn.ConvTranspose(c, (4, 4), strides=(2, 2), padding='SAME', use_bias=False,
                           kernel_init=_INIT, name=f'deconv_{i}')(h)
      h = nn.relu(_batch_norm(train, self.bn_axis_name, f'bn_{i}')(h))
    h = nn.ConvTranspose(channels, (4, 4), strides=(2, 2), padding='SAME',
                         kernel_init=_INIT, name='deconv_out')(h)
    return out_act(h)


class DCGANDiscriminator(nn.Module):
  """x (B, H, W, C) [, labels (B,)] -> logits (B // pack,).

  Attributes:
    base_width: channels of the first conv layer; each next layer doubles it.
    num_classes: 0 for an unconditional D.
    batch_norm: BatchNorm after every conv but the first (turn off for
      WGAN-GP critics, whose penalty is per example).
    minibatch: 'none', 'discrimination' (on the flattened features) or
      'stddev' (one more channel on the last feature map).
    pack: PacGAN degree; a pack's images are stacked along the channels.
    bn_axis_name: device axis over which BatchNorm averages its statistics.
    spectral_norm: every conv kernel (reshaped to (-1, out)) and the output
      layer's divided by its largest singular value (Miyato et al. 2018's SN-GAN
      D; `layers.spectral_norm`). Usually with batch_norm=False.
  """
  base_width: int = 64
  num_classes: int = 0
  batch_norm: bool = True
  minibatch: str = 'none'
  pack: int = 1
  bn_axis_name: str | None = None
  spectral_norm: bool = False

  @nn.compact
  def __call__(self, x: Array, labels: Array | None = None, *, train: bool) -> Array:
    if x.ndim != 4:
      raise ValueError(f'DCGANDiscriminator expects x of shape (B, H, W, C), got {x.shape}.')
    layers.check_minibatch(self.minibatch)
    batch, height, width, _ = x.shape
    n = num_stages(height, width)
    h = x
    if self.num_classes > 0:
      y = layers.one_hot_labels(labels, self.num_classes, batch)
      y = jnp.broadcast_to(y[:, None, None, :], (batch, height, width, self.num_classes))
      h = jnp.concatenate([h, y.astype(h.dtype)], axis=-1)
    h = layers.pack_inputs(h, self.pack, channels_last=True)
    for i in range(n):
      use_bn = self.batch_norm and i > 0
      conv = nn.Conv(self.base_width * 2 ** i, (4, 4), strides=(2, 2), padding='SAME',
                     use_bias=not use_bn, kernel_init=_INIT, name=f'conv_{i}')
      h = layers.spectral_norm(conv, self.spectral_norm, train=train)(h)
      if use_bn:
        h = _batch_norm(train, self.bn_axis_name, f'bn_{i}')(h)
      h = layers.leaky_relu(h)
    if self.minibatch == 'stddev':
      h = layers.MinibatchStddev(name='minibatch_stddev')(h)
    h = h.reshape(h.shape[0], -1)
    if self.minibatch == 'discrimination':
      h = layers.MinibatchDiscrimination(name='minibatch_discrimination')(h)
    out = nn.Dense(1, kernel_init=_INIT, name='dense_out')
    return layers.spectral_norm(out, self.spectral_norm, train=train)(h)[:, 0]


def build(cfg, data_shape: tuple[int, ...], num_classes: int, *, minibatch: str,
          pack: int, bn_axis_name: str | None) -> tuple[nn.Module, nn.Module]:
  """(G, D) from `config.model` (fields in gan_jax/models/__init__.py)."""
  if len(data_shape) != 3:
    raise ValueError(f"model.name='dcgan' needs image data (H, W, C), got {data_shape}.")
  base_width = int(cfg.get('base_width', 64))
  g = DCGANGenerator(
      out_shape=data_shape, base_width=base_width, num_classes=num_classes,
      out_activation=cfg.get('out_activation', 'tanh'), bn_axis_name=bn_axis_name)
  d = DCGANDiscriminator(
      base_width=int(cfg.get('d_base_width', base_width)), num_classes=num_classes,
      batch_norm=bool(cfg.get('batch_norm', True)), minibatch=minibatch, pack=pack,
      bn_axis_name=bn_axis_name,
      spectral_norm=layers.check_flag(cfg.get('d_spectral_norm', False),
                                      'model.d_spectral_norm'))
  return g, d
