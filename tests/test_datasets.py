"""gan_jax/datasets/__init__.py: the registry of sources and their interface."""

from __future__ import annotations

import itertools
import types

import jax
import numpy as np
import pytest

from gan_jax import datasets
from gan_jax import input_pipeline
from gan_jax.datasets import base, idx, mixtures, stacked, tfds

from conftest import data_config

INTERFACE = ('NAMES', 'KIND', 'info', 'arrays', 'batches')


def test_every_name_maps_to_the_module_that_lists_it():
  assert datasets.SOURCES == (mixtures, idx, tfds, stacked)
  for module in datasets.SOURCES:
    for field in INTERFACE:
      assert hasattr(module, field), (module.__name__, field)
    assert module.KIND in base.KINDS
    for name in module.NAMES + getattr(module, 'ALIASES', ()):
      assert datasets.REGISTRY[name] is module
  assert datasets.NAMES == ('ring', 'grid', 'idx', 'tfds', 'stacked', 'fashion_mnist',
                            'mnist')
  assert input_pipeline.NAMES == datasets.NAMES
  assert input_pipeline.MIXTURE_NAMES == mixtures.NAMES == ('ring', 'grid')
  assert input_pipeline.IMAGE_NAMES == ('idx', 'tfds', 'stacked', 'fashion_mnist', 'mnist')
  assert datasets.STACKABLE_NAMES == ('idx', 'tfds', 'fashion_mnist', 'mnist')
  assert input_pipeline.DataInfo is base.DataInfo
  assert input_pipeline.FASHION_MNIST_DIR == idx.FASHION_MNIST_DIR


def test_mixture_sources_have_modes_and_a_sampler():
  for name in datasets.MIXTURE_NAMES:
    assert callable(datasets.REGISTRY[name].modes)
    assert callable(datasets.REGISTRY[name].make_sampler)


def test_a_name_served_twice_is_an_error():
  twin = types.ModuleType('twin')
  twin.NAMES, twin.KIND = ('ring',), base.MIXTURE
  with pytest.raises(ValueError, match="'ring' is served by both"):
    datasets._registry((mixtures, twin))  # pylint: disable=protected-access
  twin.NAMES, twin.KIND = ('other',), 'video'
  with pytest.raises(ValueError, match="KIND='video'"):
    datasets._registry((mixtures, twin))  # pylint: disable=protected-access


def test_a_new_2d_source_is_one_module_and_one_entry(monkeypatch):
  """The recipe of the package docstring: a 2-D 'line' of 3 modes."""
  line = types.ModuleType('line')
  line.NAMES, line.KIND = ('line',), base.MIXTURE
  centres = np.array([[-1.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
  line.modes = lambda cfg: (centres, 0.01)

  def make_sampler(cfg):
    del cfg
    def sample(key, n):
      label = jax.random.randint(key, (n,), 0, 3)
      return {'x': jax.numpy.asarray(centres, jax.numpy.float32)[label], 'label': label}
    return sample

  line.make_sampler = make_sampler
  line.info = lambda cfg: base.DataInfo((2,), 3, (-1.04, 1.04), base.MIXTURE)
  line.arrays = mixtures.arrays

  def batches(cfg, *, split, batch_size, seed, process_index, process_count, skip_batches):
    del split, process_count
    return mixtures.sampler_batches(make_sampler, cfg, batch_size=batch_size, seed=seed,
                                    process_index=process_index, skip_batches=skip_batches)

  line.batches = batches
  registry = datasets._registry(datasets.SOURCES + (line,))  # pylint: disable=protected-access
  monkeypatch.setattr(datasets, 'REGISTRY', registry)
  monkeypatch.setattr(datasets, 'NAMES', tuple(registry))
  cfg = data_config(name='line')
  assert input_pipeline.get_info(cfg).is_mixture
  np.testing.assert_array_equal(input_pipeline.mixture_modes(cfg)[0], centres)
  batch = next(itertools.islice(input_pipeline.make_iterator(
      cfg, split='train', batch_size=5, seed=1, skip_batches=2), 1))
  sample = input_pipeline.mixture_sampler(cfg)
  np.testing.assert_array_equal(
      batch['x'], sample(jax.random.fold_in(mixtures.data_key(1), 2), 5)['x'])
  with pytest.raises(ValueError, match="'line' is an infinite mixture"):
    input_pipeline.load_arrays(cfg, 'train')
