"""Mode collapse on the 8-Gaussian ring: every remedy against a D that sees the modes.

  python -m gan_jax.sweep --config experiments/mode_collapse_ring.py --workdir runs/ring_sweep
  python -m gan_jax.main --config experiments/mode_collapse_ring.py --workdir runs/ring_gan
  python -m gan_jax.sweep --config experiments/mode_collapse_ring.py:quick --workdir /tmp/ring_quick
  python -m gan_jax.sweep --config experiments/mode_collapse_ring.py:tune --workdir runs/tune_ring
  python -m gan_jax.sweep --config experiments/mode_collapse_ring.py:pacgan --workdir runs/ring_pacgan
  python -m gan_jax.sweep --config experiments/mode_collapse_ring.py:metz --workdir runs/ring_metz

PacGAN setting (Lin et al. 2018): 8 Gaussians of std 0.01 on a circle of radius 1
(':metz': radius 2, std 0.02). The protocols (default = the CPU budget protocol,
':tune', ':pacgan', ':metz', ':quick') are described in `config_base.mode_collapse_study`,
the variants of each in `config_base.mode_collapse_sweep`. `gan_jax.main` trains
the protocol's plain non-saturating GAN for one seed.
"""

from gan_jax import config_base

# Published rows beside the sweep's variants: each entry is (the overrides a
# variant must contain, source, modes, high-quality fraction, KL or None). PacGAN's
# rows are from its repository's results/Table1.png (10 trials, 400k steps, its own
# nets); VEEGAN's from its Table 1.
PUBLISHED = [
    ({'model.latent_dim': 2}, 'PacGAN Table 1, GAN', 6.3, 0.982, 0.45),
    ({'model.latent_dim': 16}, 'VEEGAN Table 1, GAN', 1.0, 0.993, None),
    ({'model.pack': 2}, 'PacGAN Table 1, PacGAN2', 7.9, 0.956, 0.07),
    ({'model.pack': 3}, 'PacGAN Table 1, PacGAN3', 7.8, 0.977, 0.10),
    ({'model.pack': 4}, 'PacGAN Table 1, PacGAN4', 7.8, 0.959, 0.07),
    ({'unroll.steps': 5, 'optim.d.lr': 1e-4}, 'VEEGAN Table 1, Unrolled GAN', 7.6, 0.356,
     None),
]


def get_config(arg: str | None = None):
  c = config_base.get_base()
  config_base.ring(c, radius=1.0, std=0.01)
  config_base.mode_collapse_study(c, arg, dataset='ring')
  return c


def sweep(add, config):
  config_base.mode_collapse_sweep(add, config)
