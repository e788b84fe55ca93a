"""GAN models: pure flax.linen generator / discriminator pairs.

Every model follows one interface, which the train step relies on:

    G(z: (B, latent_dim) float32, labels: (B,) int32 | None = None, *, train: bool)
        -> x: (B, *data_shape)
    D(x: (B, *data_shape), labels: (B,) int32 | None = None, *, train: bool)
        -> logits: (B // pack,) float32

* Conditioning is the attribute `num_classes` (0 = unconditional). A
  conditional model one-hot encodes `labels` itself and raises ValueError when
  they are missing; an unconditional model ignores them.
* Dropout draws from the rng stream 'dropout' and is active only when
  train=True. BatchNorm keeps its statistics in the collection 'batch_stats'
  (apply with `mutable=['batch_stats']` when train=True) and averages them over
  the device axis `bn_axis_name` under pmap / shard_map.
* D's statistics over the batch (BatchNorm, minibatch discrimination / stddev)
  see whatever batch D is given, so real and fake should go through D in
  separate calls when any of them is on; PacGAN packing likewise assumes a
  pack is all real or all fake.
* G infers latent_dim from z; it lives in config.model.latent_dim.

`build_models(model_config, data_shape, num_classes) -> (G, D)` reads these
fields of `config.model` (all but `name` optional):

    name           'mlp' | 'cgan_mlp' | 'dcgan'.
    conditional    condition both players on the labels (default False, but
                   True for 'cgan_mlp'); needs num_classes > 0.
    out_activation G's output: 'tanh' ([-1, 1]), 'sigmoid' ([0, 1]) or 'linear'.
                   Default 'linear' for 1-D data (2-D mixtures), 'sigmoid' for
                   'cgan_mlp', 'tanh' otherwise. Must match the data scaling.
    minibatch      D's minibatch layer: 'none' (default), 'discrimination'
                   (Salimans et al. 2016) or 'stddev' (Karras et al. 2018).
    pack           PacGAN degree m (Lin et al. 2018), default 1; the batch size
                   must be divisible by it. D returns B // m logits.
    d_spectral_norm  'mlp' (Dense and maxout) and 'dcgan' D: spectral
                   normalisation of every kernel (Miyato et al. 2018), one power
                   iteration per call, u in 'batch_stats'; default False.
  'mlp' (MLPGenerator / MLPDiscriminator):
    g_widths       G's hidden widths, default (64, 128, 256).
    d_widths       D's hidden widths, default (256, 128, 64).
    g_activation   default 'relu'.
    d_activation   default 'leaky_relu' (slope 0.2).
    d_dropout      one rate per D hidden layer or one for all, default
                   (0.5, 0.3, 0.2).
    batch_norm     BatchNorm in G's hidden layers, default False.
    d_maxout_pieces  > 0: D's hidden layers are maxout layers of that many
                   pieces (PacGAN: 5), default 0 (Dense + d_activation).
    init           kernel initialiser of both players: 'lecun_normal'
                   (default), 'normal' (std init_scale; PacGAN 0.02) or
                   'orthogonal' (gain init_scale; Metz et al.'s demo 1.4).
    init_scale     default 1.0.
  'cgan_mlp' (CGANMLPGenerator / CGANMLPDiscriminator, Mirza & Osindero 2014):
    g_dropout      default 0.5.
    d_dropout      default 0.5.
  'dcgan' (DCGANGenerator / DCGANDiscriminator):
    base_width     G's width, default 64.
    d_base_width   D's width, default base_width (e.g. base_width // 4 for
                   the Metz et al. "D = 1/4 G" stacked-MNIST setting).
    batch_norm     BatchNorm in D, default True (G always has it).

Example (the 2-D ring nets of Metz et al. 2016):

    model = ml_collections.ConfigDict(dict(
        name='mlp', g_widths=(128, 128), d_widths=(128,), d_activation='relu',
        d_dropout=0.0))
    G, D = build_models(model, data_shape=(2,), num_classes=0)
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn

from gan_jax.models import cgan_mlp
from gan_jax.models import dcgan
from gan_jax.models import layers
from gan_jax.models import mlp
from gan_jax.models.cgan_mlp import CGANMLPDiscriminator, CGANMLPGenerator
from gan_jax.models.dcgan import DCGANDiscriminator, DCGANGenerator
from gan_jax.models.layers import (Maxout, MinibatchDiscrimination, MinibatchStddev,
                                   pack_inputs)
from gan_jax.models.mlp import MLPDiscriminator, MLPGenerator

# A model is a module with `build(cfg, data_shape, num_classes, *, minibatch, pack,
# bn_axis_name) -> (G, D)`; adding one is a module plus one entry here.
MODELS = {'mlp': mlp, 'cgan_mlp': cgan_mlp, 'dcgan': dcgan}
MODEL_NAMES = tuple(MODELS)
SPECTRAL_NORM_MODELS = ('mlp', 'dcgan')  # D's with config.model.d_spectral_norm.

__all__ = [
    'MODELS', 'MODEL_NAMES', 'build_models', 'MLPGenerator', 'MLPDiscriminator',
    'CGANMLPGenerator', 'CGANMLPDiscriminator', 'DCGANGenerator',
    'DCGANDiscriminator', 'Maxout', 'MinibatchDiscrimination', 'MinibatchStddev',
    'pack_inputs',
]


def build_models(model_config: Any, data_shape: Sequence[int], num_classes: int, *,
                 bn_axis_name: str | None = None) -> tuple[nn.Module, nn.Module]:
  """Builds the (generator, discriminator) pair that `model_config` names.

  Args:
    model_config: a ConfigDict (or mapping with `.get`) with at least `name`;
      the optional fields are listed in the module docstring.
    data_shape: the shape of one sample, e.g. (28, 28, 1) or (2,).
    num_classes: the number of classes of the dataset (0 if unlabelled); used
      only when the models are conditional.
    bn_axis_name: the device axis BatchNorm averages its statistics over (a
      runtime fact of the mesh, not a config value); None on one device.

  Returns:
    (G, D), unbound flax modules.
  """
  cfg = model_config
  name = cfg.get('name', None)
  if name not in MODELS:
    raise ValueError(f'Unknown model name {name!r}; valid: {list(MODEL_NAMES)}.')
  data_shape = tuple(int(d) for d in data_shape)
  conditional = bool(cfg.get('conditional', name == 'cgan_mlp'))
  if conditional and num_classes <= 0:
    raise ValueError(
        f'model.conditional=True needs a labelled dataset, got num_classes={num_classes}.')
  classes = int(num_classes) if conditional else 0
  if cfg.get('d_spectral_norm', False) and name not in SPECTRAL_NORM_MODELS:
    raise ValueError(f'config.model.d_spectral_norm=True is available for the '
                     f'{" and ".join(SPECTRAL_NORM_MODELS)} discriminators; '
                     f'config.model.name={name!r} has none.')
  minibatch = cfg.get('minibatch', 'none')
  layers.check_minibatch(minibatch)  # fail at build time, not at the first step
  pack = int(cfg.get('pack', 1))
  if pack < 1:
    raise ValueError(f'model.pack must be a positive integer, got {pack}.')
  return MODELS[name].build(cfg, data_shape, classes, minibatch=minibatch, pack=pack,
                            bn_axis_name=bn_axis_name)
