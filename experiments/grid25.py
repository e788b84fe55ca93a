"""25-Gaussian grid {-4,-2,0,2,4}^2, std 0.05 (VEEGAN / PacGAN), Metz et al. 2016 nets.

  python -m gan_jax.main --config experiments/grid25.py --workdir runs/grid25
  python -m gan_jax.main --config experiments/grid25.py:quick --workdir runs/grid25_quick
"""

from gan_jax import config_base


def get_config(arg: str | None = None):
  c = config_base.get_base()
  config_base.grid(c, std=0.05)
  config_base.toy_2d(c)
  c.loss = 'non_saturating'
  config_base.training(c, lr=1e-3, batch_size=256, num_steps=10_000, eval_every=1000)
  c.eval.num_samples = 2500  # VEEGAN / PacGAN protocol.
  return config_base.apply_variants(c, arg, {'quick': config_base.quick})
