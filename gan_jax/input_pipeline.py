"""Datasets as infinite numpy batch iterators, without TensorFlow.

The public face of `gan_jax/datasets/`: every dataset is selected by
`data_config.name`, looked up in the registry `gan_jax.datasets.REGISTRY`, and
served by one module there:

  * 'ring', 'grid' (datasets/mixtures.py): 2-D Gaussian mixtures with equal
    weights, drawn by the one JAX sampler (fresh, or from a finite training
    set). The label is the mode index.
  * 'idx' (datasets/idx.py): MNIST-format IDX files (`train-images-idx3-ubyte.gz`,
    ...) in `data_config.dir`. Alias 'fashion_mnist': Debian's
    `dataset-fashion-mnist`.
  * 'tfds' (datasets/tfds.py): `tfds.data_source(data_config.tfds_name)`, which
    reads prepared array_record data without TensorFlow. Alias 'mnist'.
  * 'stacked' (datasets/stacked.py): three independent images of a one-channel
    base dataset (`data_config.base`, itself an idx/tfds config) as the three
    channels: 1000 modes for a 10-class base (stacked MNIST; Metz et al. 2016,
    VEEGAN, PacGAN). Label = 100 * l1 + 10 * l2 + l3 (in general
    (l1 * C + l2) * C + l3).

Images are held in memory as one uint8 array; a batch is a gather with a slice of
a per-epoch permutation followed by one affine map to `value_range`
(datasets/images.py).

Multi-host: `batch_size` is the per-process batch, and process `i` of `P` reads
only the i-th of P equal contiguous shards of the split (the last `N mod P`
examples are dropped so that every process has the same epoch length).
Mixtures give every process an independent random stream instead.

A missing dataset raises FileNotFoundError saying how to get it; nothing is ever
substituted silently. How to add a dataset: see gan_jax/datasets/__init__.py.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from gan_jax import datasets
from gan_jax.datasets import idx as _idx
from gan_jax.datasets import images as _images
from gan_jax.datasets import mixtures as _mixtures
from gan_jax.datasets.base import Batch, DataConfig, DataInfo

__all__ = ['DataInfo', 'get_info', 'load_arrays', 'make_iterator',
           'mixture_modes', 'mixture_sampler', 'NAMES', 'MIXTURE_NAMES',
           'IMAGE_NAMES', 'KINDS', 'FASHION_MNIST_DIR', 'DEFAULT_VALUE_RANGE']

MIXTURE_NAMES = datasets.MIXTURE_NAMES
IMAGE_NAMES = datasets.IMAGE_NAMES
NAMES = datasets.NAMES
# What evaluation, plotting and the sweep branch on, never a dataset's name.
KINDS = datasets.KINDS
# Where Debian's `dataset-fashion-mnist` package puts its IDX files.
FASHION_MNIST_DIR = _idx.FASHION_MNIST_DIR
DEFAULT_VALUE_RANGE = _images.DEFAULT_VALUE_RANGE
# IDX file prefixes of the two MNIST splits.
IDX_SPLITS = _idx.IDX_SPLITS
read_idx = _idx.read_idx


def _mixture_source(data_config: DataConfig):
  source = datasets.source(data_config)
  if source.KIND != datasets.MIXTURE:
    raise ValueError(f'data.name={data_config.get("name")!r} is not a mixture; '
                     f'valid choices: {", ".join(MIXTURE_NAMES)}.')
  return source


def mixture_modes(data_config: DataConfig) -> tuple[np.ndarray, float]:
  """Mode centers (M, 2) float64 and the per-coordinate std (`mixtures.modes`)."""
  return _mixture_source(data_config).modes(data_config)


def mixture_mode_count(data_config: DataConfig) -> tuple[int, str]:
  """The number of modes M and the data field that sets it, without building them."""
  return _mixture_source(data_config).mode_count(data_config)


def mixture_sampler(data_config: DataConfig) -> _mixtures.Sampler:
  """The pure JAX `(key, n) -> batch` of a mixture (`mixtures.make_sampler`)."""
  return _mixture_source(data_config).make_sampler(data_config)


def get_info(data_config: DataConfig) -> DataInfo:
  """Shape of one example, number of classes/modes and value range.

  Cheap: for IDX it reads only a file header. For TFDS it opens the data source
  (so a dataset that is not prepared fails here, with how to prepare it).
  """
  return datasets.source(data_config).info(data_config)


def load_arrays(data_config: DataConfig,
                split: str) -> tuple[np.ndarray, np.ndarray]:
  """A whole split in memory: float32 images (N, *shape), int32 labels (N,).

  Images are scaled to `value_range`; for evaluation and for training the
  evaluation classifier. Stacked data has no natural finite split; this returns
  a fixed sample of N = len(base split) stacked images (channel k from its own
  permutation of the base split, seeded by `data.stacked_seed`, default 0).
  Mixtures are infinite: ValueError.
  """
  return datasets.source(data_config).arrays(data_config, split)


def make_iterator(data_config: DataConfig, *, split: str, batch_size: int,
                  seed: int, process_index: int = 0,
                  process_count: int = 1,
                  skip_batches: int = 0) -> Iterator[Batch]:
  """An infinite iterator of batches {'x': x, 'label': label}.

  x is float32 (batch_size, *get_info(data_config).shape), label int32
  (batch_size,). `batch_size` is per process; process `process_index` of
  `process_count` reads a disjoint, equal-sized contiguous shard of the split.
  Deterministic given (seed, process_index, split); images are reshuffled every
  epoch and batches run across epoch boundaries (every batch is full). The data
  are loaded and the config checked eagerly, before the first `next`.

  `skip_batches=k` yields exactly what dropping the first k batches would, for
  resuming: for images without gathering them (one permutation per skipped
  epoch), for mixtures by keying batch t with t (`mixtures.batches`).
  """
  if isinstance(batch_size, bool) or not isinstance(
      batch_size, (int, np.integer)) or batch_size < 1:
    raise ValueError(f'batch_size={batch_size!r} must be a positive integer.')
  if not 0 <= process_index < process_count:
    raise ValueError(f'process_index={process_index} must lie in '
                     f'[0, process_count={process_count}).')
  if not isinstance(seed, (int, np.integer)) or seed < 0:
    raise ValueError(f'seed={seed!r} must be a non-negative integer.')
  if not isinstance(skip_batches, (int, np.integer)) or skip_batches < 0:
    raise ValueError(
        f'skip_batches={skip_batches!r} must be a non-negative integer.')
  return datasets.source(data_config).batches(
      data_config, split=split, batch_size=int(batch_size), seed=int(seed),
      process_index=int(process_index), process_count=int(process_count),
      skip_batches=int(skip_batches))
