"""gan_jax.sample: samples from a trained workdir, raw or EMA G, chosen labels."""

from __future__ import annotations

import os
import pathlib

import jax
import numpy as np
import pytest
from absl import flags

from gan_jax import checkpointing
from gan_jax import config_base
from gan_jax import factory
from gan_jax import input_pipeline
from gan_jax import main
from gan_jax import sample
from gan_jax import steps

# One worker under pytest-xdist (--dist loadgroup): the module's fixtures are built once.
pytestmark = pytest.mark.xdist_group('test_sample')

ROOT = pathlib.Path(__file__).resolve().parent.parent
RING = str(ROOT / 'experiments' / 'ring8.py') + ':quick'


@pytest.fixture(scope='module')
def cgan_workdir(tmp_path_factory) -> str:
  """A 4-step conditional ring GAN with an EMA of G, trained by the real loop."""
  workdir = str(tmp_path_factory.mktemp('cgan_ring'))
  argv = ['gan_jax', '--config', RING, '--workdir', workdir,
          '--config.model.conditional=True', '--config.ema_decay=0.5',
          '--config.train.num_steps=4', '--config.train.eval_every=4',
          '--config.train.checkpoint_every=4', '--config.train.log_every=2',
          '--config.model.g_widths=(8,)', '--config.model.d_widths=(8,)',
          '--config.model.latent_dim=3', '--config.eval.num_samples=16']
  fv = flags.FlagValues()
  main.define_flags(fv, argv)
  main.parse_flags(argv, fv)
  main.check_flags(fv)
  assert main.run(fv.config, fv.workdir) == 0
  return workdir


def restored(workdir: str):
  config = config_base.load_config(os.path.join(workdir, 'config.py'))
  info = input_pipeline.get_info(config.data)
  spec = factory.build_spec(config, info)
  state, _ = checkpointing.restore_latest(
      workdir, steps.init_state(spec, jax.random.PRNGKey(0), info.shape))
  return spec, state


def test_labels_cycle_and_ema_picks_the_averaged_generator(cgan_workdir, tmp_path):
  spec, state = restored(cgan_workdir)
  raw = sample.draw(cgan_workdir, num_samples=5, labels=['3', '7'], seed=1)
  ema = sample.draw(cgan_workdir, num_samples=5, labels=['3', '7'], seed=1, ema=True)
  np.testing.assert_array_equal(raw['labels'], [3, 7, 3, 7, 3])
  assert int(raw['step']) == 4 and raw['samples'].shape == (5, 2)
  np.testing.assert_array_equal(raw['z'], ema['z'])
  # G(z, y) with the checkpoint's raw / EMA parameters, applied here by flax.
  for params, got in ((state.g_params, raw), (state.ema_params, ema)):
    want = spec.generator.apply({'params': params}, got['z'], got['labels'], train=False)
    np.testing.assert_allclose(got['samples'], want, rtol=1e-6)
  assert not np.allclose(raw['samples'], ema['samples'])  # the EMA lags G after 4 steps
  paths = sample.write(raw, str(tmp_path / 'picked'))
  assert all(os.path.getsize(p) > 0 for p in paths)
  with np.load(tmp_path / 'picked.npz') as saved:
    np.testing.assert_array_equal(saved['samples'], raw['samples'])


@pytest.mark.parametrize('kwargs,message', [
    (dict(labels=['8']), r'--labels=\[8\] outside \[0, 8\)'),
    (dict(num_samples=0), '--num_samples=0 must be >= 1'),
])
def test_bad_requests_are_named(cgan_workdir, kwargs, message):
  args = dict(num_samples=4, **kwargs) if 'num_samples' not in kwargs else kwargs
  with pytest.raises(ValueError, match=message):
    sample.draw(cgan_workdir, **args)


def test_not_a_workdir_and_no_ema(tmp_path):
  with pytest.raises(FileNotFoundError, match='has no config.py'):
    sample.draw(str(tmp_path), num_samples=4)
