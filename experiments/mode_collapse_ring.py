"""Mode collapse on the 8-Gaussian ring: loss x unrolling depth x seeds.

  python -m gan_jax.sweep --config experiments/mode_collapse_ring.py --workdir runs/ring_sweep
  python -m gan_jax.sweep --config experiments/mode_collapse_ring.py:quick --workdir /tmp/ring_quick

PacGAN setting (Lin et al. 2018): 8 Gaussians of std 0.01 on a circle of radius 1;
2,500 samples per evaluation; "high quality" = within 3 std of the nearest mode.
Nets of Metz et al. 2016: G 2x128 ReLU, D 1x128 ReLU (a 2x128 D reached higher
HQ% for the plain GAN but made the unrolled GAN collapse in our runs), with a
16-dim latent (Metz: 256, VEEGAN / PacGAN: 2; G's first layer dominates the
cost on CPU). Adam 1e-3, beta1 0.5; G's lr decays (cosine) to 1% so that its
samples settle on the modes, D's stays constant so the lookahead keeps its reach.

`sweep(add)` lists the variants (flax hparam_sweep style): each `add(**overrides)`
is one variant, keyed by flattened config field names; every variant runs
`config.sweep.num_seeds` seeds (config.seed + i) vmapped in one program.
"""

import ml_collections

from gan_jax import config_base

# non_saturating first: its plain / K = 10 pair is the strip figure, and an
# interrupted sweep has the headline comparison first.
LOSSES = ('non_saturating', 'minimax', 'wasserstein_gp')
UNROLL_STEPS = (0, 1, 5, 10)


def get_config(arg: str | None = None):
  c = config_base.get_base()
  config_base.ring(c, radius=1.0, std=0.01)
  config_base.toy_2d(c)
  c.model.latent_dim = 16
  c.loss = 'non_saturating'
  c.train.batch_size = 128
  c.train.num_steps = 3000
  c.optim.g = config_base.optimizer(lr=1e-3, b1=0.5)
  c.optim.g.decay_steps = c.train.get_ref('num_steps')
  c.optim.g.final_lr_fraction = 0.01
  c.optim.d = config_base.optimizer(lr=1e-3, b1=0.5)
  c.eval.num_samples = 2500  # VEEGAN / PacGAN protocol.
  c.sweep = ml_collections.ConfigDict()
  c.sweep.num_seeds = 5       # vmapped in one program per variant.
  c.sweep.eval_every = 500    # steps per compiled call; metrics after each.
  if arg == 'long':
    # The headline pair at 4x the steps (the default 3,000 leave HQ% low):
    #   python -m gan_jax.sweep --config experiments/mode_collapse_ring.py:long \
    #       --workdir runs/ring_long --only 'non_saturating,unroll.steps=(0|10)$'
    c.train.num_steps = 12_000
    c.sweep.eval_every = 1000
  if arg == 'quick':
    c.train.num_steps = 40
    c.train.batch_size = 32
    c.sweep.num_seeds = 2
    c.sweep.eval_every = 20
    c.eval.num_samples = 500
  return c


def sweep(add):
  for loss in LOSSES:
    for k in UNROLL_STEPS:
      add(loss=loss, **{'unroll.steps': k})
