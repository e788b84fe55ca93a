"""The unrolled lookahead with G run once (unroll.g_once) against the K-pass loop.

    python benchmarks/lookahead.py                 # the study's ring nets (D 3 x 200, z 2)
    python benchmarks/lookahead.py --small         # issue #15's nets (D 1 x 128, z 16)
    python benchmarks/lookahead.py --unroll 10 --first_order

Both programs are compiled first, then timed alternately in the same process
(one core, batch 128), so the ratio is side by side. Prints the median
ms per step of each, their ratio and the load average.
"""

import argparse
import dataclasses
import functools
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from gan_jax import xla_flags  # pylint: disable=wrong-import-position

xla_flags.pin_cpu_to_one_thread()
xla_flags.pin_to_core(0)  # one core: the XLA flag alone leaves XLA on every core

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

from gan_jax import config_base, factory, input_pipeline, steps  # pylint: disable=g-import-not-at-top,wrong-import-position,g-multiple-import


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--unroll', type=int, default=10)
  parser.add_argument('--first_order', action='store_true')
  parser.add_argument('--small', action='store_true', help="issue #15's D 1 x 128, z 16")
  parser.add_argument('--repeats', type=int, default=7)
  parser.add_argument('--steps', type=int, default=20, help='steps per timed call')
  args = parser.parse_args()
  module, _ = config_base.load_config_file('experiments/mode_collapse_ring.py')
  config = module.get_config(None)
  config.unroll.steps = args.unroll
  config.unroll.exact = not args.first_order
  if args.small:
    config.model.d_widths = (128,)
    config.model.latent_dim = 16
  spec = factory.build_spec(config, input_pipeline.get_info(config.data))
  state = steps.init_state(spec, jax.random.PRNGKey(0), (2,))
  batch = {'x': jax.random.normal(jax.random.PRNGKey(1), (128, 2))}
  fns = {}
  for once in (False, True):
    fn = jax.jit(functools.partial(steps.train_step,
                                   spec=dataclasses.replace(spec, unroll_g_once=once)))
    jax.block_until_ready(fn(state, batch))
    fns[once] = fn
  times = {False: [], True: []}
  for _ in range(args.repeats):
    for once in (False, True):
      start, s = time.perf_counter(), state
      for _ in range(args.steps):
        s, _ = fns[once](s, batch)
      jax.block_until_ready(s)
      times[once].append((time.perf_counter() - start) / args.steps)
  k_pass, g_once = (1e3 * np.median(times[k]) for k in (False, True))
  print(f'K = {args.unroll} ({"first order" if args.first_order else "exact"}), '
        f'{"issue #15 nets" if args.small else "study ring nets"}: K-pass {k_pass:.2f} ms, '
        f'G once {g_once:.2f} ms, {k_pass / g_once:.2f}x; load {os.getloadavg()}')


if __name__ == '__main__':
  main()
