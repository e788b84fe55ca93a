"""2-D Gaussian mixtures: the mode-collapse benchmarks, with ONE sampler.

  * 'ring': `num_modes` (8) Gaussians at angles 2 pi k / M, k = 0..M-1 (endpoint
    excluded) on a circle of `radius`; std `std` per coordinate. PacGAN
    (arXiv:1712.04086): radius 1, std 0.01; Metz et al. 2016 (arXiv:1611.02163):
    radius 2, std 0.02.
  * 'grid': `grid_size`**2 (25) Gaussians at ((i - (g-1)/2) s, (j - (g-1)/2) s),
    row-major, spacing s = 2 ({-4, -2, 0, 2, 4}^2), std 0.05 (VEEGAN, PacGAN).

Every mode has equal weight; the label of a sample is its mode index.

`make_sampler` is the only sampler: a pure JAX function `(key, n) -> batch`,
used on the device by the vmapped sweep (`gan_jax.seeds`) and, through
`input_pipeline.make_iterator`, by `gan_jax.main`. The batch of step t of a
run with seed s is `sample(fold_in(data_key(s), t), n)` in both, so a `main`
run and a one-seed sweep of one config see the same data.

Finite training set (`data.train_size` > 0): PacGAN draws 100,000 points once
and trains on them, each batch slot drawn from them uniformly with replacement.
The set is drawn from `data.train_seed` (default 0), independently of the run's
seed: like an image dataset it is part of the data, shared by every seed of a
sweep. `train_size = 0` (the default) draws fresh points every step.
"""

from __future__ import annotations

import math

from typing import Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import memory
from gan_jax.datasets.base import MIXTURE, Batch, DataConfig, DataInfo

KIND = MIXTURE
NAMES = ('ring', 'grid')

Array = jax.Array
Sampler = Callable[[Array, int], dict[str, Array]]

# fold_in constants: each stream has its own, so no two can coincide.
_DATA_STREAM = 0x5EED
_TRAIN_SET_STREAM = 0xDA7A


def _number(data_config: DataConfig, field: str, default: float, *,
            integer: bool = False, allow_zero: bool = False) -> float:
  value = data_config.get(field, default)
  ok = (isinstance(value, (int, np.integer)) if integer
        else isinstance(value, (int, float, np.number)))
  # math.isfinite: np.isfinite fails on an int beyond int64 (10**20).
  ok = ok and not isinstance(value, bool) and bool(
      value >= 0 if allow_zero else value > 0) and math.isfinite(value)
  if not ok:
    kind = 'integer' if integer else 'number'
    bound = '>= 0' if allow_zero else '> 0'
    raise ValueError(f'data.{field}={value!r} must be a finite {kind} {bound} '
                     f'(data.name={data_config.get("name")!r}).')
  return int(value) if integer else float(value)


def _check_points(field: str, value: int, points: int, bytes_per_point: int) -> None:
  """ValueError naming data.`field` when `points` 2-D points cannot be held in RAM.

  A lower bound checked before any array is made: numpy would raise MemoryError
  (or XLA abort) deep inside instead.
  """
  ram = memory.ram_bytes()
  if ram is not None and points * bytes_per_point > ram:
    raise ValueError(f'data.{field}={value} needs at least '
                     f'{points * bytes_per_point / 2**30:.0f} GiB for its {points:.3g} points, '
                     f"more than this machine's {ram / 2**30:.0f} GiB of memory.")


# The data field that sets each mixture's number of modes, and its default.
_MODE_FIELD = {'ring': ('num_modes', 8), 'grid': ('grid_size', 5)}


def _mode_field(data_config: DataConfig) -> tuple[str, int]:
  """(the field that sets the number of modes, its value), checked."""
  name = data_config.get('name')
  if name not in _MODE_FIELD:
    raise ValueError(f'data.name={name!r} is not a mixture; valid choices: '
                     f'{", ".join(NAMES)}.')
  field, default = _MODE_FIELD[name]
  return field, _number(data_config, field, default, integer=True)


def mode_count(data_config: DataConfig) -> tuple[int, str]:
  """The mixture's number of modes M and the data field that sets it, from the
  config alone (no array is made).

  The evaluation's memory check needs M before `modes` spends seconds and
  gigabytes building M centres.
  """
  field, value = _mode_field(data_config)
  return (value * value if field == 'grid_size' else value), field


def modes(data_config: DataConfig) -> tuple[np.ndarray, float]:
  """Mode centres (M, 2) float64 and the per-coordinate std of the mixture."""
  _, value = _mode_field(data_config)
  if data_config.get('name') == 'ring':
    num_modes = value
    radius = _number(data_config, 'radius', 1.0)
    std = _number(data_config, 'std', 0.01, allow_zero=True)
    # Angles, centres (float64) and the evaluation's distances (float32) per mode.
    _check_points('num_modes', num_modes, num_modes, 8 + 16 + 4)
    angles = 2.0 * np.pi * np.arange(num_modes) / num_modes
    centers = radius * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
  else:  # 'grid'
    size = value
    spacing = _number(data_config, 'spacing', 2.0)
    std = _number(data_config, 'std', 0.05, allow_zero=True)
    _check_points('grid_size', size, size * size, 16 + 16 + 4)
    coords = (np.arange(size) - (size - 1) / 2.0) * spacing
    xs, ys = np.meshgrid(coords, coords, indexing='ij')
    centers = np.stack([xs.ravel(), ys.ravel()], axis=-1)
  return centers, std


def data_key(seed: int) -> Array:
  """The key of seed `seed`'s real-data stream; independent of its model keys."""
  return jax.random.fold_in(jax.random.PRNGKey(int(seed)), _DATA_STREAM)


def _fresh(centers: Array, std: float, key: Array, n: int) -> dict[str, Array]:
  k_mode, k_noise = jax.random.split(key)
  labels = jax.random.randint(k_mode, (n,), 0, centers.shape[0])
  x = centers[labels] + std * jax.random.normal(k_noise, (n, centers.shape[1]))
  return {'x': x, 'label': labels.astype(jnp.int32)}


def train_size(data_config: DataConfig) -> int:
  """data.train_size, checked: an integer >= 0 whose float32 points and labels fit in RAM."""
  size = _number(data_config, 'train_size', 0, integer=True, allow_zero=True)
  _check_points('train_size', size, size, 2 * 4 + 4)
  return size


def _window(centers: np.ndarray, std: float) -> tuple[float, float]:
  return float(centers.min() - 4.0 * std), float(centers.max() + 4.0 * std)


class GaussianMixture:
  """The source interface of an equal-weight isotropic Gaussian mixture, given its modes.

  `modes_fn(cfg) -> (centres (M, 2), std)` is all a 2-D Gaussian-mixture dataset
  has of its own; sampling (fresh or from a finite training set), `info`,
  `arrays` and host `batches` are the same for all of them:

      source = mixtures.GaussianMixture(modes)
      info, arrays, batches, make_sampler = (source.info, source.arrays,
                                             source.batches, source.make_sampler)
  """

  def __init__(self, modes_fn: Callable[[DataConfig], tuple[np.ndarray, float]]):
    self.modes = modes_fn

  def value_range(self, data_config: DataConfig) -> tuple[float, float]:
    """The box of the mode centres padded by 4 std: a plotting window, not a bound."""
    return _window(*self.modes(data_config))

  def training_set(self, data_config: DataConfig) -> dict[str, np.ndarray] | None:
    """The finite training set ({'x': (N, 2), 'label': (N,)}), or None if fresh."""
    size = train_size(data_config)
    if size == 0:
      return None
    seed = _number(data_config, 'train_seed', 0, integer=True, allow_zero=True)
    centers, std = self.modes(data_config)
    key = jax.random.fold_in(jax.random.PRNGKey(seed), _TRAIN_SET_STREAM)
    return jax.device_get(_fresh(jnp.asarray(centers, jnp.float32), std, key, size))

  def make_sampler(self, data_config: DataConfig) -> Sampler:
    """`(key, n) -> {'x': (n, 2) float32, 'label': (n,) int32}`, pure and jittable.

    Fresh draws from the mixture, or, with `data.train_size` > 0, n draws with
    replacement from the fixed training set.
    """
    centers, std = self.modes(data_config)
    centers = jnp.asarray(centers, jnp.float32)
    data = self.training_set(data_config)
    if data is None:
      return lambda key, n: _fresh(centers, std, key, n)
    xs, labels = jnp.asarray(data['x']), jnp.asarray(data['label'])

    def sample(key: Array, n: int) -> dict[str, Array]:
      index = jax.random.randint(key, (n,), 0, xs.shape[0])
      return {'x': xs[index], 'label': labels[index]}

    return sample

  # The source interface (gan_jax/datasets/__init__.py).

  def info(self, data_config: DataConfig) -> DataInfo:
    centers, std = self.modes(data_config)  # once: a huge num_modes takes seconds
    train_size(data_config)  # checked here, before anything is written
    return DataInfo(shape=(2,), num_classes=len(centers),
                    value_range=_window(centers, std), kind=KIND)

  def arrays(self, data_config: DataConfig, split: str):
    del split  # A mixture has no splits.
    raise ValueError(
        f'load_arrays: data.name={data_config.get("name")!r} is an infinite '
        'mixture; sample it with make_iterator, and get its modes with '
        'mixture_modes.')

  def batches(self, data_config: DataConfig, *, batch_size: int, seed: int,
              split: str = 'train', process_index: int = 0,
              process_count: int = 1, skip_batches: int = 0) -> Iterator[Batch]:
    """Host batches of `make_sampler`: batch t is sample(fold_in(key, t), batch_size).

    Process 0's key is `data_key(seed)` (the sweep's); process p > 0 folds p in,
    so hosts draw independent streams (`process_count` plays no part). A mixture
    has no splits: every split is the one stream of the seed. Skipping is O(1):
    the step index is the key. The config is checked now, before the first next.
    """
    del split, process_count
    self.modes(data_config)
    return sampler_batches(self.make_sampler, data_config, batch_size=batch_size,
                           seed=seed, process_index=process_index,
                           skip_batches=skip_batches)


_SOURCE = GaussianMixture(modes)
value_range = _SOURCE.value_range
training_set = _SOURCE.training_set
make_sampler = _SOURCE.make_sampler
info = _SOURCE.info
arrays = _SOURCE.arrays
batches = _SOURCE.batches


def sampler_batches(make_sampler_fn: Callable[[DataConfig], Sampler],
                    data_config: DataConfig, *, batch_size: int, seed: int,
                    process_index: int, skip_batches: int) -> Iterator[Batch]:
  """Host batches of any JAX sampler, keyed by step as `batches` describes.

  `make_sampler_fn(data_config)` is called at the first `next`.
  """
  batch_size = int(batch_size)
  key = data_key(seed)
  if process_index:
    key = jax.random.fold_in(key, int(process_index))
  sample = jax.jit(make_sampler_fn(data_config), static_argnums=1)
  t = int(skip_batches)
  while True:
    yield jax.device_get(sample(jax.random.fold_in(key, t), batch_size))
    t += 1
