"""Command line entry point: `python -m gan_jax.main --config experiments/X.py --workdir runs/X`.

Every flag of the project is defined here (flax examples' convention). Config
fields are overridden as `--config.loss=wasserstein_gp --config.train.num_steps=2000`;
the config is locked, so a misspelt field is an error, not a silently new field.
Multi-host: pass --coordinator_address, --num_processes and --process_id (or set
JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID) on every host.
"""

from __future__ import annotations

import os
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

FLAGS = flags.FLAGS
_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Path to an experiment config file (experiments/*.py[:variant]).',
    lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints, metrics and pictures.')
_COORDINATOR = flags.DEFINE_string(
    'coordinator_address', os.environ.get('JAX_COORDINATOR_ADDRESS'),
    'host:port of process 0, for multi-host training.')
_NUM_PROCESSES = flags.DEFINE_integer(
    'num_processes', int(os.environ.get('JAX_NUM_PROCESSES', '1')), 'Number of processes (hosts).')
_PROCESS_ID = flags.DEFINE_integer(
    'process_id', int(os.environ.get('JAX_PROCESS_ID', '0')), 'This process\'s index.')
_CACHE = flags.DEFINE_string(
    'compilation_cache', os.path.expanduser('~/.cache/gan_jax/xla'),
    'Persistent XLA compilation cache directory ("" to disable); compiling a GAN step '
    'takes 10-30 s on CPU, a cached one well under 1 s.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  if _CONFIG.value is None or _WORKDIR.value is None:
    raise app.UsageError('--config and --workdir are required, e.g. '
                         '--config experiments/ring8.py --workdir runs/ring8')
  if not FLAGS['verbosity'].present:
    # orbax and JAX log every checkpoint at INFO; the progress bar says enough.
    logging.set_verbosity(logging.WARNING)
  import jax  # pylint: disable=g-import-not-at-top
  if _NUM_PROCESSES.value > 1:
    jax.distributed.initialize(coordinator_address=_COORDINATOR.value,
                               num_processes=_NUM_PROCESSES.value,
                               process_id=_PROCESS_ID.value)
  if _CACHE.value:
    jax.config.update('jax_compilation_cache_dir', _CACHE.value)
    jax.config.update('jax_persistent_cache_min_compile_time_secs', 1.0)
  from gan_jax import train  # pylint: disable=g-import-not-at-top
  logging.info('JAX devices: %s (process %d of %d)', jax.devices(), jax.process_index(),
               jax.process_count())
  from gan_jax import checkpointing  # pylint: disable=g-import-not-at-top
  try:
    train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  except train.Preempted as e:
    print(f'gan_jax: {e}', file=sys.stderr)
    sys.exit(143)
  except (ValueError, FileNotFoundError, FloatingPointError,
          checkpointing.CheckpointError) as e:
    # Bad input and divergence are the user's to fix: one paragraph, no traceback
    # from deep inside JAX (it is in the log at debug level).
    logging.debug('Traceback', exc_info=True)
    print(f'gan_jax: error: {e}', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  app.run(main)
