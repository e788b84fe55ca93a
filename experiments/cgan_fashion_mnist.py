"""Conditional GAN (Mirza & Osindero 2014 maxout MLPs, seed 000) on Fashion-MNIST (IDX files from Debian's dataset-fashion-mnist).

D also sees real images with a wrong label as fake (matching-aware, seed 000),
and trains on noisy targets 1 - |N(0, 0.05^2)| / |N(0, 0.05^2)| as seed 000 does.
Every eval period 10,000 samples (labels 0..9 equally often) are scored by the
evaluation classifier: label accuracy, class coverage / KL, and a Frechet
distance in the classifier's features against 10,000 test images. Train the
classifier once first (`:quick` runs without it):

  python -m gan_jax.classifier --dataset fashion_mnist

  python -m gan_jax.main --config experiments/cgan_fashion_mnist.py --workdir runs/cgan_fashion_mnist
  python -m gan_jax.main --config experiments/cgan_fashion_mnist.py --workdir runs/cgan_fashion_mnist_wgp \
      --config.loss=wasserstein_gp --config.label_noise=0.0
  python -m gan_jax.main --config experiments/cgan_fashion_mnist.py:quick --workdir runs/cgan_fashion_mnist_quick
"""

from gan_jax import config_base


def get_config(arg: str | None = None):
  c = config_base.get_base()
  config_base.images(c, 'fashion_mnist', value_range=(0.0, 1.0))  # sigmoid generator.
  config_base.cgan_mlp(c)
  c.loss = 'non_saturating'
  c.matching_aware = True
  c.label_noise = 0.05
  # 10,000 steps of 100: ~17 epochs of the 60,000 training images.
  config_base.training(c, lr=2e-4, batch_size=100, num_steps=10_000, eval_every=2000)
  c.eval.num_samples = 10_000
  c.eval.classifier = 'runs/classifiers'  # runs/classifiers/fashion_mnist

  def quick(c):
    config_base.quick(c)
    c.eval.classifier = ''  # a smoke test needs no trained classifier.

  return config_base.apply_variants(c, arg, {'quick': quick})
