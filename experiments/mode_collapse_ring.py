"""Mode collapse on the 8-Gaussian ring: loss x unrolling depth x seeds.

  python -m gan_jax.sweep --config experiments/mode_collapse_ring.py --workdir runs/ring_sweep
  python -m gan_jax.sweep --config experiments/mode_collapse_ring.py:quick --workdir /tmp/ring_quick

PacGAN setting (Lin et al. 2018): 8 Gaussians of std 0.01 on a circle of radius 1;
2,500 samples per evaluation; "high quality" = within 3 std of the nearest mode.
Nets of Metz et al. 2016: G 2x128 ReLU, D 1x128 ReLU (a 2x128 D reached higher
HQ% for the plain GAN but made the unrolled GAN collapse in our runs). Latent,
optimizers and sweep settings are shared with the grid: `config_base.mode_collapse_study`.

`sweep(add)` lists the variants (flax hparam_sweep style): each `add(**overrides)`
is one variant, keyed by flattened config field names; every variant runs
`config.sweep.num_seeds` seeds (config.seed + i) vmapped in one program.
"""

from gan_jax import config_base


def get_config(arg: str | None = None):
  """Variants: ':long' (12,000 steps for the headline pair), ':quick' (a smoke run).

    python -m gan_jax.sweep --config experiments/mode_collapse_ring.py:long \
        --workdir runs/ring_long --only 'non_saturating,unroll.steps=(0|10)$'
  """
  c = config_base.get_base()
  config_base.ring(c, radius=1.0, std=0.01)
  config_base.mode_collapse_study(c, arg)
  return c


def sweep(add):
  # loss in (non_saturating, minimax, wasserstein_gp) x unroll.steps in (0, 1, 5, 10).
  config_base.loss_by_unroll_sweep(add)
