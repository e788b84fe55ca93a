"""Data parallelism on 4 forced CPU devices equals training on one device.

The comparison runs in a subprocess started with
XLA_FLAGS=--xla_force_host_platform_device_count=4 (this test process keeps its
single device). There, `train.train_and_evaluate` trains each config twice on
the same global batches: over the 4-device mesh, and on one device (the mesh
switched off). Both players use SGD-type optimizers (plain SGD, momentum), so
every update is linear in the averaged gradient, and the *changes* of the
parameters, optimizer states, BatchNorm statistics and EMA (final - initial) are
compared with a tolerance relative to their size: a gradient summed instead of
averaged over the 4 devices moves them 4 times as far. The logged metrics,
gradient norms included, must agree too. Only the reduction order differs.

Run this file as a script (`python tests/test_multidevice.py OUT_DIR core|more`)
to get the driver.
"""

from __future__ import annotations

import gzip
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from conftest import assert_same_changes

NUM_DEVICES = 4
NUM_STEPS = 3


def _write_idx(path: str, array: np.ndarray) -> None:
  header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f'>{array.ndim}I', *array.shape)
  with gzip.open(path, 'wb') as f:
    f.write(header + array.astype(np.uint8).tobytes())


def _tiny_images(directory: str) -> None:
  """64 random 8 x 8 images of 10 classes, MNIST-named IDX files."""
  rng = np.random.default_rng(0)
  os.makedirs(directory, exist_ok=True)
  for prefix, n in (('train', 64), ('t10k', 16)):
    _write_idx(os.path.join(directory, f'{prefix}-images-idx3-ubyte.gz'),
               rng.integers(0, 256, (n, 8, 8)))
    _write_idx(os.path.join(directory, f'{prefix}-labels-idx1-ubyte.gz'),
               np.arange(n) % 10)


def _configs(data_dir: str):
  import ml_collections  # pylint: disable=g-import-not-at-top
  from gan_jax import config_base  # pylint: disable=g-import-not-at-top
  # 2-D MLP: BatchNorm in G, EMA, 2 D steps per G step (two micro-batches),
  # WGAN-GP (per-example interpolation noise), instance noise, first-order unroll.
  mlp = config_base.get_base()
  config_base.ring(mlp)
  config_base.toy_2d(mlp)
  mlp.model.update(dict(latent_dim=8, g_widths=(16,), d_widths=(16,), batch_norm=True))
  mlp.loss = 'wasserstein_gp'
  mlp.d_steps = 2
  mlp.ema_decay = 0.9
  mlp.instance_noise.std = 0.1
  mlp.unroll.steps = 1
  mlp.unroll.exact = False
  # Conditional DCGAN with BatchNorm in both players, matching-aware D, noisy targets.
  dcgan = config_base.get_base()
  dcgan.data = ml_collections.ConfigDict(
      dict(name='idx', dir=data_dir, value_range=(-1.0, 1.0)))
  dcgan.model.update(dict(name='dcgan', conditional=True, latent_dim=8, base_width=4,
                          batch_norm=True))
  dcgan.matching_aware = True
  dcgan.label_noise = 0.05
  dcgan.ema_decay = 0.5
  mlp.optim.g = config_base.optimizer(name='sgd', lr=0.05)
  mlp.optim.d = config_base.optimizer(name='momentum', lr=0.05)
  dcgan.optim.g = config_base.optimizer(name='momentum', lr=0.05)
  dcgan.optim.d = config_base.optimizer(name='sgd', lr=0.05)
  # Game methods (issue 10): spectrally normalised D, simultaneous extragradient /
  # consensus, hinge loss, SGD.
  games = {}
  for method in ('extragradient', 'consensus'):
    g = config_base.get_base()
    config_base.ring(g)
    config_base.toy_2d(g)
    g.model.update(dict(latent_dim=8, g_widths=(16,), d_widths=(16,), d_spectral_norm=True))
    g.loss = 'hinge'
    g.update_order = 'simultaneous'
    g.game.method = method
    g.optim.g = config_base.optimizer(name='sgd', lr=0.05)
    g.optim.d = config_base.optimizer(name='sgd', lr=0.05)
    games[f'game_{method}'] = g
  for c in (mlp, dcgan, *games.values()):
    c.train.update(dict(batch_size=8, num_steps=NUM_STEPS, log_every=1,
                        eval_every=NUM_STEPS, checkpoint_every=NUM_STEPS))
    c.eval.num_samples = 40
  return {'mlp': mlp, 'dcgan': dcgan, **games}


# The suite runs the DCGAN through the loop; the MLP's step over the mesh is
# checked against one device by tests/test_pmap.py (the same config), so its
# loop run and the game methods' (another 40 s of compiling on CI's 2 cores)
# are marked slow.
GROUPS = {'core': ('dcgan',), 'more': ('mlp', 'game_extragradient', 'game_consensus')}


def _driver(out_dir: str, group: str) -> None:
  """Trains every config of `group` with and without the mesh; writes the final states."""
  import jax  # pylint: disable=g-import-not-at-top
  from gan_jax import checkpointing, factory, input_pipeline, steps, train  # pylint: disable=g-import-not-at-top,g-multiple-import
  from conftest import state_arrays  # pylint: disable=g-import-not-at-top
  assert jax.device_count() == NUM_DEVICES, jax.devices()
  results = {}
  make_mesh = train.make_mesh
  for name, config in _configs(os.path.join(out_dir, 'idx')).items():
    if name not in GROUPS[group]:
      continue
    for mode in ('mesh', 'single'):
      train.make_mesh = make_mesh if mode == 'mesh' else (lambda: None)
      workdir = os.path.join(out_dir, f'{name}_{mode}')
      train.train_and_evaluate(config, workdir)
      info = input_pipeline.get_info(config.data)
      spec = factory.build_spec(config, info)
      template = steps.init_state(spec, jax.random.PRNGKey(0), info.shape)
      state, step = checkpointing.restore_latest(workdir, template)
      np.savez(os.path.join(out_dir, f'{name}_{mode}.npz'), **state_arrays(state))
      # train.train_and_evaluate starts from init_state(spec, PRNGKey(config.seed)).
      np.savez(os.path.join(out_dir, f'{name}_init.npz'), **state_arrays(template))
      results[f'{name}_{mode}'] = step
  train.make_mesh = make_mesh

  # Per-device dropout: identical inputs on every device must get different masks.
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  P = jax.sharding.PartitionSpec
  mesh = train.make_mesh()

  class Dropout(nn.Module):
    @nn.compact
    def __call__(self, x, labels=None, *, train):
      return nn.Dropout(0.5, deterministic=not train)(x)

  dropout = Dropout()
  fn = jax.shard_map(
      lambda x: steps._apply(dropout, {}, {}, x, None, jax.random.PRNGKey(0),  # pylint: disable=protected-access
                             train.BATCH_AXIS)[0],
      mesh=mesh, in_specs=P(train.BATCH_AXIS), out_specs=P(train.BATCH_AXIS))
  masks = np.asarray(fn(np.ones((NUM_DEVICES, 64), np.float32)))
  results['distinct_dropout_masks'] = len({m.tobytes() for m in masks})
  with open(os.path.join(out_dir, 'results.json'), 'w') as f:
    json.dump(results, f)


def _metrics(path: str) -> list[dict[str, float]]:
  with open(os.path.join(path, 'metrics.jsonl')) as f:
    rows = [json.loads(line) for line in f]
  return [{k: v for k, v in r.items() if k != 'train/steps_per_sec'} for r in rows]


@pytest.mark.parametrize('group', ['core', pytest.param('more', marks=pytest.mark.slow)])
def test_four_devices_train_like_one(group, tmp_path):
  _tiny_images(str(tmp_path / 'idx'))
  env = dict(os.environ, XLA_FLAGS=os.environ.get('XLA_FLAGS', '') +
             f' --xla_force_host_platform_device_count={NUM_DEVICES}',
             JAX_PLATFORMS='cpu')
  proc = subprocess.run([sys.executable, __file__, str(tmp_path), group], env=env,
                        capture_output=True, text=True, timeout=900, check=False)
  assert proc.returncode == 0, proc.stderr[-4000:]
  results = json.loads((tmp_path / 'results.json').read_text())
  assert results['distinct_dropout_masks'] == NUM_DEVICES
  for name in GROUPS[group]:
    assert results[f'{name}_mesh'] == results[f'{name}_single'] == NUM_STEPS
    mesh = np.load(tmp_path / f'{name}_mesh.npz')
    single = np.load(tmp_path / f'{name}_single.npz')
    assert sorted(mesh.files) == sorted(single.files)
    # BatchNorm's running mean, or spectral norm's power-iteration vector u.
    stat = 'kernel/u' if name.startswith('game') else 'mean'
    assert any('batch_stats' in k and stat in k for k in mesh.files)
    assert_same_changes(mesh, single, np.load(tmp_path / f'{name}_init.npz'), name)
    rows_mesh, rows_single = _metrics(tmp_path / f'{name}_mesh'), _metrics(
        tmp_path / f'{name}_single')
    assert [r['step'] for r in rows_mesh] == [r['step'] for r in rows_single]
    assert len([r for r in rows_mesh if 'train/d_loss' in r]) == NUM_STEPS
    assert all('train/d_grad_norm' in r and 'train/g_grad_norm' in r
               for r in rows_mesh if 'train/d_loss' in r)
    for a, b in zip(rows_mesh, rows_single):
      assert a.keys() == b.keys()
      for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=2e-4, atol=2e-5, err_msg=f'{name}: {k}')


if __name__ == '__main__':
  _driver(sys.argv[1], sys.argv[2])
