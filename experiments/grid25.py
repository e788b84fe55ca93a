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
  c.optim.g = config_base.optimizer(lr=1e-3, b1=0.5)
  c.optim.d = config_base.optimizer(lr=1e-3, b1=0.5)
  c.train.batch_size = 256
  c.train.num_steps = 10_000
  c.train.eval_every = 1000
  c.train.checkpoint_every = 1000
  c.eval.num_samples = 2500  # VEEGAN / PacGAN protocol.
  if arg == 'quick':
    config_base.quick(c)
  return c
