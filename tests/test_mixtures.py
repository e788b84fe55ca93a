"""gan_jax/datasets/mixtures.py: the one sampler, the finite training set, the data keys."""

from __future__ import annotations

import itertools

import jax
import numpy as np
import pytest

from gan_jax import input_pipeline
from gan_jax.datasets import mixtures

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
