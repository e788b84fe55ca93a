"""gan_jax/datasets/stacked.py: three base images as channels, 1000 modes."""

from __future__ import annotations

import numpy as np

from gan_jax import input_pipeline

from conftest import data_config, scaled, take


def check_stacked(x: np.ndarray, label: np.ndarray, data) -> None:
  """Channel k is the base image whose label is the k-th digit of `label`."""
  by_label = {int(l): scaled(im) for l, im in
              zip(data.train_labels, data.train_images)}
  for image, stacked_label in zip(x, label):
    digits = (stacked_label // 100, stacked_label // 10 % 10, stacked_label % 10)
    for k, digit in enumerate(digits):
      np.testing.assert_allclose(image[..., k], by_label[int(digit)], atol=1e-6)


def test_stacked(idx_dataset):
  cfg = data_config(name='stacked', base=dict(name='idx', dir=str(idx_dataset.dir)))
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
  cfg = data_config(name='stacked', base=dict(name='idx', dir=str(idx_dataset.dir),
                                         value_range=(0.0, 1.0)))
  assert input_pipeline.get_info(cfg).value_range == (0.0, 1.0)
  x, _ = input_pipeline.load_arrays(cfg, 'train')
  assert x.min() == 0.0 and x.max() == 1.0
