"""gan_jax/input_pipeline.py, the facade: names, argument checks, dispatch.

Each source has its own file: test_mixtures.py, test_idx.py, test_tfds.py,
test_stacked.py; the registry is tested in test_datasets.py.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from gan_jax import input_pipeline
from gan_jax.datasets import mixtures

from conftest import data_config, take


# ---------------------------------------------------------------------------
# Config errors.
# ---------------------------------------------------------------------------


def test_unknown_name_lists_valid_names():
  with pytest.raises(ValueError, match=r"'rng'.*'ring', 'grid', 'idx', 'tfds'"):
    input_pipeline.get_info(data_config(name='rng'))


@pytest.mark.parametrize('fields, match', [
    (dict(name='ring', std=-0.1), 'data.std'),
    (dict(name='grid', grid_size=2.5), 'data.grid_size'),
    (dict(name='idx'), 'data.dir'),
    (dict(name='tfds'), 'data.tfds_name'),
    (dict(name='stacked', base=dict(name='ring')), 'data.base'),
])
def test_bad_fields_are_named(fields, match):
  with pytest.raises(ValueError, match=match):
    input_pipeline.make_iterator(data_config(**fields), split='train',
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
    input_pipeline.make_iterator(data_config(name='ring'), split='train', **kwargs)


def test_mixture_modes_rejects_images(idx_dataset):
  with pytest.raises(ValueError, match="'idx' is not a mixture; valid choices: ring, grid"):
    input_pipeline.mixture_modes(data_config(name='idx', dir=str(idx_dataset.dir)))


def test_mixture_sampler_is_the_mixture_modules_own():
  cfg = data_config(name='grid', grid_size=3, std=0.1)
  key = jax.random.PRNGKey(4)
  np.testing.assert_array_equal(input_pipeline.mixture_sampler(cfg)(key, 6)['x'],
                                mixtures.make_sampler(cfg)(key, 6)['x'])
  with pytest.raises(ValueError, match="'mnist' is not a mixture; valid choices: ring, grid"):
    input_pipeline.mixture_sampler(data_config(name='mnist'))

# ---------------------------------------------------------------------------
# Every source.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize('name, batch_size', [
    ('idx', 3), ('idx', 5), ('idx', 25), ('stacked', 4), ('ring', 3)])
def test_skip_batches_equals_dropping_them(idx_dataset, name, batch_size):
  base = dict(name='idx', dir=str(idx_dataset.dir))
  cfg = data_config(**({'stacked': dict(name='stacked', base=base), 'idx': base,
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
