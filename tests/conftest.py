"""Shared pytest fixtures: synthetic MNIST-format IDX datasets on disk."""

from __future__ import annotations

import dataclasses
import gzip
import pathlib
import struct

import jax
import numpy as np
import pytest

# Train split: 10 images of 4 x 3 (not square, so a transpose would show), whose
# labels are a permutation of 0..9: the label identifies the image.
IDX_TRAIN_LABELS = np.array([3, 1, 4, 0, 5, 9, 2, 6, 8, 7], np.uint8)
IDX_TEST_LABELS = np.array([0, 1, 2, 3], np.uint8)
IDX_IMAGE_SHAPE = (4, 3)


def idx_images(n: int, offset: int = 0) -> np.ndarray:
  """Image i, pixel j: (offset + 12 i + j) * 5 mod 256; image 0 row 0 is fixed."""
  pixels = (offset + np.arange(n * 12)) * 5 % 256
  images = pixels.reshape((n,) + IDX_IMAGE_SHAPE).astype(np.uint8)
  images[0, 0] = [0, 51, 255]  # -> -1, -0.6, 1 in [-1, 1]; 0, 0.2, 1 in [0, 1]
  return images


def write_idx(path: pathlib.Path, array: np.ndarray) -> None:
  """Writes uint8 `array` as IDX: 0, 0, 0x08, ndim, big-endian dims, data."""
  header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(
      f'>{array.ndim}I', *array.shape)
  data = header + np.ascontiguousarray(array, np.uint8).tobytes()
  if path.suffix == '.gz':
    with gzip.open(path, 'wb') as f:
      f.write(data)
  else:
    path.write_bytes(data)


@dataclasses.dataclass(frozen=True)
class IdxDataset:
  dir: pathlib.Path
  train_images: np.ndarray  # uint8 (10, 4, 3)
  train_labels: np.ndarray  # uint8 (10,)
  test_images: np.ndarray   # uint8 (4, 4, 3)
  test_labels: np.ndarray   # uint8 (4,)


def write_idx_dataset(directory: pathlib.Path, *,
                      compressed: bool = True) -> IdxDataset:
  """Writes MNIST-named IDX files (gzipped or not) and returns their contents."""
  data = IdxDataset(directory, idx_images(10), IDX_TRAIN_LABELS,
                    idx_images(4, offset=7), IDX_TEST_LABELS)
  directory.mkdir(parents=True, exist_ok=True)
  ext = '.gz' if compressed else ''
  write_idx(directory / f'train-images-idx3-ubyte{ext}', data.train_images)
  write_idx(directory / f'train-labels-idx1-ubyte{ext}', data.train_labels)
  write_idx(directory / f't10k-images-idx3-ubyte{ext}', data.test_images)
  write_idx(directory / f't10k-labels-idx1-ubyte{ext}', data.test_labels)
  return data


@pytest.fixture
def idx_dataset(tmp_path: pathlib.Path) -> IdxDataset:
  """Gzipped MNIST-named IDX files in a temporary folder (see IDX_* above)."""
  return write_idx_dataset(tmp_path / 'idx')


@pytest.fixture
def write_idx_dataset_to():
  """The writer itself, for tests that need other layouts (e.g. uncompressed)."""
  return write_idx_dataset


def state_arrays(state) -> dict[str, np.ndarray]:
  """Every leaf of a (restored) state as a host array, keyed by its tree path."""
  leaves = jax.tree_util.tree_flatten_with_path(jax.device_get(state))[0]
  return {jax.tree_util.keystr(path): np.asarray(value) for path, value in leaves}
