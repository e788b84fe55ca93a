"""Conditional GAN (Mirza & Osindero 2014 maxout MLPs, seed 000) on MNIST (TFDS; needs prepared data, see README).

D also sees real images with a wrong label as fake (matching-aware, seed 000),
and trains on noisy targets 1 - |N(0, 0.05^2)| / |N(0, 0.05^2)| as seed 000 does.

  python -m gan_jax.main --config experiments/cgan_mnist.py --workdir runs/cgan_mnist
  python -m gan_jax.main --config experiments/cgan_mnist.py --workdir runs/cgan_mnist_wgp \
      --config.loss=wasserstein_gp --config.label_noise=0.0
  python -m gan_jax.main --config experiments/cgan_mnist.py:quick --workdir runs/cgan_mnist_quick
"""

from gan_jax import config_base


def get_config(arg: str | None = None):
  c = config_base.get_base()
  config_base.images(c, 'mnist', value_range=(0.0, 1.0))  # sigmoid generator.
  config_base.cgan_mlp(c)
  c.loss = 'non_saturating'
  c.matching_aware = True
  c.label_noise = 0.05
  config_base.training(c, lr=2e-4, batch_size=100, num_steps=20_000, eval_every=2000)
  return config_base.apply_variants(c, arg, {'quick': config_base.quick})
