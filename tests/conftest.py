"""Shared test helpers: synthetic MNIST-format IDX datasets on disk, the tiny
evaluation classifier (trained once per session), and the closed-form linear
game on which the step's options are checked by hand.

Test files import helpers from here, never from one another.

XLA compiles the tests' programs with LLVM's optimisation off, without Eigen's
threads and with XLA:CPU's older elemental emitters instead of its new fusion
emitters (TEST_XLA_FLAGS, put in XLA_FLAGS before JAX starts, so subprocesses
inherit it): the tests' programs are tiny, compiling them is most of the
suite's time, and pytest-xdist runs one worker per core. Measured on the 2-core
CPU with a sweep on the other core: tests/test_{steps,configs,unroll,vanishing}.py
took 388 s with XLA's defaults, 240 s with LLVM's optimisation off and 206 s
with Eigen's threads off as well (which, round 8 found, does not confine XLA to one
core: see gan_jax/xla_flags.py). Round 9, quiet machine: compiling test_pmap's
2-D step took 1.7-1.9 s with the fusion emitters, 1.1-1.2 s without;
tests/test_{steps,unroll,configs}.py took 75.5 s and 40.8 s; the whole not-slow
suite 388 s and 232 s, every test passing both ways. The tests check the math,
not the speed.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import itertools
import os
import pathlib
import struct
from typing import Sequence

# Only --flags: XLA stops reading XLA_FLAGS at a bare token such as
# 'intra_op_parallelism_threads=1', so a device count appended after it is lost.
TEST_XLA_FLAGS = ('--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true '
                  '--xla_cpu_multi_thread_eigen=false --xla_cpu_use_fusion_emitters=false')
if 'xla_backend_optimization_level' not in os.environ.get('XLA_FLAGS', ''):
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') + ' ' + TEST_XLA_FLAGS).strip()

import flax.linen as nn  # pylint: disable=g-import-not-at-top,wrong-import-position
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
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


def config_fields(config, prefix: str = ''):
  """(dotted path, declared type, value) of every leaf field of a ConfigDict."""
  for key, value in config.items():
    path = f'{prefix}{key}'
    if hasattr(value, 'items'):
      yield from config_fields(value, path + '.')
    else:
      yield path, config.get_type(key), value


def data_config(**fields) -> ml_collections.ConfigDict:
  """A data config, as config.data would be."""
  return ml_collections.ConfigDict(fields)


def scaled(pixels: np.ndarray, lo: float = -1.0, hi: float = 1.0) -> np.ndarray:
  """Pixels in the closed form lo + (hi - lo) p / 255, in float64."""
  return lo + (hi - lo) * pixels.astype(np.float64) / 255.0


def take(iterator, n: int) -> list:
  """The first n items of an iterator (e.g. n batches of make_iterator)."""
  return list(itertools.islice(iterator, n))


def assert_same_changes(a, b, init, name: str) -> None:
  """a - init equals b - init leaf by leaf (npz-like maps), to 1e-3 of the largest change.

  For the data-parallel equivalence tests. Integer leaves (step, rng) must be
  equal. A float leaf that b left unchanged (e.g. a critic's output bias, whose
  Wasserstein gradient is 0) must be unchanged in a too; most leaves must have
  moved, so the comparison is not between unchanged values.
  """
  assert sorted(a.files) == sorted(b.files) == sorted(init.files)
  moved = unchanged = 0
  for key in a.files:
    if not np.issubdtype(a[key].dtype, np.floating):
      np.testing.assert_array_equal(a[key], b[key], err_msg=f'{name}: {key}')
      continue
    da, db = a[key] - init[key], b[key] - init[key]
    scale = float(np.max(np.abs(db)))
    if scale == 0:
      unchanged += 1
      np.testing.assert_allclose(da, 0.0, atol=1e-7, err_msg=f'{name}: change of {key}')
      continue
    moved += 1
    np.testing.assert_allclose(da, db, rtol=1e-3, atol=1e-3 * scale,
                               err_msg=f'{name}: change of {key}')
  assert moved > 4 * unchanged, (name, moved, unchanged)


def state_arrays(state) -> dict[str, np.ndarray]:
  """Every leaf of a (restored) state as a host array, keyed by its tree path."""
  leaves = jax.tree_util.tree_flatten_with_path(jax.device_get(state))[0]
  return {jax.tree_util.keystr(path): np.asarray(value) for path, value in leaves}


# ---------------------------------------------------------------------------
# The tiny evaluation classifier: a separable synthetic 8 x 8 dataset.
# ---------------------------------------------------------------------------

CLF_SIZE = 8
CLF_NUM_CLASSES = 10
# Class k is a bright 2x2 block at cell (row, col) of a 4x4 grid of cells.
CLF_CELLS = [(0, 0), (0, 2), (1, 1), (1, 3), (2, 0), (2, 2), (3, 1), (3, 3), (0, 3), (3, 0)]


def synthetic_images(labels: np.ndarray, seed: int) -> np.ndarray:
  """uint8 (N, 8, 8): noise in [0, 60] plus a 2x2 block of 255 at the label's cell."""
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 61, size=(len(labels), CLF_SIZE, CLF_SIZE)).astype(np.uint8)
  for i, label in enumerate(labels):
    r, c = CLF_CELLS[label]
    images[i, 2 * r:2 * r + 2, 2 * c:2 * c + 2] = 255
  return images


def write_synthetic_dataset(directory: pathlib.Path, n_train: int = 400,
                            n_test: int = 100) -> tuple[np.ndarray, np.ndarray]:
  """Writes the synthetic IDX files; returns the test split (images, labels)."""
  directory.mkdir(parents=True, exist_ok=True)
  train_labels = (np.arange(n_train) % CLF_NUM_CLASSES).astype(np.uint8)
  test_labels = (np.arange(n_test) * 3 % CLF_NUM_CLASSES).astype(np.uint8)
  test_images = synthetic_images(test_labels, seed=1)
  write_idx(directory / 'train-images-idx3-ubyte.gz', synthetic_images(train_labels, seed=0))
  write_idx(directory / 'train-labels-idx1-ubyte.gz', train_labels)
  write_idx(directory / 't10k-images-idx3-ubyte.gz', test_images)
  write_idx(directory / 't10k-labels-idx1-ubyte.gz', test_labels)
  return test_images, test_labels


def train_tiny(root: pathlib.Path) -> tuple[ml_collections.ConfigDict, str, dict]:
  """A trained tiny classifier of the synthetic dataset: (data config, workdir, meta)."""
  from gan_jax import classifier  # pylint: disable=g-import-not-at-top
  write_synthetic_dataset(root / 'synthetic')
  data = ml_collections.ConfigDict(dict(name='idx', dir=str(root / 'synthetic'),
                                        value_range=(-1.0, 1.0)))
  workdir = str(root / 'classifiers' / classifier.dataset_key(data))
  meta = classifier.train(data, workdir, num_epochs=10, batch_size=20, learning_rate=3e-3,
                          widths=(8, 16), hidden=32, verbose=False)
  return data, workdir, meta


@pytest.fixture(scope='session')
def tiny_classifier(tmp_path_factory):
  """(data config, classifier workdir, metadata), trained once per test session.

  Tests must not write into the workdir (copy it first).
  """
  return train_tiny(tmp_path_factory.mktemp('tiny_classifier'))


# ---------------------------------------------------------------------------
# The linear game: G(z) = a (+ z), D(x, y) = w.x + c [+ v/2 |x|^2] [+ (2y - 1) q.x].
#
# Under the Wasserstein loss with SGD every update is a closed form: D's
# gradient w.r.t. w is mean(fake) - mean(real) = a - rbar (whatever w is),
# w.r.t. v it is (|a|^2 - mean |r|^2) / 2, and G's gradient w.r.t. a is -w.
# ---------------------------------------------------------------------------

ETA_D = 0.1
ETA_G = 0.5
A0 = np.array([0.3, -0.2], np.float32)
W0 = np.array([0.5, 1.0], np.float32)
REAL = np.array([[1.0, 2.0], [3.0, 0.0], [-1.0, 1.0], [1.0, -3.0]], np.float32)
RBAR = REAL.mean(axis=0)  # (1, 0)


class ConstantG(nn.Module):
  """G(z) = a for every z (the output still depends on z's shape only)."""
  a0: Sequence[float] = tuple(A0)

  @nn.compact
  def __call__(self, z, labels=None, *, train):
    a = self.param('a', lambda k: jnp.asarray(self.a0, jnp.float32))
    return jnp.broadcast_to(a, (z.shape[0], a.shape[0])) + 0.0 * z[:, :1]


class ShiftG(nn.Module):
  """G(z) = a + z: the fakes show the latents themselves (latent_dim = data dim)."""
  a0: Sequence[float] = (0.0, 0.0)

  @nn.compact
  def __call__(self, z, labels=None, *, train):
    return self.param('a', lambda k: jnp.asarray(self.a0, jnp.float32)) + z


class LinearD(nn.Module):
  """D(x, y) = w.x + c [+ v/2 |x|^2] [+ u sum_j relu(|x_j| - 1)] [+ (2y - 1) q.x].

  Each optional term is present when its initial value is not None. v makes
  grad_x D = w + v x depend on x (to see where a penalty is evaluated); u sees
  values outside [-1, 1]; q makes the score depend on a binary label.
  """
  w0: Sequence[float] = tuple(W0)
  c0: float = 0.0
  v0: float | None = None
  u0: float | None = None
  q0: Sequence[float] | None = None

  @nn.compact
  def __call__(self, x, labels=None, *, train):
    w = self.param('w', lambda k: jnp.asarray(self.w0, jnp.float32))
    c = self.param('c', lambda k: jnp.float32(self.c0))
    out = x @ w + c
    if self.v0 is not None:
      out = out + 0.5 * self.param('v', lambda k: jnp.float32(self.v0)) * jnp.sum(
          jnp.square(x), axis=-1)
    if self.u0 is not None:
      out = out + self.param('u', lambda k: jnp.float32(self.u0)) * jnp.sum(
          jax.nn.relu(jnp.abs(x) - 1.0), axis=-1)
    if self.q0 is not None:
      q = self.param('q', lambda k: jnp.asarray(self.q0, jnp.float32))
      out = out + (2.0 * labels - 1.0) * (x @ q)
    return out


def linear_spec(*, generator=None, discriminator=None, loss='wasserstein',
                eta_g=ETA_G, eta_d=ETA_D, latent_dim=1, **options):
  """The GANSpec of the linear game (SGD on both players)."""
  from gan_jax import losses, steps  # pylint: disable=g-import-not-at-top,g-multiple-import
  return steps.GANSpec(generator=generator or ConstantG(),
                       discriminator=discriminator or LinearD(),
                       g_tx=optax.sgd(eta_g), d_tx=optax.sgd(eta_d),
                       loss=losses.get_loss(loss), latent_dim=latent_dim, **options)


def run_steps(spec, batches, state=None, data_shape=(2,)):
  """Runs one jitted train_step per batch; returns [(state_before, state_after, metrics)]."""
  from gan_jax import steps  # pylint: disable=g-import-not-at-top
  if state is None:
    state = steps.init_state(spec, jax.random.PRNGKey(0), data_shape)
  step = jax.jit(functools.partial(steps.train_step, spec=spec))
  out = []
  for batch in batches:
    batch = {k: jnp.asarray(v) for k, v in batch.items()}
    new, metrics = step(state, batch)
    out.append((state, new, jax.device_get(metrics)))
    state = new
  return out
