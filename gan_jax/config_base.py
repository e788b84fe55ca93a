"""Every config field with its default; experiments/*.py start from `get_base()`.

Having the whole schema in one place is what lets a locked config accept
`--config.unroll.steps=10` for any experiment and reject a misspelt field.
"""

from __future__ import annotations

import importlib.util
import os
import types

import ml_collections
from ml_collections import config_dict


def load_config_file(spec: str) -> tuple[types.ModuleType, str | None]:
  """(module, variant) of a config file given as 'path.py' or 'path.py:variant'."""
  path, _, variant = spec.partition(':')
  if not os.path.isfile(path):
    raise FileNotFoundError(f'--config={spec!r}: no config file {path!r}.')
  module_spec = importlib.util.spec_from_file_location(
      os.path.splitext(os.path.basename(path))[0], path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module, variant or None


def load_config(spec: str) -> ml_collections.ConfigDict:
  """`get_config(variant)` of a config file given as 'path.py[:variant]'."""
  module, variant = load_config_file(spec)
  return module.get_config(variant)


def optimizer(lr: float = 2e-4, b1: float = 0.5, b2: float = 0.999,
              name: str = 'adam') -> ml_collections.ConfigDict:
  # name: adam | rmsprop | sgd | momentum; b1/b2 only for adam, momentum only for
  # momentum; decay_steps > 0: cosine decay of lr to final_lr_fraction * lr.
  return ml_collections.ConfigDict(dict(name=name, lr=lr, b1=b1, b2=b2, momentum=0.9,
                                        decay_steps=0, final_lr_fraction=0.0))


def get_base() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  # Loss pair, see gan_jax/losses.py: minimax | non_saturating | wasserstein |
  # wasserstein_gp | least_squares | hinge.
  c.loss = 'non_saturating'

  # Dataset fields beyond the name depend on the dataset (see input_pipeline.py);
  # the helpers below and each experiment add them, so they can be overridden.
  c.data = ml_collections.ConfigDict()
  c.data.name = 'ring'  # ring | grid | fashion_mnist | mnist | idx | tfds | stacked

  # Model fields beyond these depend on the model (see gan_jax/models/__init__.py).
  c.model = ml_collections.ConfigDict()
  c.model.name = 'mlp'                              # mlp | cgan_mlp | dcgan
  c.model.conditional = False                       # labels into G and D (CGAN).
  c.model.latent_dim = 100
  c.model.latent_distribution = 'normal'            # normal | uniform
  c.model.minibatch = 'none'                        # D: none | discrimination | stddev
  c.model.pack = 1                                  # PacGAN: D sees `pack` samples at once.

  c.optim = ml_collections.ConfigDict()
  c.optim.g = optimizer()
  c.optim.d = optimizer()

  c.d_steps = 1                                     # D updates per G update.
  c.update_order = 'd_first'                        # d_first | g_first | simultaneous
  c.penalty = ml_collections.ConfigDict()
  c.penalty.gradient = config_dict.placeholder(float)     # WGAN-GP lambda (unset: loss default).
  c.penalty.r1 = 0.0                                      # R1 gamma.
  c.penalty.weight_clip = config_dict.placeholder(float)  # WGAN clipping (unset: loss default).
  c.label_smoothing = 0.0                           # one-sided: real target 1 - s.
  c.label_noise = 0.0                               # std of noisy targets (seed 000: 0.05).
  c.instance_noise = ml_collections.ConfigDict(dict(std=0.0, decay_steps=0))
  c.matching_aware = False                          # CGAN: real x with a wrong label is fake.
  c.ema_decay = 0.0                                 # EMA of G's params (0 = off).
  c.unroll = ml_collections.ConfigDict()
  c.unroll.steps = 0                                # Metz et al. 2016 lookahead K.
  c.unroll.exact = True                             # differentiate through D's optimizer.
  c.unroll.remat = False                            # jax.checkpoint the unrolled scan.

  c.train = ml_collections.ConfigDict()
  c.train.batch_size = 64                           # global batch (all devices).
  c.train.num_steps = 10_000
  c.train.log_every = 100
  c.train.eval_every = 1000
  c.train.checkpoint_every = 1000
  c.train.keep_checkpoints = 3

  c.eval = ml_collections.ConfigDict()
  c.eval.num_samples = 2500                         # mixtures: samples for mode metrics.
  c.eval.classifier = ''  # images: a gan_jax.classifier workdir or cache dir; metrics on eval.num_samples ('' = off).
  return c


def ring(c: ml_collections.ConfigDict, *, radius: float = 1.0, std: float = 0.01,
         num_modes: int = 8) -> ml_collections.ConfigDict:
  """8 Gaussians at angles 2 pi k / 8 (PacGAN: radius 1, std 0.01; Metz: 2, 0.02)."""
  c.data = ml_collections.ConfigDict(dict(name='ring', num_modes=num_modes,
                                          radius=radius, std=std))
  return c


def grid(c: ml_collections.ConfigDict, *, std: float = 0.05) -> ml_collections.ConfigDict:
  """25 Gaussians at {-4, -2, 0, 2, 4}^2 (VEEGAN / PacGAN)."""
  c.data = ml_collections.ConfigDict(dict(name='grid', grid_size=5, spacing=2.0, std=std))
  return c


def toy_2d(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The Metz et al. 2016 2-D nets: G 2x128 ReLU, D 1x128 ReLU, linear output."""
  c.model.update(dict(
      name='mlp', latent_dim=256, g_widths=(128, 128), d_widths=(128,),
      g_activation='relu', d_activation='relu', d_dropout=0.0, out_activation='linear',
      batch_norm=False))
  return c


def mlp_gan(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Seed 004's dense GAN: G 100->64->128->256->784 tanh; D 256-128-64 LeakyReLU 0.2 + dropout."""
  c.model.update(dict(
      name='mlp', latent_dim=100, g_widths=(64, 128, 256), d_widths=(256, 128, 64),
      g_activation='relu', d_activation='leaky_relu', d_dropout=(0.5, 0.3, 0.2),
      out_activation='tanh', batch_norm=False))
  return c


def cgan_mlp(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Mirza & Osindero 2014: maxout D, z->200 / y->1000 -> 1200 -> 784 sigmoid G."""
  c.model.update(dict(name='cgan_mlp', conditional=True, latent_dim=100,
                      latent_distribution='uniform', out_activation='sigmoid',
                      g_dropout=0.5, d_dropout=0.5))
  return c


def images(c: ml_collections.ConfigDict, name: str, *,
           value_range=(-1.0, 1.0)) -> ml_collections.ConfigDict:
  """An image dataset by name ('mnist' via TFDS, 'fashion_mnist' from IDX files)."""
  c.data = ml_collections.ConfigDict(dict(name=name, value_range=value_range))
  if name == 'fashion_mnist':
    c.data.dir = '/usr/share/datasets/fashion-mnist'
  if name == 'mnist':
    c.data.tfds_name = 'mnist'
    c.data.tfds_data_dir = config_dict.placeholder(str)
  return c


def quick(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A smoke-test variant: a few steps of a small batch, everything written."""
  c.train.update(dict(batch_size=16, num_steps=20, log_every=5, eval_every=10,
                      checkpoint_every=10))
  c.eval.num_samples = 500
  return c


def mode_collapse_study(c: ml_collections.ConfigDict,
                        arg: str | None) -> ml_collections.ConfigDict:
  """Training and sweep settings shared by experiments/mode_collapse_*.py.

  Metz et al. 2016 nets with a 16-dim latent (Metz: 256, VEEGAN / PacGAN: 2; G's
  first layer dominates the cost on CPU); Adam 1e-3, beta1 0.5; G's lr decays
  (cosine) to 1 % so that its samples settle on the modes, D's stays constant so
  the lookahead keeps its reach. Variants: ':long' (12,000 steps), ':quick'.
  """
  toy_2d(c)
  c.model.latent_dim = 16
  c.loss = 'non_saturating'
  c.train.batch_size = 128
  c.train.num_steps = 3000
  c.optim.g = optimizer(lr=1e-3, b1=0.5)
  c.optim.g.decay_steps = c.train.get_ref('num_steps')
  c.optim.g.final_lr_fraction = 0.01
  c.optim.d = optimizer(lr=1e-3, b1=0.5)
  c.eval.num_samples = 2500  # VEEGAN / PacGAN protocol.
  c.sweep = ml_collections.ConfigDict()
  c.sweep.num_seeds = 5       # vmapped in one program per variant.
  c.sweep.eval_every = 500    # steps per compiled call; metrics after each.
  if arg == 'long':
    c.train.num_steps = 12_000
    c.sweep.eval_every = 1000
  if arg == 'quick':
    c.train.num_steps = 40
    c.train.batch_size = 32
    c.sweep.num_seeds = 2
    c.sweep.eval_every = 20
    c.eval.num_samples = 500
  return c


# non_saturating first: its plain / K = 10 pair is the strip figure, and an
# interrupted sweep has the headline comparison first.
MODE_COLLAPSE_LOSSES = ('non_saturating', 'minimax', 'wasserstein_gp')
MODE_COLLAPSE_UNROLL_STEPS = (0, 1, 5, 10)


def loss_by_unroll_sweep(add) -> None:
  """loss in MODE_COLLAPSE_LOSSES x unroll.steps in MODE_COLLAPSE_UNROLL_STEPS."""
  for loss in MODE_COLLAPSE_LOSSES:
    for k in MODE_COLLAPSE_UNROLL_STEPS:
      add(loss=loss, **{'unroll.steps': k})
