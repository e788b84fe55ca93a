"""The conditional GAN of Mirza & Osindero 2014 ("Conditional Generative
Adversarial Nets", arXiv:1411.1784, section 4.1, MNIST).

Generator: z -> 200 ReLU and one-hot y -> 1000 ReLU, concatenated, -> 1200 ReLU
-> prod(out_shape) sigmoid.
Discriminator: x -> maxout 240 units x 5 pieces and y -> maxout 50 x 5,
concatenated, -> joint maxout 240 x 4 -> one logit.

"Dropout with probability of 0.5 was applied to both the generator and
discriminator" -- the paper does not say where. Our choice, following the Keras
reproduction in the project's seed notes: G drops the concatenated [200, 1000]
representation (the input of the 1200 layer, where the two branches meet);
D drops the joint maxout features (the input of the logit). Both are the widest
layers downstream of the label merge, so dropout regularises the joint code
rather than either branch alone.

With num_classes=0 the label branches are dropped: G is z -> 200 -> 1200 -> x,
D is x -> maxout 240x5 -> maxout 240x4 -> logit.

Parameter counts for 28x28x1 images, 10 classes, latent_dim 100 are in
tests/test_models.py (G 2,413,984; D 1,224,351).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models import layers

Array = jax.Array


class CGANMLPGenerator(nn.Module):
  """z (B, latent_dim), labels (B,) -> x (B, *out_shape) in [0, 1]."""
  out_shape: tuple[int, ...] = (28, 28, 1)
  num_classes: int = 10
  z_width: int = 200
  y_width: int = 1000
  joint_width: int = 1200
  dropout: float = 0.5
  out_activation: str = 'sigmoid'

  @nn.compact
  def __call__(self, z: Array, labels: Array | None = None, *, train: bool) -> Array:
    out_act = layers.get_out_activation(self.out_activation)
    h = nn.relu(nn.Dense(self.z_width, name='dense_z')(z))
    if self.num_classes > 0:
      y = layers.one_hot_labels(labels, self.num_classes, z.shape[0])
      hy = nn.relu(nn.Dense(self.y_width, name='dense_y')(y))
      h = jnp.concatenate([h, hy], axis=-1)
    if self.dropout > 0:
      h = nn.Dropout(self.dropout, deterministic=not train)(h)
    h = nn.relu(nn.Dense(self.joint_width, name='dense_joint')(h))
    x = out_act(nn.Dense(math.prod(self.out_shape), name='dense_out')(h))
    return x.reshape(z.shape[0], *self.out_shape)


class CGANMLPDiscriminator(nn.Module):
  """x (B, ...), labels (B,) -> logits (B // pack,).

  `minibatch` and `pack` work as in `MLPDiscriminator` (minibatch features on
  the joint maxout output; packing concatenates the flattened images of a pack
  and, separately, their one-hot labels).
  """
  num_classes: int = 10
  x_units: int = 240
  x_pieces: int = 5
  y_units: int = 50
  y_pieces: int = 5
  joint_units: int = 240
  joint_pieces: int = 4
  dropout: float = 0.5
  minibatch: str = 'none'
  pack: int = 1

  @nn.compact
  def __call__(self, x: Array, labels: Array | None = None, *, train: bool) -> Array:
    mb_layer = layers.minibatch_layer(self.minibatch)
    batch = x.shape[0]
    hx = layers.pack_inputs(x.reshape(batch, -1), self.pack)
    h = layers.Maxout(self.x_units, self.x_pieces, name='maxout_x')(hx)
    if self.num_classes > 0:
      y = layers.pack_inputs(
          layers.one_hot_labels(labels, self.num_classes, batch), self.pack)
      hy = layers.Maxout(self.y_units, self.y_pieces, name='maxout_y')(y)
      h = jnp.concatenate([h, hy], axis=-1)
    h = layers.Maxout(self.joint_units, self.joint_pieces, name='maxout_joint')(h)
    if self.dropout > 0:
      h = nn.Dropout(self.dropout, deterministic=not train)(h)
    if mb_layer is not None:
      h = mb_layer(h)
    return nn.Dense(1, name='dense_out')(h)[:, 0]


def build(cfg, data_shape: tuple[int, ...], num_classes: int, *, minibatch: str,
          pack: int, bn_axis_name: str | None) -> tuple[nn.Module, nn.Module]:
  """(G, D) from `config.model` (fields in gan_jax/models/__init__.py)."""
  del bn_axis_name  # no BatchNorm
  g = CGANMLPGenerator(
      out_shape=data_shape, num_classes=num_classes,
      dropout=float(cfg.get('g_dropout', 0.5)),
      out_activation=cfg.get('out_activation',
                             'linear' if len(data_shape) == 1 else 'sigmoid'))
  d = CGANMLPDiscriminator(
      num_classes=num_classes, dropout=float(cfg.get('d_dropout', 0.5)),
      minibatch=minibatch, pack=pack)
  return g, d
