"""Metz et al. 2016's stacked-MNIST mode collapse: D at 1/4 and 1/2 of G, unrolled K = 0/1/5/10.

  python -m gan_jax.sweep --config experiments/mode_collapse_stacked.py --workdir runs/stacked_sweep
  python -m gan_jax.sweep --config experiments/mode_collapse_stacked.py:quick --workdir /tmp/stacked_quick
  python -m gan_jax.sweep --config experiments/mode_collapse_stacked.py:mnist --workdir runs/stacked_mnist_sweep
  python -m gan_jax.main --config experiments/mode_collapse_stacked.py --workdir runs/stacked_one \
      --config.unroll.steps=5     # one seed of one variant, the same run the sweep makes

The sweep's variants are D size x K: D's base width at 1/4 and 1/2 of G's
(`model.d_base_width`; `model.base_width` is written into every variant so
that the names, and the published rows matched to them, say both), times
unrolling K in {0, 1, 5, 10}; every variant trains `sweep.num_seeds` seeds,
each an ordinary `gan_jax.main` run in <workdir>/runs/<variant>/seed_<s>
(gan_jax/image_seeds.py). results.md tabulates the stacked modes (of 1000),
KL(mode histogram || uniform), the classifier Fréchet distance and score, with
Metz et al.'s Table 2 beside the rows of the default G width.

Taken from Metz et al. (arXiv:1611.02163, section 3.3 and table 2, as far as
this file's author knows the paper; check its appendix before quoting):
  * the data: three MNIST digits as the three channels of one 28 x 28 image,
    10^3 = 1000 modes;
  * a DCGAN-style G and D (strided transposed convs / convs, BatchNorm), with
    D made weaker than G to provoke collapse: 1/4 and 1/2 of G's size, read
    here as the base channel count (D's conv widths w, 2w against G's 2g, g);
  * unrolling K = 0, 1, 5, 10, differentiating through D's K updates
    (`unroll.exact=True`);
  * modes counted by classifying each channel with a pretrained classifier,
    and KL(model's mode histogram || uniform), their "reverse KL";
  * PUBLISHED: Table 2's modes and KL per D size and K (± in the table is
    their spread over runs; not reproduced here).
Not verified against the paper and chosen here (DCGAN / VEEGAN / PacGAN
practice or the CPU budget of a 2-core machine):
  * Fashion-MNIST as the base data by default: offline (Debian's
    `dataset-fashion-mnist` at /usr/share/datasets/fashion-mnist); Metz used
    MNIST, which is ':mnist' here (needs MNIST prepared for TFDS, see README).
    Fashion-MNIST's classes are harder to tell apart than digits, so mode
    counts are not comparable to the published MNIST rows, only their trend;
  * G base width 32 (DCGAN uses 64; `--config.model.base_width=64` gives D
    widths 16 / 32 and no published column, whose rows are keyed to 32),
    latent 100 ~ N(0, I), non-saturating loss, Adam 2e-4 / beta1 0.5 for both
    players and batch 64 (Radford et al.'s DCGAN settings);
  * 5,000 steps and 3 seeds (budget; the lookahead makes K = 10 about 11 D
    passes per step);
  * 26,000 evaluation samples (VEEGAN / PacGAN's count for stacked MNIST);
  * the evaluation classifier follows config.eval.classifier (the cache
    runs/classifiers, shared with experiments/stacked_fashion_mnist.py and
    the CGAN configs); a missing one is trained (4 epochs,
    eval.train_classifier_epochs) once, before the first seed.
':quick' is a smoke test CI can run: G width 8 (D 2 / 4), 4 steps of batch 8,
K in {0, 1}, one seed, no classifier (samples and curves only); 48 s for the
4 runs on this shared 2-core machine at load average 3.5, mostly compilation.
"""

import importlib.util
import os

import ml_collections
from ml_collections import config_dict

from gan_jax import config_base

D_FRACTIONS = (0.25, 0.5)     # D's width / G's width (Metz et al. table 2)
UNROLL_STEPS = (0, 1, 5, 10)  # K (Metz et al. table 2)
QUICK_UNROLL_STEPS = (0, 1)
G_WIDTH = 32

# Metz et al. 2016, Table 2 (stacked MNIST; their G and D): (overrides a variant
# must contain, source, modes covered, KL(modes || uniform)). Keyed to this
# file's default G width, so another width shows no published rows rather than
# wrong ones.
_TABLE_2 = {
    (0.25, 0): (30.6, 5.99), (0.25, 1): (65.4, 5.911), (0.25, 5): (236.4, 4.67),
    (0.25, 10): (327.2, 4.66),
    (0.5, 0): (628.0, 2.58), (0.5, 1): (523.6, 2.44), (0.5, 5): (732.0, 1.66),
    (0.5, 10): (817.4, 1.43),
}
PUBLISHED = [
    ({'model.base_width': G_WIDTH, 'model.d_base_width': int(G_WIDTH * f),
      'unroll.steps': k},
     f'Metz et al. Table 2 (MNIST), {"1/4" if f == 0.25 else "1/2"} D, K = {k}', modes, kl)
    for (f, k), (modes, kl) in _TABLE_2.items()
]


def _twin():
  # experiments/stacked_fashion_mnist.py holds the stacked-data DCGAN config;
  # config files are loaded by path, not as a package, so import it by path.
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'stacked_fashion_mnist.py')
  spec = importlib.util.spec_from_file_location('stacked_fashion_mnist', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def get_config(arg: str | None = None):
  """The budget protocol; variants 'mnist' (stacked MNIST via TFDS), 'quick', comma-joined."""
  args = set()
  c = config_base.get_base()
  config_base.apply_variants(c, arg,
                             {name: lambda _, n=name: args.add(n) for name in ('mnist', 'quick')})
  if 'mnist' in args:
    base = ml_collections.ConfigDict(dict(
        name='mnist', tfds_name='mnist', tfds_data_dir=config_dict.placeholder(str),
        value_range=(-1.0, 1.0)))
  else:
    base = ml_collections.ConfigDict(dict(
        name='fashion_mnist', dir='/usr/share/datasets/fashion-mnist', value_range=(-1.0, 1.0)))
  _twin().stacked(c, base, g_width=G_WIDTH, d_fraction=D_FRACTIONS[0])
  c.train.update(dict(num_steps=5000, eval_every=2500, checkpoint_every=500,
                      sample_every=500))
  c.eval.train_classifier_epochs = 4
  c.sweep = ml_collections.ConfigDict(dict(protocol='budget', num_seeds=3))
  if 'quick' in args:
    c.model.update(dict(base_width=8, d_base_width=2, latent_dim=16))
    c.train.update(dict(batch_size=8, num_steps=4, log_every=2, eval_every=4,
                        checkpoint_every=4, sample_every=0))
    c.eval.num_samples = 100
    c.eval.classifier = ''  # a smoke test needs no trained classifier
    c.eval.train_classifier_epochs = 0
    c.sweep.protocol = 'quick'
    c.sweep.num_seeds = 1
  if 'mnist' in args:
    c.sweep.protocol += ', stacked MNIST'
  return c


def sweep(add, config):
  """D size (1/4, 1/2 of G's base width) x unrolling K; ':quick': K in {0, 1}."""
  g_width = int(config.model.base_width)
  ks = QUICK_UNROLL_STEPS if config.sweep.protocol.startswith('quick') else UNROLL_STEPS
  for fraction in D_FRACTIONS:
    for k in ks:
      add(**{'model.base_width': g_width, 'model.d_base_width': max(1, int(g_width * fraction)),
             'unroll.steps': k})
