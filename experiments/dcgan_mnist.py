"""Conditional DCGAN on MNIST (seed 002: one-hot label concatenated to z, and as
constant channels to D's input; BatchNorm). MNIST comes from TFDS (see README);
`--config.data.name=fashion_mnist --config.data.dir=/usr/share/datasets/fashion-mnist`
runs it on Fashion-MNIST.

  python -m gan_jax.main --config experiments/dcgan_mnist.py --workdir runs/dcgan_mnist
  python -m gan_jax.main --config experiments/dcgan_mnist.py:quick --workdir runs/dcgan_quick
"""

from gan_jax import config_base


def get_config(arg: str | None = None):
  c = config_base.get_base()
  config_base.images(c, 'mnist', value_range=(-1.0, 1.0))  # tanh generator.
  c.data.dir = '/usr/share/datasets/fashion-mnist'  # used only with data.name=idx/fashion_mnist.
  c.model.update(dict(name='dcgan', conditional=True, latent_dim=100, base_width=64,
                      d_base_width=64, batch_norm=True, out_activation='tanh'))
  c.loss = 'non_saturating'
  # Radford et al. 2015: Adam 2e-4, beta1 0.5.
  config_base.training(c, lr=2e-4, batch_size=64, num_steps=10_000, eval_every=1000)

  def quick(c):
    config_base.quick(c)
    c.model.base_width = 8
    c.model.d_base_width = 8

  return config_base.apply_variants(c, arg, {'quick': quick})
