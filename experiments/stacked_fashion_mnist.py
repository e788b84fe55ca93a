"""Stacked Fashion-MNIST (1000 modes): DCGAN with a narrow D, the Metz et al. 2016 setup.

Three independent Fashion-MNIST images as the three channels of one 28x28x3
image give 10^3 = 1000 modes. Mode counting follows VEEGAN / PacGAN: each
channel of 26,000 samples is classified by the evaluation classifier (train it
once: `python -m gan_jax.classifier --dataset fashion_mnist`), and the number of
digit triples that occur and KL(mode histogram || uniform) are reported. Metz et
al. (arXiv:1611.02163, table 2) shrink D to make the GAN collapse: D = 1/4 of
G's width (this file) or 1/2 (`:half`); unrolling is `--config.unroll.steps=10`.
The DCGAN is the seed-002 one (G 4x4 transposed convs 256 -> 128 -> 3 from 7x7,
BatchNorm, tanh).

  python -m gan_jax.main --config experiments/stacked_fashion_mnist.py --workdir runs/stacked_fm
  python -m gan_jax.main --config experiments/stacked_fashion_mnist.py:half --workdir runs/stacked_fm_half \
      --config.unroll.steps=10
  python -m gan_jax.main --config experiments/stacked_fashion_mnist.py:quick --workdir runs/stacked_fm_quick
  # A CPU-sized model (G width 16, D 4) for short runs on a laptop:
  python -m gan_jax.main --config experiments/stacked_fashion_mnist.py:small --workdir runs/stacked_fm_small
"""

import ml_collections

from gan_jax import config_base


def stacked(c: ml_collections.ConfigDict, base: ml_collections.ConfigDict, *,
            g_width: int = 64, d_fraction: float = 0.25) -> ml_collections.ConfigDict:
  """Stacked `base` data, DCGAN G of `g_width`, D of `d_fraction` * `g_width`."""
  c.data = ml_collections.ConfigDict(dict(name='stacked', base=base,
                                          value_range=base.value_range))
  c.model.update(dict(name='dcgan', conditional=False, latent_dim=100,
                      base_width=g_width, d_base_width=max(1, int(g_width * d_fraction)),
                      batch_norm=True, out_activation='tanh'))
  c.loss = 'non_saturating'
  # Radford et al. 2015: Adam 2e-4, beta1 0.5.
  config_base.training(c, lr=2e-4, batch_size=64, num_steps=20_000, eval_every=2000)
  c.unroll.exact = True  # Metz et al. differentiate through D's updates.
  # VEEGAN / PacGAN count modes on 26,000 samples; the number depends on it.
  c.eval.num_samples = 26_000
  # A cache of classifiers by dataset: runs/classifiers/fashion_mnist here.
  c.eval.classifier = 'runs/classifiers'
  return c


def variant(c: ml_collections.ConfigDict, arg: str | None) -> ml_collections.ConfigDict:
  """'half' (D = 1/2 G), 'small' (G width 16, for CPU), 'quick' (smoke test), comma-joined."""
  args = set()
  config_base.apply_variants(c, arg, {name: lambda _, n=name: args.add(n)
                                      for name in ('half', 'small', 'quick')})
  fraction = 0.5 if 'half' in args else 0.25
  width = 16 if 'small' in args or 'quick' in args else c.model.base_width
  c.model.base_width = width
  c.model.d_base_width = max(1, int(width * fraction))
  if 'quick' in args:
    config_base.quick(c)
    c.eval.classifier = ''  # a smoke test needs no trained classifier.
  return c


def get_config(arg: str | None = None):
  c = config_base.get_base()
  base = ml_collections.ConfigDict(dict(
      name='fashion_mnist', dir='/usr/share/datasets/fashion-mnist', value_range=(-1.0, 1.0)))
  stacked(c, base)
  return variant(c, arg)
