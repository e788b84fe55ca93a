"""8-Gaussian ring (PacGAN setting: radius 1, std 0.01), Metz et al. 2016 nets.

  python -m gan_jax.main --config experiments/ring8.py --workdir runs/ring8
  python -m gan_jax.main --config experiments/ring8.py --workdir runs/ring8_unrolled \
      --config.unroll.steps=10
  python -m gan_jax.main --config experiments/ring8.py:quick --workdir runs/ring8_quick
"""

from gan_jax import config_base


def get_config(arg: str | None = None):
  c = config_base.get_base()
  config_base.ring(c, radius=1.0, std=0.01)
  config_base.toy_2d(c)
  c.loss = 'non_saturating'
  # Metz et al. 2016, appendix A: Adam, lr 1e-4 (G) / 1e-4 (D), beta1 0.5; we use
  # 1e-3 for both, which reaches the ring within a CPU budget (see README).
  config_base.training(c, lr=1e-3, batch_size=256, num_steps=5000, eval_every=1000)
  c.eval.num_samples = 2500  # VEEGAN / PacGAN protocol.
  return config_base.apply_variants(c, arg, {'quick': config_base.quick})
