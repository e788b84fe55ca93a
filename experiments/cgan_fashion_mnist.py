"""Conditional GAN (Mirza & Osindero 2014 maxout MLPs, seed 000) on Fashion-MNIST (IDX files from Debian's dataset-fashion-mnist).

D also sees real images with a wrong label as fake (matching-aware, seed 000),
and trains on noisy targets 1 - |N(0, 0.05^2)| / |N(0, 0.05^2)| as seed 000 does.
G's parameters also have an EMA (decay 0.999), evaluated beside the raw G.

Default (the README's main job, under 5 minutes on 2 CPU cores): 4,500 steps of 100;
a sample grid and curves.png every 500 steps; at the end 10,000 samples (labels
0..9 equally often) are scored by the evaluation classifier: label accuracy, class
coverage / KL, a Frechet distance in the classifier's features against 10,000 test
images, KID, precision / recall, density / coverage, classifier score. When the
classifier cache (runs/classifiers) has none for Fashion-MNIST, the run trains one
(1 epoch) right before that evaluation, so the first pictures come at once.

  python -m gan_jax.main --config experiments/cgan_fashion_mnist.py
  python -m gan_jax.main --config experiments/cgan_fashion_mnist.py:full     # 10,000 steps, evaluated every 2,000
  python -m gan_jax.main --config experiments/cgan_fashion_mnist.py --workdir runs/cgan_fashion_mnist_wgp \
      --config.loss=wasserstein_gp --config.label_noise=0.0
  python -m gan_jax.main --config experiments/cgan_fashion_mnist.py:quick   # smoke test, no classifier

A classifier trained longer (`python -m gan_jax.classifier --dataset fashion_mnist`,
4 epochs) into the cache before the run is used instead.
"""

from gan_jax import config_base


def get_config(arg: str | None = None):
  c = config_base.get_base()
  config_base.images(c, 'fashion_mnist', value_range=(0.0, 1.0))  # sigmoid generator.
  config_base.cgan_mlp(c)
  c.loss = 'non_saturating'
  c.matching_aware = True
  c.label_noise = 0.05
  # 4,500 steps of 100: ~7.5 epochs of the 60,000 training images.
  config_base.training(c, lr=2e-4, batch_size=100, num_steps=4500, eval_every=4500)
  c.train.sample_every = 500
  c.ema_decay = 0.999
  c.eval.num_samples = 10_000
  c.eval.classifier = 'runs/classifiers'  # runs/classifiers/fashion_mnist
  c.eval.train_classifier_epochs = 1

  def full(c):
    # The first round's 10k-step run, evaluated every 2,000 steps.
    c.train.update(dict(num_steps=10_000, eval_every=2000, checkpoint_every=2000))

  def quick(c):
    config_base.quick(c)
    c.train.sample_every = 0
    c.eval.classifier = ''  # a smoke test needs no trained classifier.

  return config_base.apply_variants(c, arg, {'full': full, 'quick': quick})
