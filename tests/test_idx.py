"""gan_jax/datasets/idx.py (IDX files), with the shared image helpers of
gan_jax/datasets/images.py (scaling, value_range, epochs, shards) seen through it.
"""

from __future__ import annotations

import numpy as np
import pytest

from gan_jax import input_pipeline

from conftest import data_config, scaled, take


def test_idx_info(idx_dataset):
  info = input_pipeline.get_info(data_config(name='idx', dir=str(idx_dataset.dir)))
  assert info == input_pipeline.DataInfo(
      shape=(4, 3, 1), num_classes=10, value_range=(-1.0, 1.0), kind='image')


@pytest.mark.parametrize('compressed', [True, False])
def test_idx_load_arrays_round_trip(tmp_path, write_idx_dataset_to, compressed):
  data = write_idx_dataset_to(tmp_path / 'idx', compressed=compressed)
  cfg = data_config(name='idx', dir=str(data.dir))
  for split, images, labels in [('train', data.train_images, data.train_labels),
                                ('test', data.test_images, data.test_labels)]:
    x, label = input_pipeline.load_arrays(cfg, split)
    assert x.shape == images.shape + (1,) and x.dtype == np.float32
    assert label.dtype == np.int32
    np.testing.assert_array_equal(label, labels)
    np.testing.assert_allclose(x[..., 0], scaled(images), atol=1e-6)
    # Pixels 0, 51, 255 written by the fixture.
    np.testing.assert_allclose(x[0, 0, :, 0], [-1.0, -0.6, 1.0], atol=1e-6)


def test_bad_value_range(idx_dataset):
  cfg = data_config(name='idx', dir=str(idx_dataset.dir), value_range=(1.0, 0.0))
  with pytest.raises(ValueError, match='value_range'):
    input_pipeline.get_info(cfg)


def test_idx_value_range_zero_one(idx_dataset):
  cfg = data_config(name='idx', dir=str(idx_dataset.dir), value_range=(0.0, 1.0))
  x, _ = input_pipeline.load_arrays(cfg, 'train')
  np.testing.assert_allclose(x[0, 0, :, 0], [0.0, 0.2, 1.0], atol=1e-6)
  assert input_pipeline.get_info(cfg).value_range == (0.0, 1.0)

# ---------------------------------------------------------------------------
# Batches: pairs, epochs, determinism, shards.
# ---------------------------------------------------------------------------


def test_idx_iterator_pairs_images_with_labels(idx_dataset):
  cfg = data_config(name='idx', dir=str(idx_dataset.dir))
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
  cfg = data_config(name='idx', dir=str(idx_dataset.dir))
  labels = np.concatenate([b['label'] for b in take(input_pipeline.make_iterator(
      cfg, split='train', batch_size=5, seed=0), 4)])
  epoch1, epoch2 = labels[:10], labels[10:]
  assert sorted(epoch1) == sorted(epoch2) == list(range(10))
  assert not np.array_equal(epoch1, epoch2)


def test_idx_batch_larger_than_split_spans_epochs(idx_dataset):
  cfg = data_config(name='idx', dir=str(idx_dataset.dir))
  batch = next(input_pipeline.make_iterator(cfg, split='train', batch_size=25,
                                            seed=1))
  # Two full epochs and half of a third.
  counts = np.bincount(batch['label'], minlength=10)
  assert sorted(counts) == [2] * 5 + [3] * 5


def test_idx_determinism(idx_dataset):
  cfg = data_config(name='idx', dir=str(idx_dataset.dir))

  def labels(seed):
    iterator = input_pipeline.make_iterator(cfg, split='train', batch_size=3,
                                            seed=seed)
    return np.stack([b['label'] for b in take(iterator, 7)])

  np.testing.assert_array_equal(labels(5), labels(5))
  assert not np.array_equal(labels(5), labels(6))


@pytest.mark.parametrize('process_count, per_process', [(2, 5), (3, 3)])
def test_idx_shards_are_disjoint(idx_dataset, process_count, per_process):
  cfg = data_config(name='idx', dir=str(idx_dataset.dir))
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

# ---------------------------------------------------------------------------
# Errors.
# ---------------------------------------------------------------------------


def test_idx_bad_split(idx_dataset):
  with pytest.raises(ValueError, match=r"'valid'.*\['train', 'test'\]"):
    input_pipeline.load_arrays(data_config(name='idx', dir=str(idx_dataset.dir)),
                               'valid')


def test_idx_labels_outside_num_classes(idx_dataset):
  cfg = data_config(name='idx', dir=str(idx_dataset.dir), num_classes=5)
  with pytest.raises(ValueError, match='num_classes'):
    input_pipeline.load_arrays(cfg, 'train')


def test_idx_missing_says_how_to_get_it(tmp_path):
  cfg = data_config(name='idx', dir=str(tmp_path))
  with pytest.raises(FileNotFoundError,
                     match='apt-get install dataset-fashion-mnist'):
    input_pipeline.make_iterator(cfg, split='train', batch_size=2, seed=0)
  with pytest.raises(FileNotFoundError, match='train-images-idx3-ubyte.gz'):
    input_pipeline.get_info(cfg)


def test_idx_rejects_non_idx_file(idx_dataset):
  (idx_dataset.dir / 'train-images-idx3-ubyte.gz').unlink()
  (idx_dataset.dir / 'train-images-idx3-ubyte').write_bytes(b'PK\x03\x04junk')
  with pytest.raises(ValueError, match='not an IDX file'):
    input_pipeline.load_arrays(data_config(name='idx', dir=str(idx_dataset.dir)),
                               'train')
