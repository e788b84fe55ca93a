"""Vanishing gradients (Arjovsky & Bottou 2017, Figs. 1-3) on Fashion-MNIST, CPU-sized.

  python -m gan_jax.vanishing --config experiments/vanishing_gradients.py --workdir runs/vanishing
  python -m gan_jax.vanishing --config experiments/vanishing_gradients.py:quick --workdir /tmp/vanishing_quick

The paper trains a DCGAN for 1, 10 and 25 epochs, then a fresh D for 4,000
iterations against each frozen G. Here, the CPU-sized equivalent: seed 004's
dense GAN (experiments/gan_fashion_mnist.py: G 100-64-128-256-784 tanh, D
256-128-64 LeakyReLU + dropout; non-saturating loss, Adam 2e-4 / b1 0.5, batch 64)
trained for 250, 1,000 and 4,000 steps (0.27, 1.1 and 4.3 epochs of the 60,000
images), then a fresh D (same net, same Adam) for 2,000 updates, probed every
20 (the remedies every 500), 3 seeds. The protocol is `gan_jax.vanishing`;
`remedies(add)` below lists the D-side options compared on the same checkpoints.
"""

import ml_collections

from gan_jax import config_base


def get_config(arg: str | None = None):
  c = config_base.get_base()
  config_base.images(c, 'fashion_mnist', value_range=(-1.0, 1.0))  # tanh generator.
  config_base.mlp_gan(c)
  c.loss = 'non_saturating'
  config_base.training(c, lr=2e-4, batch_size=64, num_steps=4000, eval_every=1000)
  c.vanishing = ml_collections.ConfigDict(dict(
      budgets=(250, 1000, 4000),   # G training steps (phase 1 trains to the largest).
      num_seeds=3,                 # config.seed, config.seed + 1, ...
      d_steps=2000,                # fresh-D updates against each frozen G (paper: 4,000).
      log_every=20,                # a probe every this many D updates (and at 0).
      remedy_log_every=500,        # the remedies' tables need the start and the end only.
      probe_batch=256,             # reals and latents of the fixed probe batch.
      table_steps=(0, 20, 100, 500, 2000)))
  return config_base.apply_variants(c, arg, {'quick': quick})


def quick(c: ml_collections.ConfigDict) -> None:
  """CI-sized: small nets, 2 seeds, budgets of 4 and 8 steps, 20 D updates."""
  config_base.quick(c)
  c.model.update(dict(g_widths=(16,), d_widths=(16,), d_dropout=(0.0,), latent_dim=8))
  c.train.num_steps = 8
  c.vanishing.update(dict(budgets=(4, 8), num_seeds=2, d_steps=20, log_every=5,
                          remedy_log_every=20, probe_batch=16, table_steps=(0, 20)))


def remedies(add):
  """The D-side options compared on the same frozen-G checkpoints (flattened overrides).

  Minimax vs non-saturating needs no run of its own: every probe measures both G
  losses on the same D. Salimans et al. 2016's one-sided smoothing (real target
  0.9), its two-sided form (fake target 0.1 too), instance noise (Sonderby et al.
  2016; constant std 0.1 on images in [-1, 1], gradients probed on clean
  samples) and R1 (Mescheder et al. 2018, gamma 1).
  """
  add(label_smoothing=0.1)
  add(label_smoothing=0.1, label_smoothing_fake=0.1)
  add(**{'instance_noise.std': 0.1})
  add(**{'penalty.r1': 1.0})
