"""Seed 004's dense GAN on Fashion-MNIST (IDX files from Debian's dataset-fashion-mnist).

  python -m gan_jax.main --config experiments/gan_fashion_mnist.py --workdir runs/gan_fashion_mnist
  python -m gan_jax.main --config experiments/gan_fashion_mnist.py:quick --workdir runs/gan_fashion_mnist_quick
"""

from gan_jax import config_base


def get_config(arg: str | None = None):
  c = config_base.get_base()
  config_base.images(c, 'fashion_mnist', value_range=(-1.0, 1.0))  # tanh generator.
  config_base.mlp_gan(c)
  c.loss = 'non_saturating'
  config_base.training(c, lr=2e-4, batch_size=64, num_steps=20_000, eval_every=2000)
  return config_base.apply_variants(c, arg, {'quick': config_base.quick})
