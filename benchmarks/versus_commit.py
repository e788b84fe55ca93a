"""The train step of this tree against the same step at another commit, side by side.

    python benchmarks/versus_commit.py                       # vs 7dcbe75, issue #15's ring nets, K = 10
    python benchmarks/versus_commit.py --rev 7dcbe75 --unroll 0,10 --first_order

Issue #15 asks for "the K = 10 ring step >= 2x faster than today's", today being
the tree the issue was filed against (7dcbe75, round 1). A ratio against the
K-pass loop that still lives in this tree (benchmarks/lookahead.py) is not that
ratio: the loop itself got faster since. So this script exports the old commit
(`git archive`) and runs each tree's own code in its own child process:

  * issue #15's nets: ring data, G 2 x 128 ReLU, D 1 x 128 ReLU, latent 16,
    batch 128, non-saturating loss, Adam, unroll.steps = K (exact unless
    --first_order), built from each tree's `config_base.get_base / ring / toy_2d`;
  * both children confined to the same one core (the OS's affinity mask; XLA's
    --xla_cpu_multi_thread_eigen=false is set too, but alone it leaves XLA on
    every core), so neither tree gains from the second core;
  * both children compile first; then the parent asks them in turn for one timed
    call of --steps steps, --repeats times, so the two trees are measured within
    seconds of each other and share whatever load the machine has.

Prints, per K, the median ms/step of each tree and the ratio old / new, with the
load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs inside each tree; only API that both trees share.
CHILD = r'''
import functools, json, os, sys, time
# One core, by the OS's affinity mask (XLA's flag alone still uses every core).
os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                           ' --xla_cpu_multi_thread_eigen=false').strip()
os.environ['OMP_NUM_THREADS'] = '1'
sys.path.insert(0, os.getcwd())
import jax
from gan_jax import config_base, factory, input_pipeline, steps
unroll, exact, num_steps = int(sys.argv[1]), sys.argv[2] == '1', int(sys.argv[3])
c = config_base.get_base()
config_base.ring(c)
config_base.toy_2d(c)
c.model.latent_dim = 16
c.loss = 'non_saturating'
c.unroll.steps = unroll
c.unroll.exact = exact
info = input_pipeline.get_info(c.data)
spec = factory.build_spec(c, info)
state = steps.init_state(spec, jax.random.PRNGKey(0), tuple(info.shape))
batch = {'x': jax.random.normal(jax.random.PRNGKey(1), (128, 2))}
step = jax.jit(functools.partial(steps.train_step, spec=spec))
state, _ = step(state, batch)
jax.block_until_ready(state)
print('ready', flush=True)
for line in sys.stdin:
  start = time.perf_counter()
  for _ in range(num_steps):
    state, metrics = step(state, batch)
  jax.block_until_ready(state)
  print(json.dumps((time.perf_counter() - start) / num_steps), flush=True)
'''


def export_tree(rev: str, dest: str) -> None:
  archive = subprocess.run(['git', '-C', ROOT, 'archive', rev], check=True,
                           capture_output=True).stdout
  subprocess.run(['tar', '-x', '-C', dest], input=archive, check=True)


def start_child(tree: str, unroll: int, exact: bool, num_steps: int) -> subprocess.Popen:
  env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
  child = subprocess.Popen(
      [sys.executable, '-c', CHILD, str(unroll), '1' if exact else '0', str(num_steps)],
      cwd=tree, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
  line = child.stdout.readline().strip()
  if line != 'ready':
    raise SystemExit(f'the child in {tree} did not start (got {line!r}); see its stderr above')
  return child


def timed_call(child: subprocess.Popen) -> float:
  child.stdin.write('go\n')
  child.stdin.flush()
  return float(child.stdout.readline())


def loadavg() -> str:
  return ', '.join(f'{x:.2f}' for x in os.getloadavg())


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--rev', default='7dcbe75', help='the commit to compare with')
  parser.add_argument('--unroll', default='10', help='comma-separated K values')
  parser.add_argument('--first_order', action='store_true')
  parser.add_argument('--steps', type=int, default=50, help='steps per timed call')
  parser.add_argument('--repeats', type=int, default=9)
  args = parser.parse_args(argv)
  unrolls = [int(k) for k in args.unroll.split(',')]
  head = subprocess.run(['git', '-C', ROOT, 'rev-parse', '--short', 'HEAD'], check=True,
                        capture_output=True, text=True).stdout.strip()
  print(f'load average before: {loadavg()}')
  rows = []
  with tempfile.TemporaryDirectory() as old_tree:
    export_tree(args.rev, old_tree)
    for unroll in unrolls:
      children = {args.rev: start_child(old_tree, unroll, not args.first_order, args.steps),
                  'this tree': start_child(ROOT, unroll, not args.first_order, args.steps)}
      times = {name: [] for name in children}
      for _ in range(args.repeats):
        for name, child in children.items():
          times[name].append(timed_call(child))
      for child in children.values():
        child.stdin.close()
        child.wait()
      old, new = (1e3 * float(np.median(times[n])) for n in children)
      rows.append((unroll, old, new))
  mode = 'first order' if args.first_order else 'exact'
  print(f'\nring nets of issue #15 (G 2 x 128, D 1 x 128, z 16, batch 128), {mode}, '
        f'one core, median of {args.repeats} x {args.steps} steps\n')
  print(f'| K | {args.rev} ms/step | {head} (this tree) ms/step | speed-up |')
  print('|---|---|---|---|')
  for unroll, old, new in rows:
    print(f'| {unroll} | {old:.2f} | {new:.2f} | {old / new:.2f}x |')
  print(f'\nload average after: {loadavg()}')
  print(json.dumps({'rows': rows}))


if __name__ == '__main__':
  main()
