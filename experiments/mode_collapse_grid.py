"""Mode collapse on the 25-Gaussian grid: loss x unrolling depth x seeds.

  python -m gan_jax.sweep --config experiments/mode_collapse_grid.py --workdir runs/grid_sweep
  python -m gan_jax.sweep --config experiments/mode_collapse_grid.py:quick --workdir /tmp/grid_quick

PacGAN / VEEGAN setting: 25 Gaussians of std 0.05 at {-4, -2, 0, 2, 4}^2; 2,500
samples per evaluation; "high quality" = within 3 std of the nearest mode.
Nets: G 2x128 ReLU as in Metz et al. 2016, D 2x128 ReLU (Metz: 1x128, PacGAN:
3x200 maxout; one hidden layer resolved the modes poorly in our runs). Latent,
optimizers and sweep settings are shared with the ring: `config_base.mode_collapse_study`.

`sweep(add)` lists the variants (flax hparam_sweep style): each `add(**overrides)`
is one variant, keyed by flattened config field names; every variant runs
`config.sweep.num_seeds` seeds (config.seed + i) vmapped in one program.
"""

from gan_jax import config_base


def get_config(arg: str | None = None):
  """Variants: ':long' (12,000 steps for the headline pair), ':quick' (a smoke run).

    python -m gan_jax.sweep --config experiments/mode_collapse_grid.py:long \
        --workdir runs/grid_long --only 'non_saturating,unroll.steps=(0|10)$'
  """
  c = config_base.get_base()
  config_base.grid(c, std=0.05)
  config_base.mode_collapse_study(c, arg)
  c.model.d_widths = (128, 128)
  return c


def sweep(add):
  # loss in (non_saturating, minimax, wasserstein_gp) x unroll.steps in (0, 1, 5, 10).
  config_base.loss_by_unroll_sweep(add)
