"""Tests of the evaluation classifier on a tiny, separable synthetic IDX dataset."""

from __future__ import annotations

import json
import math
import pathlib

import ml_collections
import numpy as np
import pytest

from gan_jax import classifier
from gan_jax import input_pipeline

from conftest import write_idx

SIZE = 8
NUM_CLASSES = 10
# Class k is a bright 2x2 block at cell (row, col) of a 4x4 grid of cells.
CELLS = [(0, 0), (0, 2), (1, 1), (1, 3), (2, 0), (2, 2), (3, 1), (3, 3), (0, 3), (3, 0)]


def synthetic_images(labels: np.ndarray, seed: int) -> np.ndarray:
  """uint8 (N, 8, 8): noise in [0, 60] plus a 2x2 block of 255 at the label's cell."""
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 61, size=(len(labels), SIZE, SIZE)).astype(np.uint8)
  for i, label in enumerate(labels):
    r, c = CELLS[label]
    images[i, 2 * r:2 * r + 2, 2 * c:2 * c + 2] = 255
  return images


def write_synthetic_dataset(directory: pathlib.Path, n_train: int = 400,
                            n_test: int = 100) -> tuple[np.ndarray, np.ndarray]:
  """Writes the synthetic IDX files; returns the test split (images, labels)."""
  directory.mkdir(parents=True, exist_ok=True)
  train_labels = (np.arange(n_train) % NUM_CLASSES).astype(np.uint8)
  test_labels = (np.arange(n_test) * 3 % NUM_CLASSES).astype(np.uint8)
  test_images = synthetic_images(test_labels, seed=1)
  write_idx(directory / 'train-images-idx3-ubyte.gz', synthetic_images(train_labels, seed=0))
  write_idx(directory / 'train-labels-idx1-ubyte.gz', train_labels)
  write_idx(directory / 't10k-images-idx3-ubyte.gz', test_images)
  write_idx(directory / 't10k-labels-idx1-ubyte.gz', test_labels)
  return test_images, test_labels


def train_tiny(root: pathlib.Path) -> tuple[ml_collections.ConfigDict, str, dict]:
  """A trained tiny classifier of the synthetic dataset: (data config, workdir, meta)."""
  write_synthetic_dataset(root / 'synthetic')
  data = ml_collections.ConfigDict(dict(name='idx', dir=str(root / 'synthetic'),
                                        value_range=(-1.0, 1.0)))
  workdir = str(root / 'classifiers' / classifier.dataset_key(data))
  meta = classifier.train(data, workdir, num_epochs=10, batch_size=20, learning_rate=3e-3,
                          widths=(8, 16), hidden=32, verbose=False)
  return data, workdir, meta


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  return train_tiny(tmp_path_factory.mktemp('clf'))


def test_trains_to_high_accuracy_and_saves(trained):
  data, workdir, meta = trained
  assert meta['test_accuracy'] >= 0.95
  assert meta['num_train'] == 400 and meta['num_test'] == 100
  assert meta['image_shape'] == [SIZE, SIZE, 1] and meta['num_classes'] == NUM_CLASSES
  with open(pathlib.Path(workdir) / classifier.METADATA_FILE) as f:
    assert json.load(f)['test_accuracy'] == meta['test_accuracy']
  assert (pathlib.Path(workdir) / classifier.PARAMS_DIR).is_dir()


def test_loaded_classifier_reproduces_test_accuracy(trained):
  data, workdir, meta = trained
  clf = classifier.load(workdir)
  images, labels = input_pipeline.load_arrays(data, 'test')  # scaled to [-1, 1]
  pred = clf.predict(images, value_range=(-1.0, 1.0))
  assert pred.labels.shape == (100,) and pred.features.shape == (100, 32)
  assert np.mean(pred.labels == labels) == pytest.approx(meta['test_accuracy'])


def test_predict_rescales_from_the_value_range(trained):
  data, workdir, _ = trained
  clf = classifier.load(workdir)
  images, _ = input_pipeline.load_arrays(data, 'test')  # [-1, 1]
  in_unit = clf.predict((images + 1.0) / 2.0, value_range=(0.0, 1.0))
  in_pm1 = clf.predict(images, value_range=(-1.0, 1.0))
  np.testing.assert_array_equal(in_unit.labels, in_pm1.labels)
  np.testing.assert_allclose(in_unit.features, in_pm1.features, rtol=1e-5, atol=1e-5)


def test_stacked_images_are_classified_channel_by_channel(trained):
  data, workdir, _ = trained
  clf = classifier.load(workdir)
  images, _ = input_pipeline.load_arrays(data, 'test')
  single = clf.predict(images, value_range=(-1.0, 1.0))
  # Channel k of sample i is test image (i + 7 k) mod 100.
  idx = [(np.arange(100) + 7 * k) % 100 for k in range(3)]
  stacked = np.stack([images[..., 0][i] for i in idx], axis=-1)
  pred = clf.predict(stacked, value_range=(-1.0, 1.0))
  assert pred.labels.shape == (100, 3) and pred.features.shape == (100, 96)
  for k in range(3):
    np.testing.assert_array_equal(pred.labels[:, k], single.labels[idx[k]])
  np.testing.assert_allclose(pred.features[:, 32:64], single.features[idx[1]], atol=1e-5)


def test_load_for_resolves_a_cache_dir_and_checks_the_dataset(trained, tmp_path):
  data, workdir, _ = trained
  cache = str(pathlib.Path(workdir).parent)
  assert classifier.load_for(cache, data).meta['dataset'] == classifier.dataset_key(data)
  assert classifier.load_for(workdir, data).num_classes == NUM_CLASSES
  stacked = ml_collections.ConfigDict(dict(name='stacked', base=data))
  assert classifier.dataset_key(stacked) == classifier.dataset_key(data)
  with pytest.raises(FileNotFoundError, match='python -m gan_jax.classifier --dataset idx'):
    classifier.load_for(str(tmp_path / 'empty'), data)
  other = ml_collections.ConfigDict(dict(name='idx', dir=str(tmp_path / 'synthetic')))
  (tmp_path / 'synthetic').mkdir()
  write_idx(tmp_path / 'synthetic' / 'train-images-idx3-ubyte.gz',
            np.zeros((2, 4, 4), np.uint8))
  write_idx(tmp_path / 'synthetic' / 'train-labels-idx1-ubyte.gz', np.arange(2, dtype=np.uint8))
  with pytest.raises(ValueError, match='shape'):
    classifier.load_for(cache, other)  # same key 'idx_synthetic', other shape


def test_mixtures_and_unknown_datasets_are_rejected():
  with pytest.raises(ValueError, match='mixture'):
    classifier.base_data_config({'name': 'ring'})
  with pytest.raises(ValueError, match='valid'):
    classifier.data_config_for('cifar10')
  with pytest.raises(ValueError, match='--data_dir'):
    classifier.data_config_for('idx')


def test_cli_reuses_a_trained_classifier(trained, capsys):
  data, workdir, meta = trained
  rc = classifier.main(['--dataset', 'idx', '--data_dir', data.dir, '--workdir', workdir])
  out = capsys.readouterr().out
  assert rc == 0
  assert 'Reusing' in out and f'{100 * meta["test_accuracy"]:.2f}%' in out
  assert classifier.main(['--dataset', 'idx']) == 2
  assert '--data_dir' in capsys.readouterr().err
