"""Command line entry point: `python -m gan_jax.main --config experiments/X.py --workdir runs/X`.

Every flag of the project is defined here (flax examples' convention). Config
fields are overridden as `--config.loss=wasserstein_gp --config.train.num_steps=2000`;
the config is locked, so a misspelt field is an error, not a silently new field.
A workdir holds `config.py`, the run's config as a loadable file, so
`--config runs/X/config.py --workdir runs/X` resumes or reproduces a run from
its workdir alone.

Multi-host: pass --coordinator_address, --num_processes and --process_id (or set
JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID) on every host;
each process reads its own shard of the data, process 0 writes logs and
pictures, all processes write their part of every checkpoint.

Exit codes: 0 done, 2 a bad input or a diverged run (one paragraph on stderr
naming the field or file), 143 preempted by SIGTERM / SIGINT after a checkpoint,
1 a bug (one paragraph too; the traceback goes to <workdir>/error.log or a
temporary file, see gan_jax/errors.py).
"""

from __future__ import annotations

import os
import re
import sys
from typing import Sequence

from absl import app
from absl import flags
from absl import logging
import ml_collections
from ml_collections import config_flags

from gan_jax import errors

FLAGS = flags.FLAGS
EXIT_ERROR = 2
EXIT_PREEMPTED = 143  # 128 + SIGTERM, what schedulers expect of a preempted job.


class CommandLineError(ValueError):
  """A flag or config override that cannot be parsed."""


def _env_int(name: str, default: int) -> int:
  value = os.environ.get(name, str(default))
  try:
    return int(value)
  except ValueError:
    raise CommandLineError(f'the environment variable {name}={value!r} must be an '
                           'integer.') from None


def define_flags(flag_values: flags.FlagValues = FLAGS,
                 argv: Sequence[str] | None = None) -> None:
  """Defines the flags on `flag_values`.

  Tests parse into a fresh FlagValues, passing their `argv`: ml_collections
  finds the --config.* overrides in it (in sys.argv by default).
  """
  config_flags.DEFINE_config_file(
      'config', None, 'Path to an experiment config file (experiments/*.py[:variant]).',
      flag_values=flag_values, lock_config=True,
      sys_argv=None if argv is None else list(argv))
  flags.DEFINE_string('workdir', None, 'Directory for checkpoints, metrics and pictures '
                      '(default: runs/<config file name>[_<variant>]).',
                      flag_values=flag_values)
  flags.DEFINE_string('coordinator_address', os.environ.get('JAX_COORDINATOR_ADDRESS'),
                      'host:port of process 0, for multi-host training.',
                      flag_values=flag_values)
  flags.DEFINE_integer('num_processes', _env_int('JAX_NUM_PROCESSES', 1),
                       'Number of processes (hosts).', flag_values=flag_values)
  flags.DEFINE_integer('process_id', _env_int('JAX_PROCESS_ID', 0),
                       "This process's index.", flag_values=flag_values)
  flags.DEFINE_string(
      'compilation_cache', os.path.expanduser('~/.cache/gan_jax/xla'),
      'Persistent XLA compilation cache directory ("" to disable); compiling a GAN step '
      'takes 10-30 s on CPU, a cached one well under 1 s.', flag_values=flag_values)


def _one_paragraph(text: str) -> str:
  return ' '.join(line.strip() for line in str(text).strip().splitlines() if line.strip())


def _explain(error: Exception, argv: Sequence[str]) -> str:
  """A one-paragraph message for an exception raised while parsing `argv`."""
  if isinstance(error, (KeyError, AttributeError)) and error.args:
    # ml_collections: "'lossx'\nDid you mean "loss" instead of "lossx"?", quoted.
    text = _one_paragraph(str(error.args[0]).replace('\\n', '\n'))
    match = re.search(r"'([^'\\]+)", text)
    field = match.group(1) if match else '?'
    culprit = next((a.split('=')[0] for a in argv
                    if a.startswith('--config.') and re.search(
                        rf'\.{re.escape(field)}(=|$)', a.split('=')[0])), None)
    hint = re.search(r'Did you mean .*\?', text)
    return (f'{culprit or "a --config override"}: the config has no field {field!r}'
            f'{" (" + hint.group(0) + ")" if hint else ""}. Config fields cannot be '
            'added from the command line; the fields and their defaults are in '
            'gan_jax/config_base.py and the experiment file.')
  text = str(error)
  if 'Error whilst parsing config file' in text:
    # ml_collections wraps the config file's own error in its traceback; the
    # last line is what the user needs ("ValueError: config variant ...").
    last = [line for line in text.strip().splitlines() if line.strip()][-1]
    spec = next((a.split('=', 1)[1] for a in argv if a.startswith('--config=')), None)
    if spec is None and '--config' in argv[:-1]:
      spec = argv[list(argv).index('--config') + 1]
    where = f'--config={spec}: ' if spec else '--config: '
    return where + _one_paragraph(re.sub(r'^\w+(Error|Exception): ', '', last.strip()))
  return _one_paragraph(error) + ' (run with --helpfull for the flags).'


def default_workdir(config_spec: str) -> str:
  """runs/<config file name>[_<variant>]: where a run goes when --workdir is not given."""
  path, _, variant = config_spec.partition(':')
  name = os.path.splitext(os.path.basename(path))[0]
  if variant:
    name += '_' + re.sub(r'[^A-Za-z0-9_.-]', '_', variant)
  return os.path.join('runs', name)


def check_workdir(workdir: str) -> None:
  """A workdir that cannot be a directory we may write is a CommandLineError, up front.

  Nothing is created here; the loop creates the directory only once the whole
  input has been accepted.
  """
  if not workdir:
    raise CommandLineError('--workdir is empty; give a directory, e.g. --workdir runs/x '
                           '(or leave the flag out for runs/<config name>).')
  path = os.path.abspath(workdir)
  name_max = os.pathconf('/', 'PC_NAME_MAX') if hasattr(os, 'pathconf') else 255
  for part in path.split(os.sep):
    if len(part.encode()) > name_max:
      raise CommandLineError(f'--workdir={workdir!r}: the name {part[:20]!r}... has '
                             f'{len(part.encode())} bytes; the filesystem allows {name_max}.')
  if os.path.exists(path) and not os.path.isdir(path):
    raise CommandLineError(f'--workdir={workdir!r} is a file, not a directory.')
  parent = path
  while not os.path.exists(parent):
    parent = os.path.dirname(parent)
  if not os.path.isdir(parent):
    raise CommandLineError(f'--workdir={workdir!r} lies under {parent!r}, which is a '
                           'file, not a directory.')
  if not os.access(parent, os.W_OK | os.X_OK):
    raise CommandLineError(f'--workdir={workdir!r}: {parent!r} is not writable by this '
                           'user.')


def _leaf_override(argv: Sequence[str]) -> str | None:
  """The message for an override that reaches *into* a leaf (--config.loss.name=x), if any.

  ml_collections reports these as "string indices must be integers" or "no
  field 'int'"; walking the config file's own fields names the culprit.
  """
  spec = next((a.split('=', 1)[1] for a in argv if a.startswith('--config=')), None)
  if spec is None and '--config' in argv[:-1]:
    spec = argv[list(argv).index('--config') + 1]
  if spec is None:
    return None
  from gan_jax import config_base  # pylint: disable=g-import-not-at-top
  try:
    config = config_base.load_config(spec)
  except Exception:  # pylint: disable=broad-except
    return None
  for arg in argv:
    if not arg.startswith('--config.'):
      continue
    parts = arg[len('--config.'):].split('=', 1)[0].split('.')
    node = config
    for depth, part in enumerate(parts[:-1]):
      if not isinstance(node, ml_collections.ConfigDict) or part not in node:
        node = None  # a misspelt group: ml_collections' own message names it
        continue
      value = node.get(part)  # None for an unset placeholder: still a leaf
      if isinstance(value, ml_collections.ConfigDict):
        node = value
        continue
      field = '.'.join(parts[:depth + 1])
      return (f'{arg.split("=", 1)[0]}: config.{field} is a value '
              f'({type(value).__name__} {value!r}), not a group of fields; set it with '
              f'--config.{field}=...')
  return None


def parse_flags(argv: Sequence[str], flag_values: flags.FlagValues = FLAGS) -> list[str]:
  """Parses `argv`, turning every parse failure into a `CommandLineError`."""
  try:
    return flag_values(list(argv))
  except Exception as e:  # pylint: disable=broad-except
    # absl and ml_collections raise flags.Error, KeyError, AttributeError,
    # TypeError or ValueError for a bad flag; all are the user's to fix.
    raise CommandLineError(_leaf_override(argv) or _explain(e, argv)) from e


def check_flags(flag_values: flags.FlagValues = FLAGS) -> None:
  """Checks the parsed flags; loads the config file (ml_collections defers it)."""
  if flag_values.config is None:
    raise CommandLineError('--config is required, e.g. --config experiments/ring8.py '
                           '(--workdir defaults to runs/<config name>).')
  if flag_values.workdir is None:
    flag_values.workdir = default_workdir(flag_values['config'].config_filename)
    print(f'gan_jax: writing to --workdir={flag_values.workdir}', file=sys.stderr)
  check_workdir(flag_values.workdir)
  try:
    flag_values.config.keys()
  except Exception as e:  # pylint: disable=broad-except
    raise CommandLineError(f'--config={flag_values["config"].serialize().split("=", 1)[-1]}: '
                           f'{_one_paragraph(e)}') from e
  n, i = flag_values.num_processes, flag_values.process_id
  if n < 1 or not 0 <= i < n:
    raise CommandLineError(f'--process_id={i} must lie in [0, --num_processes={n}).')
  if n > 1 and not flag_values.coordinator_address:
    raise CommandLineError(f'--num_processes={n} needs --coordinator_address=host:port '
                           '(the address of process 0, the same on every process).')


def run(config: ml_collections.ConfigDict, workdir: str) -> int:
  """Trains, turning bad input, divergence and preemption into an exit code.

  Bad input and divergence are the user's to fix: one paragraph on stderr,
  no traceback from deep inside JAX (it is in the log at debug level).
  """
  from gan_jax import checkpointing  # pylint: disable=g-import-not-at-top
  from gan_jax import train  # pylint: disable=g-import-not-at-top
  try:
    train.train_and_evaluate(config, workdir)
  except train.Preempted as e:
    print(f'gan_jax: {e}', file=sys.stderr)
    return EXIT_PREEMPTED
  except (ValueError, FileNotFoundError, FloatingPointError,
          checkpointing.CheckpointError) as e:
    logging.debug('Traceback', exc_info=True)
    print(f'gan_jax: error: {_one_paragraph(e)}', file=sys.stderr)
    return EXIT_ERROR
  return 0


def _initialize(flag_values: flags.FlagValues) -> None:
  import jax  # pylint: disable=g-import-not-at-top
  if flag_values.num_processes > 1:
    jax.distributed.initialize(coordinator_address=flag_values.coordinator_address,
                               num_processes=flag_values.num_processes,
                               process_id=flag_values.process_id)
  if flag_values.compilation_cache:
    jax.config.update('jax_compilation_cache_dir', flag_values.compilation_cache)
    jax.config.update('jax_persistent_cache_min_compile_time_secs', 1.0)
  logging.info('JAX devices: %s (process %d of %d)', jax.devices(), jax.process_index(),
               jax.process_count())


def main(argv: Sequence[str]) -> None:
  """app.run's main: exit 0, 2 (bad input, divergence), 143 (preempted) or 1 (a bug).

  A bug (any other exception) is one paragraph too, its traceback in
  <workdir>/error.log or a temporary file (`errors.report_bug`). Tests call
  `run` directly, where exceptions still propagate.
  """
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  try:
    check_flags(FLAGS)
  except CommandLineError as e:
    print(f'gan_jax: error: {e}', file=sys.stderr)
    sys.exit(EXIT_ERROR)
  except Exception as e:  # pylint: disable=broad-except
    sys.exit(errors.report_bug(e, program='gan_jax', workdir=FLAGS.workdir))
  if not FLAGS['verbosity'].present:
    # orbax and JAX log every checkpoint at INFO; the progress bar says enough.
    logging.set_verbosity(logging.WARNING)
  try:
    _initialize(FLAGS)
    code = run(FLAGS.config, FLAGS.workdir)
  except Exception as e:  # pylint: disable=broad-except
    code = errors.report_bug(e, program='gan_jax', workdir=FLAGS.workdir)
  sys.exit(code)


def _parse_or_exit(argv: Sequence[str]) -> list[str]:
  try:
    return parse_flags(argv)
  except CommandLineError as e:
    print(f'gan_jax: error: {e}', file=sys.stderr)
    sys.exit(EXIT_ERROR)
  except Exception as e:  # pylint: disable=broad-except
    sys.exit(errors.report_bug(e, program='gan_jax'))


def _define_or_exit() -> None:
  try:
    define_flags(FLAGS)
  except CommandLineError as e:  # a malformed JAX_NUM_PROCESSES / JAX_PROCESS_ID.
    print(f'gan_jax: error: {e}', file=sys.stderr)
    sys.exit(EXIT_ERROR)
  except Exception as e:  # pylint: disable=broad-except
    sys.exit(errors.report_bug(e, program='gan_jax'))


if __name__ == '__main__':
  _define_or_exit()
  app.run(main, flags_parser=_parse_or_exit)
