"""gan_jax/datasets/mixtures.py: the mode centres, the one sampler, the finite
training set, the data keys; through input_pipeline as gan_jax.main uses it."""

from __future__ import annotations

import itertools
import math

import jax
import numpy as np
import pytest

from gan_jax import input_pipeline
from gan_jax.datasets import mixtures

from conftest import data_config

RING3 = {'name': 'ring', 'num_modes': 3, 'radius': 1.0, 'std': 0.01}


def test_fresh_sampler_draws_around_the_centres():
  batch = jax.device_get(mixtures.make_sampler(RING3)(jax.random.PRNGKey(0), 3000))
  # Centres at angles 0, 120, 240 degrees, radius 1.
  centres = np.array([[1.0, 0.0], [-0.5, np.sqrt(3) / 2], [-0.5, -np.sqrt(3) / 2]])
  dist = np.linalg.norm(batch['x'][:, None] - centres[None], axis=-1)
  np.testing.assert_array_equal(dist.argmin(axis=1), batch['label'])
  assert dist.min(axis=1).max() < 6 * 0.01
  np.testing.assert_allclose(np.bincount(batch['label'], minlength=3) / 3000, 1 / 3,
                             atol=0.04)


def test_finite_training_set_is_fixed_and_resampled_with_replacement():
  cfg = dict(RING3, train_size=5, train_seed=1)
  data = mixtures.training_set(cfg)
  assert data['x'].shape == (5, 2) and data['label'].shape == (5,)
  np.testing.assert_array_equal(data['x'], mixtures.training_set(cfg)['x'])
  assert not np.array_equal(data['x'], mixtures.training_set(dict(cfg, train_seed=2))['x'])
  batch = jax.device_get(mixtures.make_sampler(cfg)(jax.random.PRNGKey(3), 200))
  # Every drawn point is one of the 5 (exactly), with its label; 200 draws of 5
  # with replacement repeat points and, with probability 1 - 5 (4/5)^200, hit all 5.
  index = np.nonzero((batch['x'][:, None, :] == data['x'][None]).all(-1))[1]
  assert index.shape == (200,)
  np.testing.assert_array_equal(batch['label'], data['label'][index])
  assert set(index) == set(range(5))


def test_main_batches_resume_exactly_and_match_the_sweep_stream():
  cfg = dict(RING3, train_size=50)
  full = list(itertools.islice(mixtures.batches(cfg, batch_size=4, seed=7), 5))
  resumed = list(itertools.islice(mixtures.batches(cfg, batch_size=4, seed=7,
                                                   skip_batches=3), 2))
  for a, b in zip(full[3:], resumed):
    np.testing.assert_array_equal(a['x'], b['x'])
  # Batch t of gan_jax.main is the sweep's sample(fold_in(data_key(seed), t), n).
  sample = mixtures.make_sampler(cfg)
  sweep_batch = sample(jax.random.fold_in(mixtures.data_key(7), 2), 4)
  np.testing.assert_array_equal(full[2]['x'], np.asarray(sweep_batch['x']))
  via_pipeline = next(input_pipeline.make_iterator(cfg, split='train', batch_size=4,
                                                   seed=7, skip_batches=2))
  np.testing.assert_array_equal(via_pipeline['x'], full[2]['x'])


@pytest.mark.parametrize('field,value', [('train_size', -1), ('train_size', 2.5),
                                         ('std', float('nan')), ('radius', 0.0)])
def test_bad_fields_name_themselves(field, value):
  with pytest.raises(ValueError, match=f'data.{field}='):
    input_pipeline.get_info(dict(RING3, **{field: value}))


# ---------------------------------------------------------------------------
# Centres, info and samples, through input_pipeline.
# ---------------------------------------------------------------------------


def test_ring_centers():
  centers, std = input_pipeline.mixture_modes(
      data_config(name='ring', num_modes=8, radius=2.0, std=0.02))
  h = math.sqrt(2.0)  # 2 * cos(pi / 4)
  expected = [(2, 0), (h, h), (0, 2), (-h, h), (-2, 0), (-h, -h), (0, -2),
              (h, -h)]
  np.testing.assert_allclose(centers, expected, atol=1e-12)
  assert std == 0.02


def test_ring_defaults_are_pacgan_setting():
  centers, std = input_pipeline.mixture_modes(data_config(name='ring'))
  assert centers.shape == (8, 2) and std == 0.01
  np.testing.assert_allclose(np.linalg.norm(centers, axis=1), 1.0)


def test_grid_centers():
  centers, std = input_pipeline.mixture_modes(data_config(name='grid'))
  assert centers.shape == (25, 2) and std == 0.05
  np.testing.assert_array_equal(centers[:6], [(-4, -4), (-4, -2), (-4, 0),
                                              (-4, 2), (-4, 4), (-2, -4)])
  expected = {(x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)}
  assert {tuple(c) for c in centers.tolist()} == expected


def test_mode_count_is_read_from_the_config_alone(monkeypatch):
  assert input_pipeline.mixture_mode_count(data_config(name='ring', num_modes=8)) == (
      8, 'num_modes')
  assert input_pipeline.mixture_mode_count(data_config(name='grid', grid_size=7)) == (
      49, 'grid_size')
  # No centre is built: 10^9 modes would take ~28 GB.
  monkeypatch.setattr(mixtures, 'modes', lambda *a: pytest.fail('built the modes'))
  assert mixtures.mode_count(data_config(name='ring', num_modes=10**9))[0] == 10**9
  with pytest.raises(ValueError, match='data.grid_size'):
    mixtures.mode_count(data_config(name='grid', grid_size=0))


def test_mixture_info():
  info = input_pipeline.get_info(data_config(name='grid', grid_size=3, std=0.1))
  assert info == input_pipeline.DataInfo(
      shape=(2,), num_classes=9, value_range=(-2.4, 2.4), kind='mixture')


@pytest.mark.parametrize('fields', [
    dict(name='ring', num_modes=8, radius=1.0, std=0.01),
    dict(name='grid', grid_size=5, spacing=2.0, std=0.05),
])
def test_mixture_samples(fields):
  n = 20_000
  cfg = data_config(**fields)
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
        data_config(name='ring'), split=split, batch_size=8, seed=seed,
        process_index=process_index, process_count=2))['x']

  np.testing.assert_array_equal(first(3), first(3))
  assert not np.array_equal(first(3), first(4))
  assert not np.array_equal(first(3), first(3, process_index=1))
  # A mixture has no splits: every split is the one stream of the seed.
  np.testing.assert_array_equal(first(3), first(3, split='test'))


def test_mixtures_have_no_arrays():
  with pytest.raises(ValueError, match='infinite'):
    input_pipeline.load_arrays(data_config(name='ring'), 'train')
