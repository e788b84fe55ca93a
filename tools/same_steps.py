"""Proves a refactor changed no training step: 20 steps of every experiment, old vs new code.

    python tools/same_steps.py 7dcbe75          # compare the working tree with that commit

For every experiments/*.py (its :quick variant, seed 0) it draws 20 batches with
the working tree's input pipeline, then trains the working tree's step and the
old commit's step (a `git worktree` of it, imported through PYTHONPATH) on those
same batches, and compares G's and D's parameters leaf by leaf. Feeding both
the same batches separates the step (models, losses, optimizers, options) from
the data stream, which a refactor may change on purpose (the mixtures did:
one JAX sampler since the house move). Prints one line per experiment;
exits 1 if any shared experiment differs. MNIST comes from tfds.testing.mock_data.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORKER = r'''
import contextlib, functools, glob, os, sys
import jax, numpy as np
import tensorflow_datasets as tfds
from gan_jax import config_base, factory, input_pipeline, steps
root, out, mode = sys.argv[1:4]
for path in sorted(glob.glob(os.path.join(root, 'experiments', '*.py'))):
  name = os.path.splitext(os.path.basename(path))[0]
  try:
    config = config_base.load_config(path + ':quick')
  except Exception as e:  # an experiment without a :quick variant
    print(name, 'skipped:', type(e).__name__); continue
  data = config.data.base if config.data.name == 'stacked' else config.data
  ctx = (tfds.testing.mock_data(num_examples=64, policy=tfds.testing.MockPolicy.USE_CODE)
         if data.name in ('mnist', 'tfds') else contextlib.nullcontext())
  with ctx:
    info = input_pipeline.get_info(config.data)
    spec = factory.build_spec(config, info)
    if mode == 'batches':
      it = input_pipeline.make_iterator(
          config.data, split='train', seed=0,
          batch_size=int(config.train.batch_size) * spec.d_steps)
      bs = [next(it) for _ in range(20)]
      np.savez(os.path.join(out, name + '.batches.npz'),
               **{f'{k}{i}': np.asarray(b[k]) for i, b in enumerate(bs) for k in b})
      continue
  batches = os.path.join(out, name + '.batches.npz')
  if not os.path.exists(batches):
    continue
  with np.load(batches) as f:
    bs = [{k: f[f'{k}{i}'] for k in ('x', 'label') if f'{k}{i}' in f} for i in range(20)]
  state = steps.init_state(spec, jax.random.PRNGKey(int(config.seed)), info.shape)
  step = jax.jit(functools.partial(steps.train_step, spec=spec))
  for b in bs:
    state, _ = step(state, b)
  leaves = jax.tree_util.tree_leaves_with_path((state.g_params, state.d_params))
  np.savez(os.path.join(out, f'{name}.{mode}.npz'),
           **{jax.tree_util.keystr(k): np.asarray(v) for k, v in leaves})
'''


def main(argv: list[str]) -> int:
  if len(argv) != 2:
    print(__doc__)
    return 2
  import numpy as np  # pylint: disable=g-import-not-at-top
  base = argv[1]
  with tempfile.TemporaryDirectory() as tmp:
    old, out = os.path.join(tmp, 'old'), os.path.join(tmp, 'out')
    os.makedirs(out)
    worker = os.path.join(tmp, 'worker.py')
    with open(worker, 'w') as f:
      f.write(WORKER)
    subprocess.run(['git', 'worktree', 'add', '--detach', old, base], cwd=ROOT, check=True,
                   capture_output=True)
    try:
      env = dict(os.environ, PYTHONPATH=ROOT)
      subprocess.run([sys.executable, worker, ROOT, out, 'batches'], cwd=ROOT, env=env,
                     check=True)
      subprocess.run([sys.executable, worker, ROOT, out, 'new'], cwd=ROOT, env=env,
                     check=True)
      subprocess.run([sys.executable, worker, old, out, 'old'], cwd=old,
                     env=dict(os.environ, PYTHONPATH=old), check=True)
    finally:
      subprocess.run(['git', 'worktree', 'remove', '--force', old], cwd=ROOT, check=False,
                     capture_output=True)
    bad = 0
    for new_path in sorted(glob.glob(os.path.join(out, '*.new.npz'))):
      name = os.path.basename(new_path)[:-len('.new.npz')]
      old_path = new_path.replace('.new.npz', '.old.npz')
      if not os.path.exists(old_path):
        print(f'{name}: new experiment (not in {base})')
        continue
      with np.load(new_path) as a, np.load(old_path) as b:
        if sorted(a.files) != sorted(b.files) or any(a[k].shape != b[k].shape for k in a.files):
          print(f'{name}: another model (the config changed its nets on purpose?)')
          continue
        diff = max(float(np.max(np.abs(a[k] - b[k]))) for k in a.files)
      print(f'{name}: {"bitwise equal" if diff == 0 else f"DIFFERS, max |diff| = {diff:.3g}"} '
            f'({len(a.files)} parameter arrays after 20 steps)')
      bad += diff != 0
  return 1 if bad else 0


if __name__ == '__main__':
  sys.exit(main(sys.argv))
