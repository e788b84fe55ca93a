"""gan_jax/datasets/tfds.py, mocked (tfds.testing.mock_data needs no TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow_datasets as tfds

from gan_jax import input_pipeline

from conftest import data_config, scaled, take


def test_tfds_mnist_mocked():
  cfg = data_config(name='mnist', value_range=(0.0, 1.0))
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
  cfg = data_config(name='tfds', tfds_name='mnist', tfds_data_dir=str(tmp_path))
  with pytest.raises(FileNotFoundError, match='pip install tensorflow-cpu'):
    input_pipeline.make_iterator(cfg, split='train', batch_size=2, seed=0)
