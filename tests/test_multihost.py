"""Two processes on 127.0.0.1 (JAX's gloo CPU collectives) train like one.

Both runs go through `train.train_and_evaluate`. The 2-process run is the real
multi-host path: `jax.distributed.initialize`, each process reading its own
shard of the data (its own mixture stream), a mesh over both processes' devices,
process 0 alone writing logs and pictures, both writing the checkpoint. The
1-process reference reads the same global batches (the two shards side by side,
micro-batch by micro-batch) and must end with the same parameters, optimizer
states, BatchNorm statistics, EMA and metrics: the changes from the initial
state are compared relative to their size, under SGD-type optimizers whose
updates are linear in the averaged gradient (see test_multidevice.py). The
2-process checkpoint is restored in the 1-process run, so checkpoints move
between process counts.

Run this file as a script to get the driver:
  python tests/test_multihost.py OUT_DIR multi PROCESS_ID PORT   (one per process)
  python tests/test_multihost.py OUT_DIR single
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from conftest import TEST_XLA_FLAGS, assert_same_changes

NUM_PROCESSES = 2
NUM_STEPS = 3


def _config():
  from gan_jax import config_base  # pylint: disable=g-import-not-at-top
  c = config_base.get_base()
  config_base.ring(c)
  config_base.toy_2d(c)
  # BatchNorm in G, EMA, two D steps (micro-batches) per G step, no dropout
  # (whose masks are per device by design).
  c.model.update(dict(latent_dim=8, g_widths=(16,), d_widths=(16,), batch_norm=True))
  c.d_steps = 2
  c.ema_decay = 0.9
  c.label_smoothing = 0.1
  # Updates linear in the averaged gradient (see test_multidevice.py).
  c.optim.g = config_base.optimizer(name='momentum', lr=0.05)
  c.optim.d = config_base.optimizer(name='sgd', lr=0.05)
  c.train.update(dict(batch_size=8, num_steps=NUM_STEPS, log_every=1,
                      eval_every=NUM_STEPS, checkpoint_every=NUM_STEPS))
  c.eval.num_samples = 40
  return c


def _global_batches(make_iterator):
  """make_iterator for one process that yields what NUM_PROCESSES processes read."""
  def combined(data_config, *, split, batch_size, seed, process_index=0, process_count=1,
               skip_batches=0):
    assert (process_index, process_count) == (0, 1)
    d_steps = _config().d_steps
    shards = [make_iterator(data_config, split=split, batch_size=batch_size // NUM_PROCESSES,
                            seed=seed, process_index=p, process_count=NUM_PROCESSES,
                            skip_batches=skip_batches) for p in range(NUM_PROCESSES)]
    while True:
      parts = [next(it) for it in shards]
      # Micro-batch i of the global batch = micro-batch i of every process, in order.
      yield {k: np.concatenate([p[k].reshape((d_steps, -1) + p[k].shape[1:]) for p in parts],
                               axis=1).reshape((-1,) + parts[0][k].shape[1:])
             for k in parts[0]}
  return combined


def _restore(workdir: str):
  import jax  # pylint: disable=g-import-not-at-top
  from gan_jax import checkpointing, factory, input_pipeline, steps  # pylint: disable=g-import-not-at-top,g-multiple-import
  from conftest import state_arrays  # pylint: disable=g-import-not-at-top
  config = _config()
  info = input_pipeline.get_info(config.data)
  spec = factory.build_spec(config, info)
  template = steps.init_state(spec, jax.random.PRNGKey(0), info.shape)
  state, step = checkpointing.restore_latest(workdir, template)
  return step, state_arrays(state), state_arrays(template)


def _driver(out_dir: str, mode: str, process_id: int = 0, port: int = 0) -> None:
  import jax  # pylint: disable=g-import-not-at-top
  if mode == 'multi':
    jax.distributed.initialize(coordinator_address=f'127.0.0.1:{port}',
                               num_processes=NUM_PROCESSES, process_id=process_id)
    assert jax.process_count() == NUM_PROCESSES and jax.device_count() == NUM_PROCESSES
  from gan_jax import input_pipeline, train  # pylint: disable=g-import-not-at-top,g-multiple-import
  if mode == 'single':
    input_pipeline.make_iterator = _global_batches(input_pipeline.make_iterator)
  train.train_and_evaluate(_config(), os.path.join(out_dir, mode))
  if mode == 'single':
    results = {}
    for name in ('multi', 'single'):
      step, arrays, initial = _restore(os.path.join(out_dir, name))
      np.savez(os.path.join(out_dir, f'{name}.npz'), **arrays)
      results[name] = step
    # train.train_and_evaluate starts from init_state(spec, PRNGKey(config.seed)).
    np.savez(os.path.join(out_dir, 'init.npz'), **initial)
    with open(os.path.join(out_dir, 'results.json'), 'w') as f:
      json.dump(results, f)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _rows(path) -> list[dict[str, float]]:
  with open(os.path.join(path, 'metrics.jsonl')) as f:
    rows = [json.loads(line) for line in f]
  return [{k: v for k, v in r.items() if k != 'train/steps_per_sec'} for r in rows]


# Slow (two JAX processes and a reference, ~30 s on 2 cores): the step under data
# parallelism is checked in CI by test_multidevice.py and test_pmap.py; this adds
# jax.distributed and per-host data, run with `pytest -m slow`.
@pytest.mark.slow
def test_two_processes_train_like_one(tmp_path):
  # No forced device count from outside: one CPU device per process.
  env = dict(os.environ, JAX_PLATFORMS='cpu', XLA_FLAGS=TEST_XLA_FLAGS)
  port = _free_port()
  procs = [subprocess.Popen([sys.executable, __file__, str(tmp_path), 'multi', str(i), str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
           for i in range(NUM_PROCESSES)]
  outputs = [p.communicate(timeout=600)[0] for p in procs]
  for p, out in zip(procs, outputs):
    assert p.returncode == 0, out[-4000:]
  single = subprocess.run([sys.executable, __file__, str(tmp_path), 'single'], env=env,
                          capture_output=True, text=True, timeout=600, check=False)
  assert single.returncode == 0, single.stderr[-4000:]

  results = json.loads((tmp_path / 'results.json').read_text())
  assert results == {'multi': NUM_STEPS, 'single': NUM_STEPS}
  multi, one = np.load(tmp_path / 'multi.npz'), np.load(tmp_path / 'single.npz')
  assert sorted(multi.files) == sorted(one.files)
  assert any('batch_stats' in k for k in multi.files)
  assert_same_changes(multi, one, np.load(tmp_path / 'init.npz'), 'multihost')
  # Process 0 alone logs: one row per step (and the final eval), not one per process.
  rows_multi, rows_single = _rows(tmp_path / 'multi'), _rows(tmp_path / 'single')
  assert [r['step'] for r in rows_multi] == [r['step'] for r in rows_single]
  assert [r['step'] for r in rows_multi if 'train/d_loss' in r] == list(range(1, NUM_STEPS + 1))
  assert all('train/d_grad_norm' in r and 'train/g_grad_norm' in r
             for r in rows_multi if 'train/d_loss' in r)
  for a, b in zip(rows_multi, rows_single):
    assert a.keys() == b.keys()
    for k in a:
      np.testing.assert_allclose(a[k], b[k], rtol=2e-4, atol=2e-5, err_msg=k)
  assert (tmp_path / 'multi' / 'samples' / f'step_{NUM_STEPS:07d}.png').exists()
  assert (tmp_path / 'multi' / 'config.py').exists()


if __name__ == '__main__':
  _driver(sys.argv[1], sys.argv[2], *(int(a) for a in sys.argv[3:]))
