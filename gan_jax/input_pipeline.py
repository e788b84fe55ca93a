"""Datasets as infinite numpy batch iterators, without TensorFlow.

Every dataset is selected by `data_config.name`:

  * 'ring', 'grid': 2-D Gaussian mixtures with equal weights, drawn by the one
    JAX sampler of `gan_jax/datasets/mixtures.py` (fresh, or from a finite
    training set). The label is the mode index.
  * 'idx': MNIST-format IDX files (`train-images-idx3-ubyte.gz`, ...) in
    `data_config.dir`. Alias 'fashion_mnist': Debian's `dataset-fashion-mnist`.
  * 'tfds': `tfds.data_source(data_config.tfds_name)`, which reads prepared
    array_record data without TensorFlow. Alias 'mnist'.
  * 'stacked': three independent images of a one-channel base dataset
    (`data_config.base`, itself an idx/tfds config) as the three channels:
    1000 modes for a 10-class base (stacked MNIST; Metz et al. 2016, VEEGAN,
    PacGAN). Label = 100 * l1 + 10 * l2 + l3 (in general (l1 * C + l2) * C + l3).

Images are held in memory as one uint8 array; a batch is a gather with a slice of
a per-epoch permutation followed by one affine map to `value_range`, so the cost
of a batch is a few memcpy-sized numpy ops, never a Python loop over examples.

Multi-host: `batch_size` is the per-process batch, and process `i` of `P` reads
only the i-th of P equal contiguous shards of the split (the last `N mod P`
examples are dropped so that every process has the same epoch length).
Mixtures give every process an independent random stream instead.

A missing dataset raises FileNotFoundError saying how to get it; nothing is ever
substituted silently.
"""

from __future__ import annotations

import dataclasses
import gzip
import math
import os
import zlib
from typing import Any, Iterator

import numpy as np

from gan_jax.datasets import mixtures

# An ml_collections.ConfigDict, or any mapping with `.get` (e.g. a dict).
DataConfig = Any
Batch = dict[str, np.ndarray]

MIXTURE_NAMES = mixtures.NAMES
IMAGE_NAMES = ('idx', 'tfds', 'stacked', 'fashion_mnist', 'mnist')
NAMES = MIXTURE_NAMES + IMAGE_NAMES
# What evaluation, plotting and the sweep branch on, never a dataset's name.
KINDS = (mixtures.KIND, 'image')
# Where Debian's `dataset-fashion-mnist` package puts its IDX files.
FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist'
DEFAULT_VALUE_RANGE = (-1.0, 1.0)
# IDX file prefixes of the two MNIST splits.
IDX_SPLITS = {'train': 'train', 'test': 't10k'}
# IDX type codes (third magic byte) -> big-endian numpy dtypes.
_IDX_DTYPES = {0x08: '>u1', 0x09: '>i1', 0x0B: '>i2', 0x0C: '>i4',
               0x0D: '>f4', 0x0E: '>f8'}


@dataclasses.dataclass(frozen=True)
class DataInfo:
  """Static description of a dataset, enough to build models and metrics.

  Attributes:
    shape: one example, e.g. (2,) for mixtures, (28, 28, 1) for MNIST,
      (28, 28, 3) for stacked MNIST.
    kind: 'mixture' (2-D points, mode metrics) or 'image' (pictures,
      classifier metrics).
    num_classes: labels lie in [0, num_classes): the class, the mixture mode
      index, or C**3 (1000) for stacked data.
    value_range: images are scaled from uint8 [0, 255] to this interval. For
      mixtures, whose samples are unbounded, it is the box of the mode centers
      padded by 4 std on each side: a plotting window, not a hard bound.
  """
  shape: tuple[int, ...]
  num_classes: int
  value_range: tuple[float, float]
  kind: str

  @property
  def is_mixture(self) -> bool:
    return self.kind == mixtures.KIND


# ---------------------------------------------------------------------------
# Config parsing.
# ---------------------------------------------------------------------------


def _name(data_config: DataConfig) -> str:
  name = data_config.get('name')
  if name not in NAMES:
    raise ValueError(
        f'Unknown data.name={name!r}; valid names are {list(NAMES)}.')
  return name


def _kind(data_config: DataConfig) -> str:
  """The canonical kind: aliases 'fashion_mnist' -> 'idx', 'mnist' -> 'tfds'."""
  return {'fashion_mnist': 'idx', 'mnist': 'tfds'}.get(
      _name(data_config), _name(data_config))


def _value_range(data_config: DataConfig) -> tuple[float, float]:
  value_range = data_config.get('value_range')
  if value_range is None and _name(data_config) == 'stacked':
    value_range = (data_config.get('base') or {}).get('value_range')
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


def _positive(data_config: DataConfig, field: str, default: float,
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


# ---------------------------------------------------------------------------
# 2-D Gaussian mixtures: gan_jax/datasets/mixtures.py.
# ---------------------------------------------------------------------------


def mixture_modes(data_config: DataConfig) -> tuple[np.ndarray, float]:
  """Mode centers (M, 2) float64 and the per-coordinate std (`mixtures.modes`)."""
  _name(data_config)
  return mixtures.modes(data_config)


# ---------------------------------------------------------------------------
# IDX files.
# ---------------------------------------------------------------------------


def _idx_dir(data_config: DataConfig) -> str:
  directory = data_config.get('dir')
  if directory is None and _name(data_config) == 'fashion_mnist':
    directory = FASHION_MNIST_DIR
  if not directory:
    raise ValueError("data.name='idx' needs data.dir, the folder holding "
                     'train-images-idx3-ubyte.gz and the other IDX files.')
  return os.path.expanduser(str(directory))


def _idx_missing(directory: str, split: str) -> FileNotFoundError:
  prefix = IDX_SPLITS[split]
  return FileNotFoundError(
      f'IDX files for split {split!r} not found in {directory!r} (looked for '
      f'{prefix}-images-idx3-ubyte[.gz] and {prefix}-labels-idx1-ubyte[.gz]). '
      'To get Fashion-MNIST: `apt-get install dataset-fashion-mnist` (it '
      f"installs to {FASHION_MNIST_DIR}; use data.name='fashion_mnist'). For "
      'MNIST, put the four IDX files (train-images-idx3-ubyte.gz, '
      'train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, '
      f't10k-labels-idx1-ubyte.gz; compressed or not) in {directory!r}.')


def _idx_path(directory: str, split: str, kind: str) -> str:
  """The images/labels file of a split; accepts .gz or not, '-' or '.'."""
  if split not in IDX_SPLITS:
    raise ValueError(f'Unknown split {split!r} for IDX data; valid splits are '
                     f'{list(IDX_SPLITS)}.')
  ndim = 3 if kind == 'images' else 1
  prefix = IDX_SPLITS[split]
  for sep in ('-', '.'):
    for ext in ('.gz', ''):
      path = os.path.join(directory, f'{prefix}-{kind}{sep}idx{ndim}-ubyte{ext}')
      if os.path.isfile(path):
        return path
  raise _idx_missing(directory, split)


def _open(path: str):
  return gzip.open(path, 'rb') if path.endswith('.gz') else open(path, 'rb')


def _idx_header(path: str, data: bytes) -> tuple[np.dtype, tuple[int, ...]]:
  if len(data) < 4 or data[0] or data[1] or data[2] not in _IDX_DTYPES:
    raise ValueError(f'{path} is not an IDX file (bad magic number '
                     f'{data[:4].hex()!r}; expected 0000 + type code + ndim).')
  ndim = data[3]
  if len(data) < 4 + 4 * ndim:
    raise ValueError(f'{path}: truncated IDX header.')
  dims = tuple(int(d) for d in np.frombuffer(data, '>u4', ndim, offset=4))
  return np.dtype(_IDX_DTYPES[data[2]]), dims


def _read_idx_header(path: str) -> tuple[np.dtype, tuple[int, ...]]:
  with _open(path) as f:
    head = f.read(4)
    head += f.read(4 * head[3]) if len(head) == 4 else b''
  return _idx_header(path, head)


def read_idx(path: str) -> np.ndarray:
  """Reads an IDX file (optionally gzipped) into a read-only numpy array.

  Format (LeCun et al., the MNIST database): two zero bytes, a type code
  (0x08 = uint8, ...), the number of dimensions n, n big-endian uint32 sizes,
  then the data in C order.
  """
  with _open(path) as f:
    data = f.read()
  dtype, dims = _idx_header(path, data)
  offset = 4 + 4 * len(dims)
  if len(data) != offset + math.prod(dims) * dtype.itemsize:
    raise ValueError(f'{path}: {len(data) - offset} data bytes, but the header '
                     f'says {dims} x {dtype.itemsize} bytes.')
  return np.frombuffer(data, dtype, offset=offset).reshape(dims)


def _image_shape(dims: tuple[int, ...], path: str) -> tuple[int, ...]:
  if len(dims) == 3:
    return dims[1:] + (1,)
  if len(dims) == 4:
    return dims[1:]
  raise ValueError(f'{path}: images must have 3 or 4 dimensions (N, H, W[, C]), '
                   f'got {dims}.')


def _idx_info(data_config: DataConfig) -> tuple[tuple[int, ...], int]:
  path = _idx_path(_idx_dir(data_config), 'train', 'images')
  _, dims = _read_idx_header(path)
  return (_image_shape(dims, path),
          _positive(data_config, 'num_classes', 10, integer=True))


def _idx_arrays(data_config: DataConfig,
                split: str) -> tuple[np.ndarray, np.ndarray]:
  directory = _idx_dir(data_config)
  images_path = _idx_path(directory, split, 'images')
  labels_path = _idx_path(directory, split, 'labels')
  images, labels = read_idx(images_path), read_idx(labels_path)
  if images.dtype != np.uint8:
    raise ValueError(f'{images_path}: images must be uint8 in [0, 255], got '
                     f'{images.dtype}.')
  if labels.ndim != 1 or len(labels) != len(images):
    raise ValueError(f'{labels_path}: labels shape {labels.shape} does not '
                     f'match {len(images)} images in {images_path}.')
  num_classes = _positive(data_config, 'num_classes', 10, integer=True)
  if len(labels) and not 0 <= labels.min() <= labels.max() < num_classes:
    raise ValueError(f'{labels_path}: labels span [{labels.min()}, '
                     f'{labels.max()}], outside [0, data.num_classes='
                     f'{num_classes}); set data.num_classes.')
  images = images.reshape((len(images),) + _image_shape(images.shape,
                                                        images_path))
  return images, labels.astype(np.int32)


# ---------------------------------------------------------------------------
# TFDS (read through tfds.data_source: array_record, no TensorFlow).
# ---------------------------------------------------------------------------


def _tfds_name(data_config: DataConfig) -> str:
  name = data_config.get('tfds_name')
  if name is None and _name(data_config) == 'mnist':
    name = 'mnist'
  if not name:
    raise ValueError("data.name='tfds' needs data.tfds_name, e.g. 'mnist'.")
  return name


def _tfds_source(data_config: DataConfig, split: str):
  """`tfds.data_source(...)`, with a how-to-prepare error if it is missing."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  name = _tfds_name(data_config)
  data_dir = data_config.get('tfds_data_dir')
  try:
    return tfds.data_source(
        name, split=split, data_dir=data_dir,
        # Set for data_dir too; TFDS defaults to tfrecord (no random access).
        builder_kwargs={'file_format': 'array_record'},
        download=bool(data_config.get('download', False)))
  # What TFDS raises when the dataset was never prepared in this data_dir.
  except (KeyError, NotImplementedError, FileNotFoundError) as e:
    where = (repr(data_dir) if data_dir
             else '~/tensorflow_datasets (or $TFDS_DATA_DIR)')
    dir_arg = f', data_dir={data_dir!r}' if data_dir else ''
    raise FileNotFoundError(
        f'TFDS dataset {name!r} (split {split!r}) is not prepared in {where}. '
        'Reading it needs no TensorFlow, but preparing it needs TensorFlow '
        'once: `pip install tensorflow-cpu` (or `pip install -e .[prepare]`), '
        'then `python -c "import tensorflow_datasets as tfds; '
        f"tfds.data_source('{name}'{dir_arg})\"` on a machine with internet. "
        "Or read IDX files instead: data.name='idx' with data.dir holding "
        "MNIST's train-images-idx3-ubyte.gz etc., or data.name='fashion_mnist' "
        'after `apt-get install dataset-fashion-mnist`. '
        f'(TFDS said: {type(e).__name__}: {e})') from e


def _tfds_keys(data_config: DataConfig) -> tuple[str, str | None]:
  return (data_config.get('image_key', 'image'),
          data_config.get('label_key', 'label'))


def _tfds_info(data_config: DataConfig) -> tuple[tuple[int, ...], int]:
  features = _tfds_source(data_config, 'train').dataset_info.features
  image_key, label_key = _tfds_keys(data_config)
  shape = tuple(features[image_key].shape)
  if any(d is None for d in shape):
    raise ValueError(f'TFDS feature {image_key!r} of {_tfds_name(data_config)!r}'
                     f' has no fixed shape ({shape}); only fixed-size images '
                     'are supported.')
  num_classes = 1 if label_key is None else int(features[label_key].num_classes)
  return shape, num_classes


def _tfds_arrays(data_config: DataConfig,
                 split: str) -> tuple[np.ndarray, np.ndarray]:
  source = _tfds_source(data_config, split)
  image_key, label_key = _tfds_keys(data_config)
  shape = tuple(source.dataset_info.features[image_key].shape)
  images = np.empty((len(source),) + shape, np.uint8)
  labels = np.zeros((len(source),), np.int32)
  # A one-time decode of the whole split; batches never touch TFDS again.
  for i in range(len(source)):
    example = source[i]
    image = example[image_key]
    if image.dtype != np.uint8:
      raise ValueError(f'TFDS feature {image_key!r} must be uint8, got '
                       f'{image.dtype}.')
    images[i] = image
    if label_key is not None:
      labels[i] = example[label_key]
  return images, labels


# ---------------------------------------------------------------------------
# Images: dispatch, scaling, stacking.
# ---------------------------------------------------------------------------


def _base(data_config: DataConfig) -> DataConfig:
  base = data_config.get('base')
  if base is None or _kind(base) not in ('idx', 'tfds'):
    raise ValueError(
        "data.name='stacked' needs data.base, an image data config with name "
        "in ['idx', 'tfds', 'fashion_mnist', 'mnist']; got "
        f'{None if base is None else base.get("name")!r}.')
  return base


def _image_info(data_config: DataConfig) -> tuple[tuple[int, ...], int]:
  kind = _kind(data_config)
  if kind == 'stacked':
    shape, num_classes = _image_info(_base(data_config))
    _check_one_channel(shape)
    return shape[:-1] + (3,), num_classes**3
  return _idx_info(data_config) if kind == 'idx' else _tfds_info(data_config)


def _uint8_arrays(data_config: DataConfig,
                  split: str) -> tuple[np.ndarray, np.ndarray]:
  if _kind(data_config) == 'idx':
    return _idx_arrays(data_config, split)
  return _tfds_arrays(data_config, split)


def _check_one_channel(shape: tuple[int, ...]) -> None:
  if shape[-1] != 1:
    raise ValueError(f'Stacked data needs a one-channel base; its images have '
                     f'shape {shape}.')


def _scaler(value_range: tuple[float, float]):
  """Maps pixels [0, 255] (already cast to float32) to [lo, hi], in place."""
  lo, hi = value_range
  scale, offset = np.float32((hi - lo) / 255.0), np.float32(lo)

  def scale_fn(x: np.ndarray) -> np.ndarray:
    x *= scale
    x += offset
    return x

  return scale_fn


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


def _index_batches(n: int, batch_size: int, rng: np.random.Generator,
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


def _image_batches(images: np.ndarray, labels: np.ndarray, scale_fn,
                   batch_size: int, rng: np.random.Generator,
                   skip: int) -> Iterator[Batch]:
  for idx in _index_batches(len(images), batch_size, rng, skip):
    yield {'x': scale_fn(np.take(images, idx, axis=0).astype(np.float32)),
           'label': np.take(labels, idx)}


def _stacked_batches(images: np.ndarray, labels: np.ndarray,
                     num_base_classes: int, scale_fn, batch_size: int,
                     rng: np.random.Generator, skip: int) -> Iterator[Batch]:
  # Three independent epoch streams, one per channel.
  streams = [_index_batches(len(images), batch_size, r, skip)
             for r in rng.spawn(3)]
  for indices in zip(*streams):
    x, label = _stack(images, labels, num_base_classes, indices, scale_fn)
    yield {'x': x, 'label': label}


# ---------------------------------------------------------------------------
# Public API.
# ---------------------------------------------------------------------------


def get_info(data_config: DataConfig) -> DataInfo:
  """Shape of one example, number of classes/modes and value range.

  Cheap: for IDX it reads only a file header. For TFDS it opens the data source
  (so a dataset that is not prepared fails here, with how to prepare it).
  """
  if _kind(data_config) in MIXTURE_NAMES:
    centers, _ = mixtures.modes(data_config)
    mixtures.train_size(data_config)  # checked here, before anything is written
    return DataInfo(shape=(2,), num_classes=len(centers),
                    value_range=mixtures.value_range(data_config), kind=mixtures.KIND)
  shape, num_classes = _image_info(data_config)
  return DataInfo(shape=tuple(int(d) for d in shape),
                  num_classes=int(num_classes),
                  value_range=_value_range(data_config), kind='image')


def load_arrays(data_config: DataConfig,
                split: str) -> tuple[np.ndarray, np.ndarray]:
  """A whole split in memory: float32 images (N, *shape), int32 labels (N,).

  Images are scaled to `value_range`; for evaluation and for training the evaluation classifier. Stacked data has
  no natural finite split; this returns a fixed sample of N = len(base split)
  stacked images (channel k from its own permutation of the base split, seeded
  by `data.stacked_seed`, default 0). Mixtures are infinite: ValueError.
  """
  kind = _kind(data_config)
  if kind in MIXTURE_NAMES:
    raise ValueError(
        f'load_arrays: data.name={kind!r} is an infinite mixture; sample it '
        'with make_iterator, and get its modes with mixture_modes.')
  scale_fn = _scaler(_value_range(data_config))
  if kind == 'stacked':
    base = _base(data_config)
    images, labels = _uint8_arrays(base, split)
    _check_one_channel(images.shape)
    _, num_base_classes = _image_info(base)
    rng = np.random.default_rng(int(data_config.get('stacked_seed', 0)))
    indices = tuple(r.permutation(len(images)) for r in rng.spawn(3))
    return _stack(images, labels, num_base_classes, indices, scale_fn)
  images, labels = _uint8_arrays(data_config, split)
  return scale_fn(images.astype(np.float32)), labels


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
  kind = _kind(data_config)
  if kind in MIXTURE_NAMES:
    # The sweep's on-device sampler, batch t keyed by t (one stream for both).
    mixtures.modes(data_config)
    return mixtures.batches(data_config, batch_size=int(batch_size), seed=int(seed),
                            process_index=int(process_index),
                            skip_batches=int(skip_batches))
  # Independent streams per process and per split (crc32: stable across runs,
  # unlike hash()).
  rng = np.random.default_rng(
      [int(seed), int(process_index), zlib.crc32(split.encode())])

  scale_fn = _scaler(_value_range(data_config))
  base = _base(data_config) if kind == 'stacked' else data_config
  images, labels = _uint8_arrays(base, split)
  per_process = len(images) // process_count
  if per_process < 1:
    raise ValueError(f'Split {split!r} has {len(images)} examples, fewer than '
                     f'process_count={process_count}.')
  shard = slice(process_index * per_process, (process_index + 1) * per_process)
  images, labels = images[shard], labels[shard]
  if kind == 'stacked':
    _check_one_channel(images.shape)
    _, num_base_classes = _image_info(base)
    return _stacked_batches(images, labels, num_base_classes, scale_fn,
                            batch_size, rng, skip_batches)
  return _image_batches(images, labels, scale_fn, batch_size, rng,
                        skip_batches)
