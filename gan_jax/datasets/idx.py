"""MNIST-format IDX files in `data.dir`: 'idx', and 'fashion_mnist'.

  * 'idx': `train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`,
    `t10k-...` (split 'test') in `data.dir`; '.' instead of '-' before 'idx' is
    accepted too. `data.num_classes` (10) bounds the labels.
  * 'fashion_mnist': the same with `data.dir` defaulting to where Debian's
    `dataset-fashion-mnist` package installs (`FASHION_MNIST_DIR`).

Images are (N, H, W) or (N, H, W, C) uint8; a missing file raises
FileNotFoundError saying how to get it.
"""

from __future__ import annotations

import gzip
import math
import os

import numpy as np

from gan_jax.datasets import images as images_lib
from gan_jax.datasets.base import DataConfig

KIND = images_lib.KIND
NAMES = ('idx',)
ALIASES = ('fashion_mnist',)  # data.dir defaults to FASHION_MNIST_DIR
# Where Debian's `dataset-fashion-mnist` package puts its IDX files.
FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist'
# IDX file prefixes of the two MNIST splits.
IDX_SPLITS = {'train': 'train', 'test': 't10k'}
# IDX type codes (third magic byte) -> big-endian numpy dtypes.
_IDX_DTYPES = {0x08: '>u1', 0x09: '>i1', 0x0B: '>i2', 0x0C: '>i4',
               0x0D: '>f4', 0x0E: '>f8'}


# ---------------------------------------------------------------------------
# Files.
# ---------------------------------------------------------------------------


def _idx_dir(data_config: DataConfig) -> str:
  directory = data_config.get('dir')
  if directory is None and data_config.get('name') == 'fashion_mnist':
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


# ---------------------------------------------------------------------------
# The two functions of an image source (see images.py).
# ---------------------------------------------------------------------------


def image_info(data_config: DataConfig) -> tuple[tuple[int, ...], int]:
  """(H, W, C) and num_classes; reads only the train images' header."""
  path = _idx_path(_idx_dir(data_config), 'train', 'images')
  _, dims = _read_idx_header(path)
  return (_image_shape(dims, path),
          images_lib.positive(data_config, 'num_classes', 10, integer=True))


def uint8_arrays(data_config: DataConfig,
                 split: str) -> tuple[np.ndarray, np.ndarray]:
  """The whole split: uint8 images (N, H, W, C) and int32 labels (N,)."""
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
  num_classes = images_lib.positive(data_config, 'num_classes', 10,
                                    integer=True)
  if len(labels) and not 0 <= labels.min() <= labels.max() < num_classes:
    raise ValueError(f'{labels_path}: labels span [{labels.min()}, '
                     f'{labels.max()}], outside [0, data.num_classes='
                     f'{num_classes}); set data.num_classes.')
  images = images.reshape((len(images),) + _image_shape(images.shape,
                                                        images_path))
  return images, labels.astype(np.int32)


# ---------------------------------------------------------------------------
# The source interface (gan_jax/datasets/__init__.py).
# ---------------------------------------------------------------------------


info, arrays, batches = images_lib.ImageSource(image_info, uint8_arrays).interface()
