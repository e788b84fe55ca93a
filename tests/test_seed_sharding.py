"""Seeds sharded over 4 forced CPU devices train like the same seeds on one device.

`seeds.train_and_evaluate` splits the vmapped seeds axis over a 1-D 'seeds'
mesh (`seeds.seed_mesh`). This test process has one device and gives the
reference: seeds 0-5 of experiments/mode_collapse_ring.py:quick in one vmapped
program. A subprocess started with
XLA_FLAGS=--xla_force_host_platform_device_count=4 trains the same 6 seeds over
3 devices (2 per device: 6 is not divisible by 4, and the mesh takes the largest
device count that divides it), and checks on 8 seeds over all 4 devices that the
arrays really are split (one slice of 2 seeds per device, not replicated) through
a train call. (Round 8 dropped a second full run, 8 seeds over 4 devices: it ran
the same 2-seed per-device program on a larger mesh and cost ~13 s of the
suite.)

The runs stop at 10 steps (evaluated at 5 and 10): GAN training amplifies
float32 reassociation, and a different compiled program (2 seeds per device
instead of 8 vmapped) rounds differently. Measured on an AMD EPYC against the
8-seed program: seed 7 of ring:quick differs by 7e-3 in D's weights at 20 steps,
seed 1 by 3.6e-2 at 40, with the same data and keys; at 10 steps every leaf of
every seed is within 1.2e-6.

Tolerance: the evaluation (modes, high-quality fraction of 500 samples) is
equal exactly, KL to 1e-5, every parameter / optimizer-state leaf to rtol 1e-4,
atol 1e-5 (float32; a device's program vmaps 2 seeds instead of 8, so XLA may
fuse the batched matmuls differently; at 10 steps the largest measured
difference is 1.2e-6 absolute).

Run this file as a script (`python tests/test_seed_sharding.py OUT_DIR`) to get
the driver.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

NUM_DEVICES = 4
SEEDS = list(range(8))
CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      'experiments', 'mode_collapse_ring.py') + ':quick'
RESULT_FIELDS = ('modes', 'high_quality', 'kl', 'kl_all', 'final_samples')


def _config():
  """ring:quick stopped at 10 steps, before float rounding is amplified (see above)."""
  from gan_jax import config_base, sweep  # pylint: disable=g-import-not-at-top,g-multiple-import
  return sweep.apply_overrides(config_base.load_config(CONFIG),
                               {'train.num_steps': 10, 'sweep.eval_every': 5,
                                'train.eval_every': 5, 'train.checkpoint_every': 5})


def _save(path: str, result, states) -> None:
  import jax  # pylint: disable=g-import-not-at-top
  arrays = {f'result/{k}': getattr(result, k) for k in RESULT_FIELDS}
  leaves = jax.tree_util.tree_flatten_with_path(states)[0]
  arrays.update({f'state{jax.tree_util.keystr(p)}': np.asarray(v) for p, v in leaves})
  np.savez(path, **arrays)


def _driver(out_dir: str) -> None:
  """Splits 8 seeds over 4 devices, trains 6 seeds over 3; writes results and states."""
  import jax  # pylint: disable=g-import-not-at-top
  from gan_jax import config_base, factory, input_pipeline, seeds  # pylint: disable=g-import-not-at-top,g-multiple-import
  assert jax.device_count() == NUM_DEVICES, jax.devices()
  config = _config()
  report = {'mesh_sizes': {str(s): (0 if seeds.seed_mesh(s) is None else seeds.seed_mesh(s).size)
                           for s in (1, 2, 3, 4, 5, 6, 7, 8, 12)},
            'note_5': seeds._mesh_note(5, seeds.seed_mesh(5))}  # pylint: disable=protected-access

  # The arrays are split, one slice of S / n seeds per device, and stay split
  # through a train call (not gathered onto one device or replicated).
  info = input_pipeline.get_info(config.data)
  spec = factory.build_spec(config, info)
  mesh = seeds.seed_mesh(len(SEEDS))
  states = seeds.shard_seeds(seeds.init_states(spec, SEEDS, info.shape), mesh)
  run = seeds.make_train_n_steps(spec, input_pipeline.mixture_sampler(config.data),
                                 batch_size=8, num_steps=2, mesh=mesh)
  states, _ = run(states, seeds.shard_seeds(seeds.data_keys(SEEDS), mesh))
  shards = [s for leaf in jax.tree_util.tree_leaves(states) for s in leaf.addressable_shards]
  report['devices_per_leaf'] = sorted({len(leaf.sharding.device_set)
                                       for leaf in jax.tree_util.tree_leaves(states)})
  report['shard_seed_counts'] = sorted({s.data.shape[0] for s in shards})

  result, states = seeds.train_and_evaluate_states(config, SEEDS[:6])
  _save(os.path.join(out_dir, 'sharded6.npz'), result, states)
  with open(os.path.join(out_dir, 'report.json'), 'w') as f:
    json.dump(report, f)


def _compare(got, want, name: str) -> None:
  """Seed i of `got` equals seed i of `want` (the first len(got) seeds of it)."""
  assert sorted(got.files) == sorted(want.files)
  for key in got.files:
    a, b = got[key], want[key][:got[key].shape[0]]
    if key in ('result/modes', 'result/high_quality') or not np.issubdtype(
        a.dtype, np.floating):
      np.testing.assert_array_equal(a, b, err_msg=f'{name}: {key}')
    elif key.startswith('result/kl'):
      np.testing.assert_allclose(a, b, rtol=0, atol=1e-5, err_msg=f'{name}: {key}')
    else:
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=f'{name}: {key}')


def test_seeds_sharded_over_four_devices_equal_one_device(tmp_path):
  import jax  # pylint: disable=g-import-not-at-top
  from gan_jax import config_base, seeds  # pylint: disable=g-import-not-at-top,g-multiple-import
  env = dict(os.environ, XLA_FLAGS=os.environ.get('XLA_FLAGS', '') +
             f' --xla_force_host_platform_device_count={NUM_DEVICES}',
             JAX_PLATFORMS='cpu')
  # Started first, so that it runs while this process trains the reference.
  proc = subprocess.Popen([sys.executable, __file__, str(tmp_path)], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  assert jax.device_count() == 1
  assert seeds.seed_mesh(len(SEEDS)) is None
  result, states = seeds.train_and_evaluate_states(_config(), SEEDS[:6])
  _save(str(tmp_path / 'single.npz'), result, states)
  stdout, stderr = proc.communicate(timeout=900)
  assert proc.returncode == 0, stderr[-4000:]

  report = json.loads((tmp_path / 'report.json').read_text())
  assert report['mesh_sizes'] == {'1': 0, '2': 2, '3': 3, '4': 4, '5': 0, '6': 3, '7': 0,
                                  '8': 4, '12': 4}
  assert report['note_5'] == ('seeds: 5 seeds on 1 of 4 devices (1 is the largest device '
                              'count that divides 5).')
  assert report['devices_per_leaf'] == [NUM_DEVICES]
  assert report['shard_seed_counts'] == [len(SEEDS) // NUM_DEVICES]
  # Fewer devices than there are is said (tqdm.write, on stdout), not silent.
  assert 'seeds: 6 seeds on 3 of 4 devices' in stdout
  assert 'seeds: 8 seeds' not in stdout

  single = np.load(tmp_path / 'single.npz')
  # Not a comparison of untrained states: the runs trained and moved.
  assert np.any(single['result/modes'] > 0)
  _compare(np.load(tmp_path / 'sharded6.npz'), single, 'sharded6')


if __name__ == '__main__':
  _driver(sys.argv[1])
