"""Every experiment config: its :quick variant builds and takes one clean step.

Image data is fake: MNIST through `tfds.testing.mock_data` (no TensorFlow) and
IDX datasets (Fashion-MNIST) as synthetic 28x28 files written here. The step is
the one the loop runs (factory.build_spec + steps.train_step under jit).
"""

from __future__ import annotations

import contextlib
import functools
import glob
import os
import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds

from gan_jax import config_base
from gan_jax import factory
from gan_jax import input_pipeline
from gan_jax import steps
from conftest import config_fields
from conftest import write_idx

EXPERIMENTS_DIR = os.path.join(os.path.dirname(__file__), '..', 'experiments')
EXPERIMENTS = sorted(glob.glob(os.path.join(EXPERIMENTS_DIR, '*.py')))
IDX_NAMES = ('fashion_mnist', 'idx')


def load_config(path: str, arg: str | None = 'quick') -> ml_collections.ConfigDict:
  return config_base.load_config(f'{path}:{arg}' if arg else path)


@pytest.fixture(scope='module')
def fake_idx_dir(tmp_path_factory) -> str:
  """40 random 28x28 uint8 images with labels 0..9 in MNIST's IDX layout."""
  directory = tmp_path_factory.mktemp('fake_mnist_idx')
  rng = np.random.default_rng(0)
  for prefix, n in (('train', 40), ('t10k', 20)):
    write_idx(directory / f'{prefix}-images-idx3-ubyte.gz',
              rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
    write_idx(directory / f'{prefix}-labels-idx1-ubyte.gz',
              (np.arange(n) % 10).astype(np.uint8))
  return str(directory)


def _use_fake_data(data: ml_collections.ConfigDict, idx_dir: str):
  """Points image datasets at fake data; returns a context for TFDS mocking."""
  if data.name in IDX_NAMES:
    data.dir = idx_dir
  if data.name == 'stacked':
    return _use_fake_data(data.base, idx_dir)
  if data.name in ('mnist', 'tfds'):
    return tfds.testing.mock_data(num_examples=40, policy=tfds.testing.MockPolicy.USE_CODE)
  return contextlib.nullcontext()


def tree_equal(a, b) -> bool:
  return all(jax.tree_util.tree_leaves(jax.tree_util.tree_map(
      lambda x, y: bool(jnp.array_equal(x, y)), a, b)))


def test_there_are_configs_for_each_documented_experiment():
  names = {pathlib.Path(p).stem for p in EXPERIMENTS}
  assert {'gan_mnist', 'cgan_mnist', 'dcgan_mnist', 'gan_fashion_mnist',
          'cgan_fashion_mnist', 'ring8', 'grid25'} <= names


# Config -> its twin: the same nets and step on other data (checked by
# test_twins_differ_in_their_data_only). With fake data their steps are the
# same program, so the twin's step is checked in the slow tier only.
TWINS = {'gan_mnist': 'gan_fashion_mnist', 'cgan_mnist': 'cgan_fashion_mnist',
         'stacked_mnist': 'stacked_fashion_mnist', 'grid25': 'ring8'}


def _step_params():
  for path in EXPERIMENTS:
    stem = pathlib.Path(path).stem
    marks = [pytest.mark.slow] if stem in TWINS else []
    yield pytest.param(path, marks=marks, id=stem)


@pytest.mark.parametrize('name,twin', sorted(TWINS.items()))
def test_twins_differ_in_their_data_only(name, twin):
  a, b = ({path: value for path, _, value in config_fields(
      load_config(os.path.join(EXPERIMENTS_DIR, f'{n}.py')))} for n in (name, twin))
  differ = {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
  # cgan_mnist keeps no EMA (the twin's step with one is a superset) and brings
  # its own classifier; the sweep's settings are not the step's.
  allowed = ('data.', 'eval.', 'sweep.')
  assert {k for k in differ if not k.startswith(allowed)} <= {'ema_decay'}, differ


@pytest.mark.parametrize('path', list(_step_params()))
def test_quick_variant_takes_one_clean_step(path, fake_idx_dir):
  config = load_config(path)
  with config.unlocked():
    config.train.batch_size = 8
  with _use_fake_data(config.data, fake_idx_dir):
    info = input_pipeline.get_info(config.data)
    spec = factory.build_spec(config, info)
    batch = next(input_pipeline.make_iterator(
        config.data, split='train', batch_size=8 * spec.d_steps, seed=0))
  state = steps.init_state(spec, jax.random.PRNGKey(0), info.shape)
  new_state, metrics = jax.jit(functools.partial(steps.train_step, spec=spec))(state, batch)
  for name, value in metrics.items():
    assert np.isfinite(value), f'{name} is {value} after one step of {path}'
  assert not tree_equal(state.g_params, new_state.g_params)
  assert not tree_equal(state.d_params, new_state.d_params)


@pytest.mark.parametrize('path', EXPERIMENTS, ids=lambda p: pathlib.Path(p).stem)
def test_full_config_has_a_docstring_command_and_locks(path):
  config = load_config(path, arg=None)
  module_doc = open(path).read()
  assert 'python -m gan_jax.' in module_doc, f'{path} has no command in its docstring'
  locked = ml_collections.FrozenConfigDict(config)
  assert locked.train.num_steps > 0
  config.lock()
  with pytest.raises(AttributeError):
    config.trian = 1  # pylint: disable=attribute-defined-outside-init


MODE_COLLAPSE = {pathlib.Path(p).stem: p for p in EXPERIMENTS
                 if pathlib.Path(p).stem.startswith('mode_collapse_')}


@pytest.mark.parametrize('name,variant', [('mode_collapse_ring', 'pacgan'),
                                          # the ring's nets on other data: slow
                                          pytest.param('mode_collapse_grid', 'pacgan',
                                                       marks=pytest.mark.slow),
                                          ('mode_collapse_grid', 'veegan'),
                                          ('mode_collapse_ring', 'metz')])
def test_published_protocols_build_and_take_a_clean_step(name, variant):
  config = load_config(MODE_COLLAPSE[name], variant)
  assert config.sweep.num_seeds == 10 and config.eval.num_samples == 2500
  info = input_pipeline.get_info(config.data)
  spec = factory.build_spec(config, info)
  if variant == 'pacgan':
    assert config.data.train_size == 100_000 and config.train.num_steps == 400_000
    assert spec.update_order == 'simultaneous' and spec.discriminator.maxout_pieces == 5
    assert spec.generator.batch_norm and spec.generator.weight_init == 'normal'
  if variant == 'veegan':
    assert spec.generator.widths == (128, 128) and spec.discriminator.widths == (128,)
    assert config.train.batch_size == 500 and config.train.num_steps == 100_000
  if variant == 'metz':
    assert (config.data.radius, config.data.std) == (2.0, 0.02)
    assert spec.loss.name == 'minimax' and spec.generator.weight_init == 'orthogonal'
  batch = next(input_pipeline.make_iterator(config.data, split='train', batch_size=8,
                                            seed=0))
  state = steps.init_state(spec, jax.random.PRNGKey(0), info.shape)
  new_state, metrics = jax.jit(functools.partial(steps.train_step, spec=spec))(state, batch)
  assert all(np.isfinite(v) for v in metrics.values())
  assert not tree_equal(state.g_params, new_state.g_params)


@pytest.mark.parametrize('name,variant,message', [
    ('mode_collapse_ring', 'nonexistent', "variant 'nonexistent' does not exist; valid"),
    ('mode_collapse_ring', 'veegan', 'trains on the 25-mode grid only'),
    ('mode_collapse_grid', 'metz', "use mode_collapse_ring.py:metz"),
])
def test_unknown_protocol_variants_are_errors(name, variant, message):
  with pytest.raises(ValueError, match=message):
    load_config(MODE_COLLAPSE[name], variant)
