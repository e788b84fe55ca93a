"""The same `steps.train_step` under `jax.pmap` equals train.py's jit + shard_map step and one device.

train.py runs data parallelism as jit(shard_map(train_step)) over a 1-D mesh;
`steps.train_step(..., axis_name='batch')` itself only uses `lax.pmean`,
`lax.psum` and `lax.axis_index`, which pmap binds too. In a subprocess started
with XLA_FLAGS=--xla_force_host_platform_device_count=4 each config takes
NUM_STEPS steps on the same global batches three ways:

  * 'single': jit(train_step) on one device, the global batch whole;
  * 'shard_map': `train.make_step_fn(spec, train.make_mesh())`, the batch laid
    out by `train.shard_batch`, the state by `train.replicate` (train.py's path);
  * 'pmap': jax.pmap(train_step, axis_name='batch'), the state replicated on
    every device (leading axis 4), the batch reshaped by `pmap_batch` so that
    device k holds slice k of each of the d_steps micro-batches.

Both players use SGD-type optimizers (every update linear in the averaged
gradient), as in tests/test_multidevice.py. Tolerances (float32, the only
difference is the order of the cross-device reductions):
  * pmap vs shard_map: every state leaf to rtol 1e-5, atol 1e-6, every metric to
    rtol 1e-5, atol 1e-6 (the per-device programs and their pmeans are the same);
  * pmap vs one device: the parameter / optimizer-state / BatchNorm / EMA
    changes (final - initial) to 1e-3 of the largest change of each leaf
    (`conftest.assert_same_changes`), every metric to rtol 2e-4, atol 2e-5.
The 4 pmap replicas of the state must be bitwise equal (pmean'd updates).

Run this file as a script (`python tests/test_pmap.py OUT_DIR mlp dcgan`) to get the driver.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import assert_same_changes

NUM_DEVICES = 4
NUM_STEPS = 3
BATCH = 8


def pmap_batch(batch: dict[str, np.ndarray], num_devices: int, d_steps: int
               ) -> dict[str, np.ndarray]:
  """A global (d_steps * B, ...) batch as pmap's (num_devices, d_steps * B / n, ...).

  Device k gets slice k of each micro-batch (micro-batch i stays D's i-th update),
  the layout `train.shard_batch` gives shard_map.
  """
  def split(v):
    v = v.reshape((d_steps, num_devices, -1) + v.shape[1:])
    return np.swapaxes(v, 0, 1).reshape((num_devices, -1) + v.shape[3:])
  return {k: split(np.asarray(v)) for k, v in batch.items()}


def _configs():
  import ml_collections  # pylint: disable=g-import-not-at-top
  from gan_jax import config_base, input_pipeline  # pylint: disable=g-import-not-at-top,g-multiple-import
  # 2-D MLP: BatchNorm in G (synchronised over 'batch'), EMA, 2 D steps per G
  # step, WGAN-GP's interpolation noise, instance noise, first-order unroll.
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
  mlp.optim.g = config_base.optimizer(name='sgd', lr=0.05)
  mlp.optim.d = config_base.optimizer(name='momentum', lr=0.05)
  # Conditional DCGAN on 8 x 8 images: BatchNorm in both players, matching-aware
  # D (wrong labels drawn per example), noisy targets.
  dcgan = config_base.get_base()
  dcgan.data = ml_collections.ConfigDict(dict(name='idx', dir='/nonexistent',
                                              value_range=(-1.0, 1.0)))
  dcgan.model.update(dict(name='dcgan', conditional=True, latent_dim=8, base_width=4,
                          batch_norm=True))
  dcgan.matching_aware = True
  dcgan.label_noise = 0.05
  dcgan.ema_decay = 0.5
  dcgan.optim.g = config_base.optimizer(name='momentum', lr=0.05)
  dcgan.optim.d = config_base.optimizer(name='sgd', lr=0.05)
  infos = {'mlp': input_pipeline.get_info(mlp.data),
           'dcgan': input_pipeline.DataInfo((8, 8, 1), 10, (-1.0, 1.0), 'image')}
  return {'mlp': mlp, 'dcgan': dcgan}, infos


def _batches(spec, info, rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
  n = spec.d_steps * BATCH
  out = []
  for _ in range(NUM_STEPS):
    batch = {'x': rng.uniform(-1, 1, (n,) + tuple(info.shape)).astype(np.float32)}
    if spec.conditional:
      batch['label'] = rng.integers(0, spec.num_classes, (n,)).astype(np.int32)
    out.append(batch)
  return out


def _driver(out_dir: str, names: list[str]) -> None:
  """Runs the named configs three ways each; writes final states and metrics."""
  import functools  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  from gan_jax import factory, steps, train  # pylint: disable=g-import-not-at-top,g-multiple-import
  from conftest import state_arrays  # pylint: disable=g-import-not-at-top
  assert jax.device_count() == NUM_DEVICES, jax.devices()
  mesh = train.make_mesh()
  configs, infos = _configs()
  metrics_out = {}
  for name in names:
    config, info = configs[name], infos[name]
    single_spec = factory.build_spec(config, info)
    spec = train.build_spec(config, info, mesh)  # BatchNorm over 'batch'
    init = steps.init_state(single_spec, jax.random.PRNGKey(0), info.shape)
    batches = _batches(spec, info, np.random.default_rng(0))
    np.savez(os.path.join(out_dir, f'{name}_init.npz'), **state_arrays(init))

    runs = {}
    single = jax.jit(functools.partial(steps.train_step, spec=single_spec))
    state, rows = init, []
    for b in batches:
      state, m = single(state, b)
      rows.append(m)
    runs['single'] = (state, rows)

    step = train.make_step_fn(spec, mesh)
    state, rows = train.replicate(init, mesh), []
    for b in batches:
      state, m = step(state, train.shard_batch(b, mesh, spec.d_steps))
      rows.append(m)
    runs['shard_map'] = (train.host_local(state), rows)

    pstep = jax.pmap(functools.partial(steps.train_step, spec=spec, axis_name='batch'),
                     axis_name='batch')
    # pmap's replicated state: a leading device axis (device_put_replicated is
    # deprecated in this JAX).
    state = jax.tree_util.tree_map(
        lambda x: np.stack([np.asarray(x)] * NUM_DEVICES), init)
    rows = []
    for b in batches:
      state, m = pstep(state, pmap_batch(b, NUM_DEVICES, spec.d_steps))
      rows.append(m)
    replicas = state_arrays(state)
    metrics_out[f'{name}_pmap_replicas_equal'] = all(
        bool(np.all(v == v[:1])) for v in replicas.values())
    metrics_out[f'{name}_pmap_metrics_equal_on_devices'] = all(
        bool(np.all(np.asarray(v) == np.asarray(v)[:1])) for m in rows for v in m.values())
    runs['pmap'] = (jax.tree_util.tree_map(lambda x: x[0], state),
                    [jax.tree_util.tree_map(lambda x: x[0], m) for m in rows])

    for way, (state, rows) in runs.items():
      np.savez(os.path.join(out_dir, f'{name}_{way}.npz'), **state_arrays(state))
      metrics_out[f'{name}_{way}'] = [
          {k: float(v) for k, v in jax.device_get(m).items()} for m in rows]
  with open(os.path.join(out_dir, 'metrics.json'), 'w') as f:
    json.dump(metrics_out, f)


def _assert_metrics_close(a, b, rtol, atol, name):
  assert len(a) == len(b) == NUM_STEPS
  for t, (ra, rb) in enumerate(zip(a, b)):
    assert ra.keys() == rb.keys()
    assert 'd_loss' in ra and 'g_grad_norm' in ra
    for k in ra:
      np.testing.assert_allclose(ra[k], rb[k], rtol=rtol, atol=atol,
                                 err_msg=f'{name}: step {t} {k}')


# The DCGAN's conv step compiles for ~20 s three ways: slow. The data-parallel
# DCGAN (BatchNorm in both players, conditional) is checked in CI through the
# loop by tests/test_multidevice.py.
@pytest.mark.parametrize('name', ['mlp', pytest.param('dcgan', marks=pytest.mark.slow)])
def test_pmap_equals_shard_map_and_one_device(name, tmp_path):
  env = dict(os.environ, XLA_FLAGS=os.environ.get('XLA_FLAGS', '') +
             f' --xla_force_host_platform_device_count={NUM_DEVICES}',
             JAX_PLATFORMS='cpu')
  proc = subprocess.run([sys.executable, __file__, str(tmp_path), name], env=env,
                        capture_output=True, text=True, timeout=900, check=False)
  assert proc.returncode == 0, proc.stderr[-4000:]
  metrics = json.loads((tmp_path / 'metrics.json').read_text())
  assert metrics[f'{name}_pmap_replicas_equal'], name
  assert metrics[f'{name}_pmap_metrics_equal_on_devices'], name
  init = np.load(tmp_path / f'{name}_init.npz')
  pmap = np.load(tmp_path / f'{name}_pmap.npz')
  shard = np.load(tmp_path / f'{name}_shard_map.npz')
  single = np.load(tmp_path / f'{name}_single.npz')
  assert sorted(pmap.files) == sorted(shard.files) == sorted(single.files)
  assert any('batch_stats' in k and 'mean' in k for k in pmap.files), name
  for key in pmap.files:
    np.testing.assert_allclose(pmap[key], shard[key], rtol=1e-5, atol=1e-6,
                               err_msg=f'{name}: pmap vs shard_map {key}')
  assert_same_changes(pmap, single, init, f'{name}: pmap vs one device')
  _assert_metrics_close(metrics[f'{name}_pmap'], metrics[f'{name}_shard_map'], 1e-5, 1e-6,
                        f'{name}: pmap vs shard_map')
  _assert_metrics_close(metrics[f'{name}_pmap'], metrics[f'{name}_single'], 2e-4, 2e-5,
                        f'{name}: pmap vs one device')


def test_pmap_batch_layout_matches_shard_batch():
  # Device k's rows under pmap are the rows train.shard_batch gives device k.
  x = np.arange(2 * 8 * 3, dtype=np.float32).reshape(16, 3)
  got = pmap_batch({'x': x}, 4, 2)['x']
  assert got.shape == (4, 4, 3)
  for k in range(4):
    want = np.concatenate([x[0:8][2 * k:2 * k + 2], x[8:16][2 * k:2 * k + 2]])
    np.testing.assert_array_equal(got[k], want)


if __name__ == '__main__':
  _driver(sys.argv[1], sys.argv[2:])
