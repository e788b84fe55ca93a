"""Every config field with its default; experiments/*.py start from `get_base()`.

Having the whole schema in one place is what lets a locked config accept
`--config.unroll.steps=10` for any experiment and reject a misspelt field.
"""

from __future__ import annotations

import importlib.util
import os
import types
from typing import Any, Callable

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
  # name: adam | rmsprop | sgd | momentum | optimistic | optimistic_adam; b1/b2 for
  # adam and optimistic_adam, momentum only for momentum, optimism (beta of
  # optimistic gradient descent) only for optimistic; decay_steps > 0: cosine
  # decay of lr to final_lr_fraction * lr.
  return ml_collections.ConfigDict(dict(name=name, lr=lr, b1=b1, b2=b2, momentum=0.9,
                                        optimism=1.0, decay_steps=0,
                                        final_lr_fraction=0.0))


def training(c: ml_collections.ConfigDict, *, lr: float, batch_size: int, num_steps: int,
             eval_every: int, b1: float = 0.5) -> ml_collections.ConfigDict:
  """The trailer the experiments share: Adam(lr, b1) for both players and the step budget.

  A checkpoint is written with every evaluation (checkpoint_every = eval_every).
  """
  c.optim.g = optimizer(lr=lr, b1=b1)
  c.optim.d = optimizer(lr=lr, b1=b1)
  c.train.update(dict(batch_size=batch_size, num_steps=num_steps, eval_every=eval_every,
                      checkpoint_every=eval_every))
  return c


def apply_variants(c: ml_collections.ConfigDict, arg: str | None,
                   variants: dict[str, Callable[[ml_collections.ConfigDict], Any]]
                   ) -> ml_collections.ConfigDict:
  """Applies the comma-joined variants of `arg` ('quick', 'half,quick', ...) in order.

  `variants` maps each valid name to a function that edits the config in place;
  a name not in it is a ValueError that lists the valid ones (an unknown
  variant never runs the default config silently).
  """
  for name in filter(None, (arg or '').split(',')):
    if name not in variants:
      valid = ', '.join(repr(v) for v in variants) or 'none'
      raise ValueError(f'config variant {name!r} does not exist; valid variants: {valid}.')
    variants[name](c)
  return c


def get_base() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  # Loss pair, see gan_jax/losses.py: minimax | non_saturating | wasserstein |
  # wasserstein_gp | least_squares | hinge | rsgan | ragan | ralsgan | rahinge.
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
  c.model.d_spectral_norm = False                   # SN of D's kernels (mlp, dcgan).

  c.optim = ml_collections.ConfigDict()
  c.optim.g = optimizer()
  c.optim.d = optimizer()

  c.d_steps = 1                                     # D updates per G update.
  c.update_order = 'd_first'                        # d_first | g_first | simultaneous
  c.penalty = ml_collections.ConfigDict()
  c.penalty.gradient = config_dict.placeholder(float)     # WGAN-GP lambda (unset: loss default).
  c.penalty.r1 = 0.0                                      # R1 gamma.
  c.penalty.r2 = 0.0                                      # R2 gamma (at the fakes).
  c.penalty.dragan = 0.0                                  # DRAGAN lambda (Kodali: 10).
  c.penalty.weight_clip = config_dict.placeholder(float)  # WGAN clipping (unset: loss default).
  c.label_smoothing = 0.0                           # one-sided: real target 1 - s.
  c.label_smoothing_fake = 0.0                      # two-sided: fake target beta (< 1 - s).
  c.label_noise = 0.0                               # std of noisy targets (seed 000: 0.05).
  c.instance_noise = ml_collections.ConfigDict(dict(std=0.0, decay_steps=0))
  c.matching_aware = False                          # CGAN: real x with a wrong label is fake.
  c.ema_decay = 0.0                                 # EMA of G's params (0 = off).
  # Game methods against non-convergence (steps._game_update); both need
  # update_order=simultaneous. Optimistic gradient is optim.*.name=optimistic.
  c.game = ml_collections.ConfigDict()
  c.game.method = 'gd'                              # gd | extragradient | consensus
  c.game.consensus_gamma = 0.1                      # consensus: weight of 1/2 |v|^2.
  c.unroll = ml_collections.ConfigDict()
  c.unroll.steps = 0                                # Metz et al. 2016 lookahead K.
  c.unroll.exact = True                             # differentiate through D's optimizer.
  c.unroll.remat = False                            # jax.checkpoint the unrolled scan.
  c.unroll.g_once = True                            # G runs once on the K batches (False: K passes).

  c.train = ml_collections.ConfigDict()
  c.train.batch_size = 64                           # global batch (all devices).
  c.train.num_steps = 10_000
  c.train.log_every = 100
  c.train.eval_every = 1000
  c.train.sample_every = 0                          # sample grid + curves.png between evals (0 = at evals only).
  c.train.checkpoint_every = 1000
  c.train.keep_checkpoints = 3
  c.train.freeze_g = False                          # D trains against a fixed G (gan_jax.vanishing).

  c.eval = ml_collections.ConfigDict()
  c.eval.num_samples = 2500                         # mixtures: samples for mode metrics.
  c.eval.classifier = ''  # images: a gan_jax.classifier workdir or cache dir; metrics on eval.num_samples ('' = off).
  c.eval.train_classifier_epochs = 0  # > 0: a missing eval.classifier is trained (so many epochs) when first needed.
  return c


def ring(c: ml_collections.ConfigDict, *, radius: float = 1.0, std: float = 0.01,
         num_modes: int = 8) -> ml_collections.ConfigDict:
  """8 Gaussians at angles 2 pi k / 8 (PacGAN: radius 1, std 0.01; Metz: 2, 0.02).

  train_size > 0: a finite training set of that many points drawn once from
  train_seed (PacGAN: 100,000); 0 draws fresh points every step.
  """
  c.data = ml_collections.ConfigDict(dict(name='ring', num_modes=num_modes,
                                          radius=radius, std=std, train_size=0,
                                          train_seed=0))
  return c


def grid(c: ml_collections.ConfigDict, *, std: float = 0.05) -> ml_collections.ConfigDict:
  """25 Gaussians at {-4, -2, 0, 2, 4}^2 (VEEGAN / PacGAN); train_size as for ring()."""
  c.data = ml_collections.ConfigDict(dict(name='grid', grid_size=5, spacing=2.0, std=std,
                                          train_size=0, train_seed=0))
  return c


def toy_2d(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The Metz et al. 2016 2-D nets: G 2x128 ReLU, D 1x128 ReLU, linear output.

  Also the fields of the published protocols' nets: batch_norm (G), d_maxout_pieces,
  init / init_scale (see gan_jax/models/__init__.py).
  """
  c.model.update(dict(
      name='mlp', latent_dim=256, g_widths=(128, 128), d_widths=(128,),
      g_activation='relu', d_activation='relu', d_dropout=0.0, out_activation='linear',
      batch_norm=False, d_maxout_pieces=0, init='lecun_normal', init_scale=1.0))
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


# Fashion-MNIST's labels 0-9 (Xiao et al. 2017).
FASHION_MNIST_CLASSES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal',
                         'Shirt', 'Sneaker', 'Bag', 'Ankle boot')


def images(c: ml_collections.ConfigDict, name: str, *,
           value_range=(-1.0, 1.0)) -> ml_collections.ConfigDict:
  """An image dataset by name ('mnist' via TFDS, 'fashion_mnist' from IDX files)."""
  c.data = ml_collections.ConfigDict(dict(name=name, value_range=value_range))
  if name == 'fashion_mnist':
    c.data.dir = '/usr/share/datasets/fashion-mnist'
    c.data.class_names = FASHION_MNIST_CLASSES  # sample-grid rows say what they are
  if name == 'mnist':
    c.data.tfds_name = 'mnist'
    c.data.tfds_data_dir = config_dict.placeholder(str)
    # For MNIST's IDX files instead of TFDS: --config.data.name=idx --config.data.dir=DIR.
    c.data.dir = config_dict.placeholder(str)
  return c


def quick(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A smoke-test variant: a few steps of a small batch, everything written."""
  c.train.update(dict(batch_size=16, num_steps=20, log_every=5, eval_every=10,
                      checkpoint_every=10))
  c.eval.num_samples = 500
  return c


def mode_collapse_study(c: ml_collections.ConfigDict, arg: str | None, *,
                        dataset: str) -> ml_collections.ConfigDict:
  """The protocols of experiments/mode_collapse_{ring,grid}.py; `dataset`: 'ring' | 'grid'.

  Default, the budget protocol (about an hour of this 2-core CPU per dataset):
  G 2 x 128 ReLU (Metz et al. 2016; 3 x 256 on the grid), D 3 x 200 ReLU (PacGAN's width: a 1 x 128
  D cannot resolve modes 0.03 wide), latent 2 (PacGAN's z), batch 128 points per
  player (x pack for PacGAN variants, as PacGAN fixes the number of packs), Adam
  1e-3 / beta1 0.5 for both players, G's lr cosine-decayed to 1 % so that its
  samples settle on the modes, D's constant; alternating updates (D first);
  10,000 steps; fresh data; 10 seeds.

  Published protocols (read from the released code; GPU-sized):
    ':pacgan'  Lin et al. 2018 (fjxmlzn/PacGAN): G 2 -> 4 x 400 (BatchNorm, ReLU,
               no hidden bias) -> 2; D 3 maxout layers (200 units, 5 pieces);
               init N(0, 0.02^2), biases 0; z ~ N(0, I_2); 100 packs per step
               (100 m points per player); Adam 1e-4, beta1 0.8, both players,
               simultaneous updates; 400,000 steps (400 epochs of 1,000); a
               fixed training set of 100,000 points sampled with replacement.
               PacGAN draws a new set per trial; here one set (data.train_seed)
               is shared by all seeds, so the spread over seeds leaves out the
               draw of the data.
    ':veegan'  Srivastava et al. 2017's GAN baseline (akashgit/VEEGAN, grid only):
               G 2 x 128 ReLU, D 1 x 128 ReLU; z 254-dim; batch 500; Adam 1e-3,
               beta1 0.5, simultaneous; 100,000 steps; fresh data.
    ':metz'    Metz et al. 2016 (ring only, radius 2, std 0.02 as the paper
               states): G and D 2 x 128 tanh, orthogonal init (gain 1.4); z 256;
               batch 512; saturating minimax G loss; G Adam 1e-3, D Adam 1e-4,
               beta1 0.5; 25,000 steps.
    ':tune'    the default protocol's learning-rate check of every remedy: each at
               lr 3e-4 for both players (the default is 1e-3), 3 seeds; the 1e-3
               rows are the default sweep's seeds 0-2 (the same runs).
    ':quick'   a smoke-sized run of the default protocol.
  Evaluation is PacGAN's for all: 2,500 samples of a fixed z shared by every
  seed, high quality = within 3 std (strict), a mode = >= 1 HQ sample nearest
  it, KL of the HQ-only mode histogram to uniform.
  """
  protocols = (None, 'quick', 'tune', 'pacgan', 'veegan', 'metz')
  if arg not in protocols:
    raise ValueError(f'config variant {arg!r} does not exist; valid variants: '
                     f'{", ".join(repr(p) for p in protocols if p)} (or none).')
  if arg == 'veegan' and dataset != 'grid':
    raise ValueError("config variant 'veegan' is VEEGAN's released 2-D code, which "
                     'trains on the 25-mode grid only; use mode_collapse_grid.py:veegan.')
  if arg == 'metz' and dataset != 'ring':
    raise ValueError("config variant 'metz' is Metz et al.'s ring; use "
                     'mode_collapse_ring.py:metz.')
  toy_2d(c)
  c.loss = 'non_saturating'
  c.model.d_widths = (200, 200, 200)
  c.model.latent_dim = 2
  if dataset == 'grid':
    # Tuned on the plain GAN (10,000 steps, 3 seeds; `runs/tune_grid` in the README):
    # G 2 x 128 reached 11.8 modes / 72 % HQ (10 seeds), 3 x 256 14.3 / 82 %,
    # 4 x 400 18.7 / 64 %, 3 x 256 at lr 3e-4 13.7 / 43 %.
    c.model.g_widths = (256, 256, 256)
  c.train.batch_size = 128
  c.train.num_steps = 10_000
  c.train.eval_every = 1000
  c.train.checkpoint_every = 1000
  c.optim.g = optimizer(lr=1e-3, b1=0.5)
  c.optim.g.decay_steps = c.train.get_ref('num_steps')
  c.optim.g.final_lr_fraction = 0.01
  c.optim.d = optimizer(lr=1e-3, b1=0.5)
  c.eval.num_samples = 2500  # VEEGAN / PacGAN protocol.
  # Discriminator rejection sampling (gan_jax/rejection.py): the sweep also scores
  # eval.num_samples DRS-accepted samples of each seed, as rows of their own.
  c.eval.drs = ml_collections.ConfigDict(dict(
      enabled=False, gamma_percentile=95.0, epsilon=1e-6, burn_in=10_000,
      batch_size=10_000, max_candidates=1_000_000))
  c.sweep = ml_collections.ConfigDict()
  c.sweep.protocol = arg or 'budget'
  c.sweep.num_seeds = 10     # vmapped in one program per variant.
  c.sweep.eval_every = 1000  # steps per compiled call; metrics after each.
  if arg == 'tune':
    c.sweep.num_seeds = 3
  if arg == 'pacgan':
    c.model.update(dict(g_widths=(400, 400, 400, 400), batch_norm=True,
                        d_widths=(200, 200, 200), d_maxout_pieces=5,
                        init='normal', init_scale=0.02))
    c.train.batch_size = 100
    c.train.num_steps = 400_000
    c.update_order = 'simultaneous'
    c.optim.g = optimizer(lr=1e-4, b1=0.8, b2=0.999)
    c.optim.d = optimizer(lr=1e-4, b1=0.8, b2=0.999)
    c.data.train_size = 100_000
    c.train.eval_every = c.train.checkpoint_every = c.sweep.eval_every = 10_000
  if arg == 'veegan':
    c.model.update(dict(latent_dim=254, g_widths=(128, 128), d_widths=(128,)))
    c.train.batch_size = 500
    c.train.num_steps = 100_000
    c.update_order = 'simultaneous'
    c.optim.g = optimizer(lr=1e-3, b1=0.5)
    c.optim.d = optimizer(lr=1e-3, b1=0.5)
    c.train.eval_every = c.train.checkpoint_every = c.sweep.eval_every = 5000
  if arg == 'metz':
    ring(c, radius=2.0, std=0.02)
    c.model.update(dict(latent_dim=256, d_widths=(128, 128), g_activation='tanh',
                        d_activation='tanh', init='orthogonal', init_scale=1.4))
    c.loss = 'minimax'
    c.train.batch_size = 512
    c.train.num_steps = 25_000
    c.optim.g = optimizer(lr=1e-3, b1=0.5)
    c.optim.d = optimizer(lr=1e-4, b1=0.5)
    c.train.eval_every = c.train.checkpoint_every = c.sweep.eval_every = 2500
  if arg == 'quick':
    c.train.num_steps = 40
    c.train.batch_size = 32
    c.train.log_every = 10
    c.train.eval_every = c.train.checkpoint_every = 20
    c.sweep.num_seeds = 2
    c.sweep.eval_every = 20
    c.eval.num_samples = 500
    c.eval.drs.update(dict(burn_in=1000, batch_size=1000, max_candidates=20_000))
  return c


def mode_collapse_sweep(add, config: ml_collections.ConfigDict) -> None:
  """The variants of a mode-collapse protocol (`config.sweep.protocol`).

  Budget protocol and ':quick': the plain GAN at latent 2 (PacGAN's row) and 16
  (VEEGAN's), then every remedy the project has, each against the 3 x 200 D:
  PacGAN packing 2 / 3 / 4 (batch 128 m points: PacGAN fixes the packs),
  minibatch stddev and discrimination, the best remedy trained longer with D's lr
  decayed as well (ring: PacGAN3 for 2, 4 and 8 times the steps, 4 and 8 times with
  D's lr decayed to 1 % like G's, R1 0.1 for 4 times to 1 %; grid: R1 0.1 for 4
  times), unrolled D (K = 5 with D's lr at 1e-4, Metz et al.'s tenth of G's), R1
  (gamma 0.1 and 1), instance noise (std 0.1 decayed linearly to 0 over the first
  half), update order (simultaneous, G first), unrolled D at the shared lr (K = 5,
  exact and first order). In this order, so that an interrupted sweep has the
  headline rows. Every variant runs config.sweep.num_seeds seeds.
  Tuned against the 3 x 200 D: the unrolled D's lr (1e-3 vs Metz's 1e-4),
  PacGAN2's lr (1e-3 vs 3e-4) and, on the grid, G's width (on the plain GAN);
  every other remedy runs at the plain GAN's optimizer settings. ':pacgan': pack 1-4.
  ':veegan', ':metz': the plain GAN and K = 5 unrolled.
  """
  protocol = config.sweep.protocol
  batch = int(config.train.batch_size)
  # PacGAN m: the batch is 128 m points, as PacGAN fixes the number of packs.
  packed = lambda m: {'model.pack': m, 'train.batch_size': batch * m}
  if protocol in ('veegan', 'metz'):
    add(**{'unroll.steps': 0})
    add(**{'unroll.steps': 5})
    return
  if protocol == 'tune':
    # Every remedy of the budget sweep at a third of its lr (both players); the
    # unrolled D's lr is the budget sweep's own pair of rows (1e-4 and 1e-3).
    remedies = [{}, packed(3), packed(4), {'model.minibatch': 'stddev'},
                {'penalty.r1': 0.1}, {'penalty.r1': 1.0},
                {'instance_noise.std': 0.1,
                 'instance_noise.decay_steps': int(config.train.num_steps) // 2},
                {'update_order': 'simultaneous'}, {'update_order': 'g_first'},
                {'unroll.steps': 5, 'unroll.exact': False}]
    for remedy in remedies:
      add(**remedy, **{'optim.g.lr': 3e-4, 'optim.d.lr': 3e-4})
    return
  if protocol == 'pacgan':
    for m in (1, 2, 3, 4):
      add(**packed(m))
    return
  add(**{'model.latent_dim': 2})
  add(**{'model.latent_dim': 16})
  for m in (2, 3, 4):
    add(**packed(m))
  add(**{'model.minibatch': 'stddev'})
  # Pairwise features cost O(batch^2) per D call (~0.4 s a step for 5 seeds on a
  # core): the costliest budget variant with the unrolled ones (an hour of a core
  # per 5 seeds); every variant still runs config.sweep.num_seeds seeds.
  add(**{'model.minibatch': 'discrimination'})
  # The best budget remedy of each mixture (PacGAN3 on the ring, R1 gamma 0.1 on the
  # grid, where packing loses its quality) trained f times longer with D's lr cosine-
  # decayed too, to `final` of its start: how far HQ climbs when both players settle.
  # Ring PacGAN3: at 4x (D to 10 %) HQ was still climbing (97.8 %) and at 8x one seed
  # of ten lost a mode, so D also goes to 1 % like G's (4x: 97.9 %; 8x); and R1 gamma
  # 0.1, the grid's best, at 4x on the ring too.
  steps = int(config.train.num_steps)
  if config.data.name == 'grid':
    longer = [({'penalty.r1': 0.1}, 4, 0.1)]
  else:
    longer = [(packed(3), f, 0.1) for f in (2, 4, 8)]
    longer += [(packed(3), 4, 0.01), (packed(3), 8, 0.01), ({'penalty.r1': 0.1}, 4, 0.01)]
  for remedy, f, final in longer:
    add(**remedy, **{'train.num_steps': f * steps, 'optim.d.decay_steps': f * steps,
                     'optim.d.final_lr_fraction': final})
  # Metz et al.'s D lr (a tenth of G's) first: it is the setting the published
  # unrolled rows used. The lookahead costs ~10x a plain step.
  add(**{'unroll.steps': 5, 'unroll.exact': True, 'optim.d.lr': 1e-4})
  # Packing at a third of the shared lr: on the grid, packs at lr 1e-3 lost most of
  # their high-quality samples (PacGAN itself trains at 1e-4).
  add(**packed(2), **{'optim.g.lr': 3e-4, 'optim.d.lr': 3e-4})
  add(**{'penalty.r1': 0.1})
  add(**{'penalty.r1': 1.0})
  add(**{'instance_noise.std': 0.1,
         'instance_noise.decay_steps': int(config.train.num_steps) // 2})
  add(update_order='simultaneous')
  add(update_order='g_first')
  add(**{'unroll.steps': 5, 'unroll.exact': True})
  add(**{'unroll.steps': 5, 'unroll.exact': False})
