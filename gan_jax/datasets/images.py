"""Helpers shared by the image sources (idx, tfds, stacked).

An image source holds a split in memory as one uint8 array (N, H, W, C); a
batch is a gather with a slice of a per-epoch permutation followed by one affine
map to `value_range`, so the cost of a batch is a few memcpy-sized numpy ops,
never a Python loop over examples.

Multi-host: `batch_size` is the per-process batch, and process `i` of `P` reads
only the i-th of P equal contiguous shards of the split (the last `N mod P`
examples are dropped so that every process has the same epoch length).

A source whose module defines `image_info(cfg) -> (shape, num_classes)` and
`uint8_arrays(cfg, split) -> (uint8 images, int32 labels)` gets `info`, `arrays`
and `batches` from `info`, `arrays` and `batches` below, and can be the base of
'stacked'.
"""

from __future__ import annotations

import zlib
from typing import Callable, Iterator

import numpy as np

from gan_jax.datasets.base import IMAGE, Batch, DataConfig, DataInfo

KIND = IMAGE
DEFAULT_VALUE_RANGE = (-1.0, 1.0)

ImageInfo = Callable[[DataConfig], tuple[tuple[int, ...], int]]
Uint8Arrays = Callable[[DataConfig, str], tuple[np.ndarray, np.ndarray]]
ScaleFn = Callable[[np.ndarray], np.ndarray]


# ---------------------------------------------------------------------------
# Config parsing.
# ---------------------------------------------------------------------------


def value_range(data_config: DataConfig,
                fallback=None) -> tuple[float, float]:
  """data.value_range, else `fallback` (if not None), else (-1, 1)."""
  value_range = data_config.get('value_range')
  if value_range is None:
    value_range = fallback
  if value_range is None:
    value_range = DEFAULT_VALUE_RANGE
  try:
    lo, hi = (float(v) for v in value_range)
  except (TypeError, ValueError) as e:
    raise ValueError(
        f'data.value_range={value_range!r} must be a pair (lo, hi), e.g. '
        '(-1., 1.) for tanh or (0., 1.) for sigmoid generators.') from e
  if not lo < hi:
    raise ValueError(f'data.value_range={value_range!r} needs lo < hi.')
  return lo, hi


def positive(data_config: DataConfig, field: str, default: float,
             *, integer: bool = False, allow_zero: bool = False) -> float:
  value = data_config.get(field, default)
  ok = (isinstance(value, (int, np.integer)) if integer
        else isinstance(value, (int, float, np.number)))
  ok = ok and not isinstance(value, bool) and (
      value >= 0 if allow_zero else value > 0)
  if not ok:
    kind = 'integer' if integer else 'number'
    bound = '>= 0' if allow_zero else '> 0'
    raise ValueError(
        f'data.{field}={value!r} must be a {kind} {bound} '
        f'(data.name={data_config.get("name")!r}).')
  return int(value) if integer else float(value)


def data_info(shape: tuple[int, ...], num_classes: int,
              data_value_range: tuple[float, float]) -> DataInfo:
  return DataInfo(shape=tuple(int(d) for d in shape),
                  num_classes=int(num_classes),
                  value_range=data_value_range, kind=KIND)


# ---------------------------------------------------------------------------
# Scaling, shuffling, sharding.
# ---------------------------------------------------------------------------


def scaler(data_value_range: tuple[float, float]) -> ScaleFn:
  """Maps pixels [0, 255] (already cast to float32) to [lo, hi], in place."""
  lo, hi = data_value_range
  scale, offset = np.float32((hi - lo) / 255.0), np.float32(lo)

  def scale_fn(x: np.ndarray) -> np.ndarray:
    x *= scale
    x += offset
    return x

  return scale_fn


def stream_rng(seed: int, process_index: int,
               split: str) -> np.random.Generator:
  """Independent streams per process and per split (crc32: stable across
  runs, unlike hash())."""
  return np.random.default_rng(
      [int(seed), int(process_index), zlib.crc32(split.encode())])


def shard(images: np.ndarray, labels: np.ndarray, split: str,
          process_index: int, process_count: int
          ) -> tuple[np.ndarray, np.ndarray]:
  """Process `process_index`'s contiguous 1/process_count of the split."""
  per_process = len(images) // process_count
  if per_process < 1:
    raise ValueError(f'Split {split!r} has {len(images)} examples, fewer than '
                     f'process_count={process_count}.')
  shard = slice(process_index * per_process, (process_index + 1) * per_process)
  return images[shard], labels[shard]


def index_batches(n: int, batch_size: int, rng: np.random.Generator,
                  skip: int) -> Iterator[np.ndarray]:
  """Slices of back-to-back permutations of range(n): a new shuffle per epoch.

  Starts at batch `skip` by drawing only the permutations of the skipped epochs,
  in the order consuming them would.
  """
  epoch, pos = divmod(skip * batch_size, n)
  perm = rng.permutation(n)
  for _ in range(epoch):
    perm = rng.permutation(n)
  while True:
    if n - pos >= batch_size:
      yield perm[pos:pos + batch_size]
      pos += batch_size
      continue
    parts, need = [perm[pos:]], batch_size - (n - pos)
    while need > 0:
      perm = rng.permutation(n)
      pos = min(need, n)
      parts.append(perm[:pos])
      need -= pos
    yield np.concatenate(parts)


def _image_batches(images: np.ndarray, labels: np.ndarray, scale_fn: ScaleFn,
                   batch_size: int, rng: np.random.Generator,
                   skip: int) -> Iterator[Batch]:
  for idx in index_batches(len(images), batch_size, rng, skip):
    yield {'x': scale_fn(np.take(images, idx, axis=0).astype(np.float32)),
           'label': np.take(labels, idx)}


# ---------------------------------------------------------------------------
# The source interface of a plain image source, from its two functions.
# ---------------------------------------------------------------------------


def info(data_config: DataConfig, image_info: ImageInfo) -> DataInfo:
  shape, num_classes = image_info(data_config)
  return data_info(shape, num_classes, value_range(data_config))


def arrays(data_config: DataConfig, split: str,
           uint8_arrays: Uint8Arrays) -> tuple[np.ndarray, np.ndarray]:
  scale_fn = scaler(value_range(data_config))
  images, labels = uint8_arrays(data_config, split)
  return scale_fn(images.astype(np.float32)), labels


def batches(data_config: DataConfig, uint8_arrays: Uint8Arrays, *, split: str,
            batch_size: int, seed: int, process_index: int,
            process_count: int, skip_batches: int) -> Iterator[Batch]:
  rng = stream_rng(seed, process_index, split)
  scale_fn = scaler(value_range(data_config))
  images, labels = uint8_arrays(data_config, split)
  images, labels = shard(images, labels, split, process_index, process_count)
  return _image_batches(images, labels, scale_fn, batch_size, rng,
                        skip_batches)


class ImageSource:
  """The source interface of a plain image source, given its two raw functions.

  `image_info(cfg) -> (shape, num_classes)` and `uint8_arrays(cfg, split)` are
  all an image source has of its own (idx.py, tfds.py); `info`, `arrays` and
  `batches` are the same for all of them:

      info, arrays, batches = images.ImageSource(image_info, uint8_arrays).interface()
  """

  def __init__(self, image_info_fn: ImageInfo, uint8_arrays_fn: Uint8Arrays):
    self._image_info = image_info_fn
    self._uint8_arrays = uint8_arrays_fn

  def info(self, data_config: DataConfig) -> DataInfo:
    return info(data_config, self._image_info)

  def arrays(self, data_config: DataConfig, split: str):
    return arrays(data_config, split, self._uint8_arrays)

  def batches(self, data_config: DataConfig, *, split: str, batch_size: int, seed: int,
              process_index: int, process_count: int, skip_batches: int):
    return batches(data_config, self._uint8_arrays, split=split, batch_size=batch_size,
                   seed=seed, process_index=process_index, process_count=process_count,
                   skip_batches=skip_batches)

  def interface(self):
    return self.info, self.arrays, self.batches
