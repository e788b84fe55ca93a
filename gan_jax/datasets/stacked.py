"""'stacked': three base images as the three channels, C**3 modes.

Three independent images of a one-channel base dataset (`data.base`, itself the
config of an image source with `uint8_arrays`: idx, tfds, fashion_mnist, mnist)
become the three channels: 1000 modes for a 10-class base (stacked MNIST; Metz
et al. 2016, VEEGAN, PacGAN). Label = 100 * l1 + 10 * l2 + l3, in general
(l1 * C + l2) * C + l3. `data.value_range` defaults to the base's.

Training batches draw each channel from its own epoch stream. Stacked data has
no natural finite split: `arrays` returns a fixed sample of N = len(base split)
stacked images (channel k from its own permutation of the base split, seeded by
`data.stacked_seed`, default 0).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from gan_jax.datasets import images as images_lib
from gan_jax.datasets.base import Batch, DataConfig, DataInfo

KIND = images_lib.KIND
NAMES = ('stacked',)


def _base(data_config: DataConfig):
  """(base config, its source module); the base must be a plain image source."""
  # The registry imports this module, so it is imported here, when called.
  from gan_jax import datasets  # pylint: disable=g-import-not-at-top
  base = data_config.get('base')
  source = None if base is None else datasets.source(base)
  if not hasattr(source, 'uint8_arrays'):
    raise ValueError(
        "data.name='stacked' needs data.base, an image data config with name "
        f'in {list(datasets.STACKABLE_NAMES)}; got '
        f'{None if base is None else base.get("name")!r}.')
  return base, source


def _value_range(data_config: DataConfig) -> tuple[float, float]:
  return images_lib.value_range(
      data_config, fallback=(data_config.get('base') or {}).get('value_range'))


def _check_one_channel(shape: tuple[int, ...]) -> None:
  if shape[-1] != 1:
    raise ValueError(f'Stacked data needs a one-channel base; its images have '
                     f'shape {shape}.')


def _stack(images: np.ndarray, labels: np.ndarray, num_base_classes: int,
           indices: tuple[np.ndarray, np.ndarray, np.ndarray], scale_fn
           ) -> tuple[np.ndarray, np.ndarray]:
  """Channel k of example b is base image indices[k][b]; label in base C**3."""
  # Gathers land directly in a float32 channel-last array: strided uint8 writes
  # followed by a cast were ~2x slower at batch 1024.
  x = np.empty((len(indices[0]),) + images.shape[1:-1] + (3,), np.float32)
  label = np.zeros((len(indices[0]),), np.int32)
  for k, idx in enumerate(indices):
    x[..., k] = np.take(images[..., 0], idx, axis=0)
    label = label * num_base_classes + np.take(labels, idx)
  return scale_fn(x), label


def _stacked_batches(images: np.ndarray, labels: np.ndarray,
                     num_base_classes: int, scale_fn, batch_size: int,
                     rng: np.random.Generator, skip: int) -> Iterator[Batch]:
  # Three independent epoch streams, one per channel.
  streams = [images_lib.index_batches(len(images), batch_size, r, skip)
             for r in rng.spawn(3)]
  for indices in zip(*streams):
    x, label = _stack(images, labels, num_base_classes, indices, scale_fn)
    yield {'x': x, 'label': label}


# ---------------------------------------------------------------------------
# The source interface (gan_jax/datasets/__init__.py).
# ---------------------------------------------------------------------------


def info(data_config: DataConfig) -> DataInfo:
  base, source = _base(data_config)
  shape, num_classes = source.image_info(base)
  _check_one_channel(shape)
  return images_lib.data_info(shape[:-1] + (3,), num_classes**3,
                              _value_range(data_config))


def arrays(data_config: DataConfig,
           split: str) -> tuple[np.ndarray, np.ndarray]:
  scale_fn = images_lib.scaler(_value_range(data_config))
  base, source = _base(data_config)
  images, labels = source.uint8_arrays(base, split)
  _check_one_channel(images.shape)
  _, num_base_classes = source.image_info(base)
  rng = np.random.default_rng(int(data_config.get('stacked_seed', 0)))
  indices = tuple(r.permutation(len(images)) for r in rng.spawn(3))
  return _stack(images, labels, num_base_classes, indices, scale_fn)


def batches(data_config: DataConfig, *, split: str, batch_size: int, seed: int,
            process_index: int, process_count: int,
            skip_batches: int) -> Iterator[Batch]:
  rng = images_lib.stream_rng(seed, process_index, split)
  scale_fn = images_lib.scaler(_value_range(data_config))
  base, source = _base(data_config)
  images, labels = source.uint8_arrays(base, split)
  images, labels = images_lib.shard(images, labels, split, process_index,
                                    process_count)
  _check_one_channel(images.shape)
  _, num_base_classes = source.image_info(base)
  return _stacked_batches(images, labels, num_base_classes, scale_fn,
                          batch_size, rng, skip_batches)
