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

from conftest import CLF_NUM_CLASSES, CLF_SIZE, write_idx

# One worker under pytest-xdist (--dist loadgroup): the session's tiny classifier is trained once.
pytestmark = pytest.mark.xdist_group('tiny_classifier')

SIZE = CLF_SIZE
NUM_CLASSES = CLF_NUM_CLASSES


@pytest.fixture
def trained(tiny_classifier):
  """The session's tiny classifier (conftest.py): (data config, workdir, meta)."""
  return tiny_classifier


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


def test_predict_returns_class_probabilities(trained):
  data, workdir, _ = trained
  clf = classifier.load(workdir)
  images, _ = input_pipeline.load_arrays(data, 'test')
  pred = clf.predict(images, value_range=(-1.0, 1.0))
  assert pred.probabilities.shape == (100, NUM_CLASSES)
  assert np.all(pred.probabilities >= 0.0)
  np.testing.assert_allclose(pred.probabilities.sum(-1), 1.0, atol=1e-5)
  np.testing.assert_array_equal(np.argmax(pred.probabilities, -1), pred.labels)
  # Stacked: one (K,) distribution per channel, that channel's image's.
  stacked = np.stack([images[..., 0], images[::-1, ..., 0], images[..., 0]], axis=-1)
  sp = clf.predict(stacked, value_range=(-1.0, 1.0))
  assert sp.probabilities.shape == (100, 3, NUM_CLASSES)
  np.testing.assert_allclose(sp.probabilities[:, 1], pred.probabilities[::-1], atol=1e-5)


def test_cli_errors_are_one_paragraph(capsys):
  assert classifier.main(['--dataset', 'cifar']) == 2
  err = capsys.readouterr().err.strip()
  assert err.startswith('gan_jax.classifier: error: flag --dataset=cifar')
  assert 'fashion_mnist' in err and '\n' not in err
  assert classifier.main(['--num_epochs=0']) == 2
  err = capsys.readouterr().err.strip()
  assert err.startswith('gan_jax.classifier: error: flag --num_epochs=0')
  assert '\n' not in err
