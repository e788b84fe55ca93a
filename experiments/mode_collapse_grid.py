"""Mode collapse on the 25-Gaussian grid: loss x unrolling depth x seeds.

  python -m gan_jax.sweep --config experiments/mode_collapse_grid.py --workdir runs/grid_sweep
  python -m gan_jax.sweep --config experiments/mode_collapse_grid.py:quick --workdir /tmp/grid_quick

PacGAN / VEEGAN setting: 25 Gaussians of std 0.05 at {-4, -2, 0, 2, 4}^2; 2,500 samples per evaluation; "high quality" = within 3 std of the nearest mode.
Nets of Metz et al. 2016 (G 2x128 ReLU, D 1x128 ReLU), with a 16-dim latent
(Metz: 256, VEEGAN / PacGAN: 2; the first layer dominates the cost on CPU).

`sweep(add)` lists the variants (flax hparam_sweep style): each `add(**overrides)`
is one variant, keyed by flattened config field names; every variant runs
`config.sweep.num_seeds` seeds (config.seed + i) vmapped in one program.
"""

import ml_collections

from gan_jax import config_base

LOSSES = ('minimax', 'non_saturating', 'wasserstein_gp')
UNROLL_STEPS = (0, 1, 5, 10)


def get_config(arg: str | None = None):
  c = config_base.get_base()
  config_base.grid(c, std=0.05)
  config_base.toy_2d(c)
  c.model.latent_dim = 16
  c.loss = 'non_saturating'
  c.optim.g = config_base.optimizer(lr=1e-3, b1=0.5)
  c.optim.d = config_base.optimizer(lr=1e-3, b1=0.5)
  c.train.batch_size = 128
  c.train.num_steps = 5000
  c.eval.num_samples = 2500  # VEEGAN / PacGAN protocol.
  c.sweep = ml_collections.ConfigDict()
  c.sweep.num_seeds = 5       # vmapped in one program per variant.
  c.sweep.eval_every = 500    # steps per compiled call; metrics after each.
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
