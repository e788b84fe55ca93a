"""Stacked MNIST (1000 modes; Metz et al. 2016, VEEGAN, PacGAN): DCGAN, D = 1/4 of G.

The published setting (see `stacked_fashion_mnist.py` for the protocol); needs
MNIST prepared for TFDS (see README), and its evaluation classifier:

  python -m gan_jax.classifier --dataset mnist
  python -m gan_jax.main --config experiments/stacked_mnist.py --workdir runs/stacked_mnist
  python -m gan_jax.main --config experiments/stacked_mnist.py:half --workdir runs/stacked_mnist_half \
      --config.unroll.steps=10
"""

import importlib.util
import os

import ml_collections
from ml_collections import config_dict

from gan_jax import config_base


def _twin():
  # The Fashion-MNIST twin sits next to this file; config files are loaded by
  # path, not as a package, so import it by path too.
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'stacked_fashion_mnist.py')
  spec = importlib.util.spec_from_file_location('stacked_fashion_mnist', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def get_config(arg: str | None = None):
  twin = _twin()
  c = config_base.get_base()
  base = ml_collections.ConfigDict(dict(
      name='mnist', tfds_name='mnist', tfds_data_dir=config_dict.placeholder(str),
      value_range=(-1.0, 1.0)))
  twin.stacked(c, base)
  return twin.variant(c, arg)
