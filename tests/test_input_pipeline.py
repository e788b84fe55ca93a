"""Tests for gan_jax.input_pipeline: mixtures, IDX, TFDS (mocked), stacked."""

from __future__ import annotations

import itertools
import math

import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds

from gan_jax import input_pipeline


def config(**fields) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(fields)


def scaled(pixels: np.ndarray, lo: float = -1.0, hi: float = 1.0) -> np.ndarray:
  """The closed form lo + (hi - lo) p / 255, in float64."""
  return lo + (hi - lo) * pixels.astype(np.float64) / 255.0


def take(iterator, n: int) -> list[dict[str, np.ndarray]]:
  return list(itertools.islice(iterator, n))


# ---------------------------------------------------------------------------
# Config errors.
# ---------------------------------------------------------------------------


def test_unknown_name_lists_valid_names():
  with pytest.raises(ValueError, match=r"'rng'.*'ring', 'grid', 'idx', 'tfds'"):
    input_pipeline.get_info(config(name='rng'))


@pytest.mark.parametrize('fields, match', [
    (dict(name='ring', std=-0.1), 'data.std'),
    (dict(name='grid', grid_size=2.5), 'data.grid_size'),
    (dict(name='idx'), 'data.dir'),
    (dict(name='tfds'), 'data.tfds_name'),
    (dict(name='stacked', base=dict(name='ring')), 'data.base'),
])
def test_bad_fields_are_named(fields, match):
  with pytest.raises(ValueError, match=match):
    input_pipeline.make_iterator(config(**fields), split='train',
                                 batch_size=2, seed=0)


@pytest.mark.parametrize('kwargs, match', [
    (dict(batch_size=0, seed=0), 'batch_size'),
    (dict(batch_size=2, seed=-1), 'seed'),
    (dict(batch_size=2, seed=0, process_index=2, process_count=2),
     'process_index'),
    (dict(batch_size=2, seed=0, skip_batches=-1), 'skip_batches'),
])
def test_bad_iterator_arguments(kwargs, match):
  with pytest.raises(ValueError, match=match):
    input_pipeline.make_iterator(config(name='ring'), split='train', **kwargs)


def test_bad_value_range(idx_dataset):
  cfg = config(name='idx', dir=str(idx_dataset.dir), value_range=(1.0, 0.0))
  with pytest.raises(ValueError, match='value_range'):
    input_pipeline.get_info(cfg)


# ---------------------------------------------------------------------------
# 2-D mixtures.
# ---------------------------------------------------------------------------


def test_ring_centers():
  centers, std = input_pipeline.mixture_modes(
      config(name='ring', num_modes=8, radius=2.0, std=0.02))
  h = math.sqrt(2.0)  # 2 * cos(pi / 4)
  expected = [(2, 0), (h, h), (0, 2), (-h, h), (-2, 0), (-h, -h), (0, -2),
              (h, -h)]
  np.testing.assert_allclose(centers, expected, atol=1e-12)
  assert std == 0.02


def test_ring_defaults_are_pacgan_setting():
  centers, std = input_pipeline.mixture_modes(config(name='ring'))
  assert centers.shape == (8, 2) and std == 0.01
  np.testing.assert_allclose(np.linalg.norm(centers, axis=1), 1.0)


def test_grid_centers():
  centers, std = input_pipeline.mixture_modes(config(name='grid'))
  assert centers.shape == (25, 2) and std == 0.05
  np.testing.assert_array_equal(centers[:6], [(-4, -4), (-4, -2), (-4, 0),
                                              (-4, 2), (-4, 4), (-2, -4)])
  expected = {(x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)}
  assert {tuple(c) for c in centers.tolist()} == expected


def test_mixture_info():
  info = input_pipeline.get_info(config(name='grid', grid_size=3, std=0.1))
  assert info == input_pipeline.DataInfo(
      shape=(2,), num_classes=9, value_range=(-2.4, 2.4), kind='mixture')


@pytest.mark.parametrize('fields', [
    dict(name='ring', num_modes=8, radius=1.0, std=0.01),
    dict(name='grid', grid_size=5, spacing=2.0, std=0.05),
])
def test_mixture_samples(fields):
  n = 20_000
  cfg = config(**fields)
  centers, std = input_pipeline.mixture_modes(cfg)
  batch = next(input_pipeline.make_iterator(cfg, split='train', batch_size=n,
                                            seed=0))
  x, label = batch['x'], batch['label']
  assert x.shape == (n, 2) and x.dtype == np.float32
  assert label.shape == (n,) and label.dtype == np.int32
  # The label is the nearest mode (modes are >= 38 std apart here).
  distances = np.linalg.norm(x[:, None, :] - centers[None], axis=-1)
  np.testing.assert_array_equal(label, distances.argmin(axis=1))
  residual = x - centers[label]
  # Sample std of n Gaussians has standard error std / sqrt(2 n): allow 5 of them.
  np.testing.assert_allclose(residual.std(axis=0), std,
                             rtol=5 / math.sqrt(2 * n))
  np.testing.assert_allclose(residual.mean(axis=0), 0.0,
                             atol=5 * std / math.sqrt(n))
  # Equal weights: each count is Binomial(n, 1/M); allow 5 standard deviations.
  m = len(centers)
  counts = np.bincount(label, minlength=m)
  assert np.all(np.abs(counts - n / m) < 5 * math.sqrt(n * (1 / m) * (1 - 1 / m)))


def test_mixture_streams_are_deterministic_and_distinct():
  def first(seed, process_index=0, split='train'):
    return next(input_pipeline.make_iterator(
        config(name='ring'), split=split, batch_size=8, seed=seed,
        process_index=process_index, process_count=2))['x']

  np.testing.assert_array_equal(first(3), first(3))
  assert not np.array_equal(first(3), first(4))
  assert not np.array_equal(first(3), first(3, process_index=1))
  # A mixture has no splits: every split is the one stream of the seed.
  np.testing.assert_array_equal(first(3), first(3, split='test'))


def test_mixtures_have_no_arrays():
  with pytest.raises(ValueError, match='infinite'):
    input_pipeline.load_arrays(config(name='ring'), 'train')


def test_mixture_modes_rejects_images(idx_dataset):
  with pytest.raises(ValueError, match="'idx' is not a mixture; valid choices: ring, grid"):
    input_pipeline.mixture_modes(config(name='idx', dir=str(idx_dataset.dir)))


# ---------------------------------------------------------------------------
# IDX files.
# ---------------------------------------------------------------------------


def test_idx_info(idx_dataset):
  info = input_pipeline.get_info(config(name='idx', dir=str(idx_dataset.dir)))
  assert info == input_pipeline.DataInfo(
      shape=(4, 3, 1), num_classes=10, value_range=(-1.0, 1.0), kind='image')


@pytest.mark.parametrize('compressed', [True, False])
def test_idx_load_arrays_round_trip(tmp_path, write_idx_dataset_to, compressed):
  data = write_idx_dataset_to(tmp_path / 'idx', compressed=compressed)
  cfg = config(name='idx', dir=str(data.dir))
  for split, images, labels in [('train', data.train_images, data.train_labels),
                                ('test', data.test_images, data.test_labels)]:
    x, label = input_pipeline.load_arrays(cfg, split)
    assert x.shape == images.shape + (1,) and x.dtype == np.float32
    assert label.dtype == np.int32
    np.testing.assert_array_equal(label, labels)
    np.testing.assert_allclose(x[..., 0], scaled(images), atol=1e-6)
    # Pixels 0, 51, 255 written by the fixture.
    np.testing.assert_allclose(x[0, 0, :, 0], [-1.0, -0.6, 1.0], atol=1e-6)


def test_idx_value_range_zero_one(idx_dataset):
  cfg = config(name='idx', dir=str(idx_dataset.dir), value_range=(0.0, 1.0))
  x, _ = input_pipeline.load_arrays(cfg, 'train')
  np.testing.assert_allclose(x[0, 0, :, 0], [0.0, 0.2, 1.0], atol=1e-6)
  assert input_pipeline.get_info(cfg).value_range == (0.0, 1.0)


def test_idx_iterator_pairs_images_with_labels(idx_dataset):
  cfg = config(name='idx', dir=str(idx_dataset.dir))
  iterator = input_pipeline.make_iterator(cfg, split='train', batch_size=4,
                                          seed=0)
  expected = {int(l): scaled(im) for l, im in
              zip(idx_dataset.train_labels, idx_dataset.train_images)}
  for batch in take(iterator, 3):
    assert batch['x'].shape == (4, 4, 3, 1) and batch['x'].dtype == np.float32
    assert batch['label'].dtype == np.int32
    for x, label in zip(batch['x'], batch['label']):
      np.testing.assert_allclose(x[..., 0], expected[int(label)], atol=1e-6)


def test_idx_epochs_are_permutations_reshuffled(idx_dataset):
  cfg = config(name='idx', dir=str(idx_dataset.dir))
  labels = np.concatenate([b['label'] for b in take(input_pipeline.make_iterator(
      cfg, split='train', batch_size=5, seed=0), 4)])
  epoch1, epoch2 = labels[:10], labels[10:]
  assert sorted(epoch1) == sorted(epoch2) == list(range(10))
  assert not np.array_equal(epoch1, epoch2)


def test_idx_batch_larger_than_split_spans_epochs(idx_dataset):
  cfg = config(name='idx', dir=str(idx_dataset.dir))
  batch = next(input_pipeline.make_iterator(cfg, split='train', batch_size=25,
                                            seed=1))
  # Two full epochs and half of a third.
  counts = np.bincount(batch['label'], minlength=10)
  assert sorted(counts) == [2] * 5 + [3] * 5


def test_idx_determinism(idx_dataset):
  cfg = config(name='idx', dir=str(idx_dataset.dir))

  def labels(seed):
    iterator = input_pipeline.make_iterator(cfg, split='train', batch_size=3,
                                            seed=seed)
    return np.stack([b['label'] for b in take(iterator, 7)])

  np.testing.assert_array_equal(labels(5), labels(5))
  assert not np.array_equal(labels(5), labels(6))


@pytest.mark.parametrize('name, batch_size', [
    ('idx', 3), ('idx', 5), ('idx', 25), ('stacked', 4), ('ring', 3)])
def test_skip_batches_equals_dropping_them(idx_dataset, name, batch_size):
  base = dict(name='idx', dir=str(idx_dataset.dir))
  cfg = config(**({'stacked': dict(name='stacked', base=base), 'idx': base,
                   'ring': dict(name='ring')}[name]))

  def batches(skip, n):
    return take(input_pipeline.make_iterator(
        cfg, split='train', batch_size=batch_size, seed=2,
        skip_batches=skip), n)

  reference = batches(0, 9)
  for skip in (1, 3, 4, 7):  # 3 x 5 and 7 x 3 start past an epoch boundary.
    for got, want in zip(batches(skip, 2), reference[skip:]):
      np.testing.assert_array_equal(got['x'], want['x'])
      np.testing.assert_array_equal(got['label'], want['label'])


@pytest.mark.parametrize('process_count, per_process', [(2, 5), (3, 3)])
def test_idx_shards_are_disjoint(idx_dataset, process_count, per_process):
  cfg = config(name='idx', dir=str(idx_dataset.dir))
  shards = []
  for process_index in range(process_count):
    iterator = input_pipeline.make_iterator(
        cfg, split='train', batch_size=2, seed=0, process_index=process_index,
        process_count=process_count)
    shards.append({int(l) for b in take(iterator, 10) for l in b['label']})
  assert all(len(s) == per_process for s in shards)
  assert len(set.union(*shards)) == process_count * per_process
  # Contiguous shards of the file order.
  assert shards[0] == set(idx_dataset.train_labels[:per_process].tolist())


def test_idx_bad_split(idx_dataset):
  with pytest.raises(ValueError, match=r"'valid'.*\['train', 'test'\]"):
    input_pipeline.load_arrays(config(name='idx', dir=str(idx_dataset.dir)),
                               'valid')


def test_idx_labels_outside_num_classes(idx_dataset):
  cfg = config(name='idx', dir=str(idx_dataset.dir), num_classes=5)
  with pytest.raises(ValueError, match='num_classes'):
    input_pipeline.load_arrays(cfg, 'train')


def test_idx_missing_says_how_to_get_it(tmp_path):
  cfg = config(name='idx', dir=str(tmp_path))
  with pytest.raises(FileNotFoundError,
                     match='apt-get install dataset-fashion-mnist'):
    input_pipeline.make_iterator(cfg, split='train', batch_size=2, seed=0)
  with pytest.raises(FileNotFoundError, match='train-images-idx3-ubyte.gz'):
    input_pipeline.get_info(cfg)


def test_idx_rejects_non_idx_file(idx_dataset):
  (idx_dataset.dir / 'train-images-idx3-ubyte.gz').unlink()
  (idx_dataset.dir / 'train-images-idx3-ubyte').write_bytes(b'PK\x03\x04junk')
  with pytest.raises(ValueError, match='not an IDX file'):
    input_pipeline.load_arrays(config(name='idx', dir=str(idx_dataset.dir)),
                               'train')


# ---------------------------------------------------------------------------
# TFDS, mocked (tfds.testing.mock_data needs no TensorFlow).
# ---------------------------------------------------------------------------


def test_tfds_mnist_mocked():
  cfg = config(name='mnist', value_range=(0.0, 1.0))
  with tfds.testing.mock_data(num_examples=12,
                              policy=tfds.testing.MockPolicy.USE_CODE):
    info = input_pipeline.get_info(cfg)
    x, label = input_pipeline.load_arrays(cfg, 'train')
    reference = tfds.data_source('mnist', split='train')
    raw = np.stack([reference[i]['image'] for i in range(12)])
    raw_labels = np.array([reference[i]['label'] for i in range(12)])
    batches = take(input_pipeline.make_iterator(cfg, split='train',
                                                batch_size=8, seed=0), 3)
  assert info == input_pipeline.DataInfo((28, 28, 1), 10, (0.0, 1.0), 'image')
  assert x.shape == (12, 28, 28, 1) and x.dtype == np.float32
  np.testing.assert_allclose(x, scaled(raw, 0.0, 1.0), atol=1e-6)
  np.testing.assert_array_equal(label, raw_labels)
  for batch in batches:
    assert batch['x'].shape == (8, 28, 28, 1) and batch['x'].dtype == np.float32
    assert batch['label'].dtype == np.int32
    assert 0.0 <= batch['x'].min() and batch['x'].max() <= 1.0
  # 24 draws from 12 examples: exactly two epochs.
  labels = np.concatenate([b['label'] for b in batches])
  np.testing.assert_array_equal(np.bincount(labels, minlength=10),
                                2 * np.bincount(raw_labels, minlength=10))


def test_tfds_missing_says_how_to_get_it(tmp_path):
  cfg = config(name='tfds', tfds_name='mnist', tfds_data_dir=str(tmp_path))
  with pytest.raises(FileNotFoundError, match='pip install tensorflow-cpu'):
    input_pipeline.make_iterator(cfg, split='train', batch_size=2, seed=0)


# ---------------------------------------------------------------------------
# Stacked (three base images as channels: 1000 modes).
# ---------------------------------------------------------------------------


def check_stacked(x: np.ndarray, label: np.ndarray, data) -> None:
  """Channel k is the base image whose label is the k-th digit of `label`."""
  by_label = {int(l): scaled(im) for l, im in
              zip(data.train_labels, data.train_images)}
  for image, stacked_label in zip(x, label):
    digits = (stacked_label // 100, stacked_label // 10 % 10, stacked_label % 10)
    for k, digit in enumerate(digits):
      np.testing.assert_allclose(image[..., k], by_label[int(digit)], atol=1e-6)


def test_stacked(idx_dataset):
  cfg = config(name='stacked', base=dict(name='idx', dir=str(idx_dataset.dir)))
  assert input_pipeline.get_info(cfg) == input_pipeline.DataInfo(
      (4, 3, 3), 1000, (-1.0, 1.0), 'image')
  batches = take(input_pipeline.make_iterator(cfg, split='train',
                                              batch_size=6, seed=0), 5)
  for batch in batches:
    assert batch['x'].shape == (6, 4, 3, 3) and batch['x'].dtype == np.float32
    assert batch['label'].dtype == np.int32
    check_stacked(batch['x'], batch['label'], idx_dataset)
  # The channels are independent streams, not copies of one image.
  labels = np.concatenate([b['label'] for b in batches])
  assert not np.array_equal(labels // 100, labels % 10)
  x, label = input_pipeline.load_arrays(cfg, 'train')
  assert x.shape == (10, 4, 3, 3) and label.shape == (10,)
  check_stacked(x, label, idx_dataset)
  # Each channel is a permutation of the base split.
  for digits in (label // 100, label // 10 % 10, label % 10):
    assert sorted(digits) == list(range(10))


def test_stacked_uses_base_value_range(idx_dataset):
  cfg = config(name='stacked', base=dict(name='idx', dir=str(idx_dataset.dir),
                                         value_range=(0.0, 1.0)))
  assert input_pipeline.get_info(cfg).value_range == (0.0, 1.0)
  x, _ = input_pipeline.load_arrays(cfg, 'train')
  assert x.min() == 0.0 and x.max() == 1.0
