"""Mode collapse on the 25-Gaussian grid: every remedy against a D that sees the modes.

  python -m gan_jax.sweep --config experiments/mode_collapse_grid.py --workdir runs/grid_sweep
  python -m gan_jax.main --config experiments/mode_collapse_grid.py --workdir runs/grid_gan
  python -m gan_jax.sweep --config experiments/mode_collapse_grid.py:quick --workdir /tmp/grid_quick
  python -m gan_jax.sweep --config experiments/mode_collapse_grid.py:tune --workdir runs/tune_grid
  python -m gan_jax.sweep --config experiments/mode_collapse_grid.py:pacgan --workdir runs/grid_pacgan
  python -m gan_jax.sweep --config experiments/mode_collapse_grid.py:veegan --workdir runs/grid_veegan

PacGAN / VEEGAN setting: 25 Gaussians of std 0.05 at {-4, -2, 0, 2, 4}^2. The
protocols (default = the CPU budget protocol, ':tune', ':pacgan', ':veegan', ':quick') are
described in `config_base.mode_collapse_study`, the variants of each in
`config_base.mode_collapse_sweep`.
"""

from gan_jax import config_base

# Published rows beside the sweep's variants: each entry is (the overrides a
# variant must contain, source, modes, high-quality fraction, KL or None). PacGAN's
# rows are from its repository's results/Table1.png (10 trials, 400k steps, its own
# nets); VEEGAN's from its Table 1.
PUBLISHED = [
    ({'model.latent_dim': 2}, 'PacGAN Table 1, GAN', 17.3, 0.948, 0.70),
    ({'model.pack': 2}, 'PacGAN Table 1, PacGAN2', 23.8, 0.913, 0.13),
    ({'model.pack': 3}, 'PacGAN Table 1, PacGAN3', 24.6, 0.942, 0.06),
    ({'model.pack': 4}, 'PacGAN Table 1, PacGAN4', 24.8, 0.936, 0.04),
    ({'unroll.steps': 5, 'optim.d.lr': 1e-4}, 'VEEGAN Table 1, Unrolled GAN', 23.6, 0.16,
     None),
]


def get_config(arg: str | None = None):
  c = config_base.get_base()
  config_base.grid(c, std=0.05)
  config_base.mode_collapse_study(c, arg, dataset='grid')
  return c


def sweep(add, config):
  config_base.mode_collapse_sweep(add, config)
