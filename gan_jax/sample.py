"""Samples from a trained workdir, without training: a picture and an .npz.

    python -m gan_jax.sample --workdir runs/cgan_fashion_mnist
    python -m gan_jax.sample --workdir runs/cgan_fashion_mnist --ema --labels=3,3,7 \
        --num_samples=30 --out runs/cgan_fashion_mnist/picked

The run's own config (`<workdir>/config.py`, written by the loop) rebuilds the
models, the latest checkpoint is restored, and G (its EMA with --ema, when the
run kept one) draws `--num_samples` samples from `--seed`'s z, in inference mode.
A conditional G draws the labels given by --labels, cycled (default 0, 1, ...,
K-1, 0, ...). Written: `<out>.png` (an image grid, one row per label of a CGAN,
or a 2-D scatter over the modes) and `<out>.npz` (samples, labels, z, step).
Bad input is one paragraph on stderr and exit code 2.
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

from absl import app
from absl import flags
from absl import logging
import numpy as np

from gan_jax import errors

FLAGS = flags.FLAGS
EXIT_ERROR = 2
MAX_SAMPLES = 100_000


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
  flags.DEFINE_string('workdir', None, 'A training workdir (with config.py and checkpoints).',
                      flag_values=flag_values)
  flags.DEFINE_integer('num_samples', 64, 'How many samples.', flag_values=flag_values)
  flags.DEFINE_list('labels', None, 'Labels of a conditional G, cycled (default all).',
                    flag_values=flag_values)
  flags.DEFINE_bool('ema', False, "Sample the EMA of G's parameters (config.ema_decay > 0).",
                    flag_values=flag_values)
  flags.DEFINE_integer('seed', 0, 'Seed of the latent draws.', flag_values=flag_values)
  flags.DEFINE_string('out', None, 'Output path without extension (default '
                      '<workdir>/samples/sample_<step>).', flag_values=flag_values)


def draw(workdir: str, *, num_samples: int, labels: Sequence[int] | None = None,
         ema: bool = False, seed: int = 0) -> dict[str, np.ndarray]:
  """{'samples', 'labels' (or absent), 'z', 'step'} from the latest checkpoint of `workdir`."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from gan_jax import checkpointing, config_base, factory, input_pipeline, steps  # pylint: disable=g-import-not-at-top,g-multiple-import
  config_path = os.path.join(workdir, 'config.py')
  if not os.path.isfile(config_path):
    raise FileNotFoundError(f'--workdir={workdir!r} has no config.py; is it a gan_jax '
                            'training workdir (python -m gan_jax.main writes one)?')
  if num_samples < 1:
    raise ValueError(f'--num_samples={num_samples} must be >= 1.')
  config = config_base.load_config(config_path)
  info = input_pipeline.get_info(config.data)
  spec = factory.build_spec(config, info)
  if ema and spec.ema_decay <= 0:
    raise ValueError(f'--ema: the run kept no EMA of G (config.ema_decay='
                     f'{spec.ema_decay}); sample without --ema.')
  y = None
  if spec.conditional:
    wanted = [int(l) for l in labels] if labels else list(range(spec.num_classes))
    bad = [l for l in wanted if not 0 <= l < spec.num_classes]
    if bad:
      raise ValueError(f'--labels={bad} outside [0, {spec.num_classes}).')
    y = jnp.asarray(np.resize(np.asarray(wanted, np.int32), num_samples))
  elif labels:
    raise ValueError('--labels: this G is not conditional (config.model.conditional=False).')
  # The input is checked; only now is the checkpoint read.
  template = steps.init_state(spec, jax.random.PRNGKey(0), info.shape)
  state, step = checkpointing.restore_latest(workdir, template)
  z = steps.sample_latents(spec, jax.random.PRNGKey(seed), num_samples)
  params = state.ema_params if ema else state.g_params
  samples = jax.jit(lambda p, bs, z, y: steps.generate(spec, p, bs, z, y))(
      params, state.g_batch_stats, z, y)
  out = {'samples': np.asarray(samples), 'z': np.asarray(z), 'step': np.asarray(step)}
  if y is not None:
    out['labels'] = np.asarray(y)
  out['_config'] = config
  out['_info'] = info
  return out


def write(result: dict, out: str) -> list[str]:
  """`out`.npz and `out`.png of `draw`'s result; returns the two paths."""
  from gan_jax import plotting  # pylint: disable=g-import-not-at-top
  config, info = result.pop('_config'), result.pop('_info')
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  np.savez_compressed(out + '.npz', **result)
  samples = result['samples']
  if info.is_mixture:
    from gan_jax import input_pipeline  # pylint: disable=g-import-not-at-top
    centers, _ = input_pipeline.mixture_modes(config.data)
    plotting.mixture_scatter(samples, centers, out + '.png',
                             title=f'step {int(result["step"])}')
  else:
    labels = result.get('labels')
    cols = 10 if len(samples) >= 10 else len(samples)
    rows = max(1, len(samples) // cols)
    names = tuple(config.data.get('class_names', None) or ())
    row_labels = None
    if labels is not None:
      row_labels = [names[l] if l < len(names) else str(l)
                    for l in labels[:rows * cols:cols]]
    plotting.image_grid(samples[:rows * cols], out + '.png', rows=rows,
                        value_range=info.value_range, row_labels=row_labels,
                        title=f'step {int(result["step"])}')
  return [out + '.npz', out + '.png']


def _check_flags(flag_values: flags.FlagValues) -> None:
  """The flags that `draw` and `write` take on trust; ValueError naming the flag."""
  if not flag_values.workdir:
    raise ValueError('--workdir is required.')
  if not 0 <= flag_values.seed < 2**31:
    raise ValueError(f'--seed={flag_values.seed} must lie in [0, 2^31).')
  if not 1 <= flag_values.num_samples <= MAX_SAMPLES:
    raise ValueError(f'--num_samples={flag_values.num_samples} must lie in [1, '
                     f'{MAX_SAMPLES}] (one picture and one .npz hold them all).')
  for label in flag_values.labels or ():
    try:
      int(label)
    except ValueError:
      raise ValueError(f'--labels={",".join(flag_values.labels)}: {label!r} is not an '
                       'integer label.') from None
  if flag_values.out is not None:
    out = os.path.abspath(flag_values.out or '.')
    if not flag_values.out or flag_values.out.endswith(os.sep) or os.path.isdir(out):
      raise ValueError(f'--out={flag_values.out!r} must be a path without extension, '
                       'not a directory (.npz and .png are added).')
    parent = os.path.dirname(out)
    while not os.path.exists(parent):
      parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
      raise ValueError(f'--out={flag_values.out!r} lies under {parent!r}, which is a '
                       'file, not a directory.')
    if not os.access(parent, os.W_OK | os.X_OK):
      raise ValueError(f'--out={flag_values.out!r}: {parent!r} is not writable.')


def _parse_or_exit(argv: Sequence[str]) -> list[str]:
  """absl's parser, with a bad flag as one paragraph and exit code 2 (not absl's 1)."""
  try:
    return FLAGS(list(argv))
  except flags.Error as e:
    print(f'gan_jax.sample: error: {" ".join(str(e).split())} (run with --helpfull for '
          'the flags).', file=sys.stderr)
    sys.exit(EXIT_ERROR)


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  try:
    _check_flags(FLAGS)
  except ValueError as e:
    print(f'gan_jax.sample: error: {" ".join(str(e).split())}', file=sys.stderr)
    sys.exit(EXIT_ERROR)
  if not FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)  # orbax logs every restore at INFO
  from gan_jax import checkpointing  # pylint: disable=g-import-not-at-top
  try:
    result = draw(FLAGS.workdir, num_samples=FLAGS.num_samples, labels=FLAGS.labels,
                  ema=FLAGS.ema, seed=FLAGS.seed)
    out = FLAGS.out or os.path.join(FLAGS.workdir, 'samples',
                                    f'sample_{int(result["step"]):07d}')
    paths = write(result, out)
  except (ValueError, FileNotFoundError, checkpointing.CheckpointError) as e:
    text = ' '.join(str(e).split())
    print(f'gan_jax.sample: error: {text}', file=sys.stderr)
    sys.exit(EXIT_ERROR)
  except Exception as e:  # pylint: disable=broad-except
    # A bug: one paragraph, the traceback in <workdir>/error.log (errors.py).
    sys.exit(errors.report_bug(e, program='gan_jax.sample', workdir=FLAGS.workdir))
  print('wrote ' + ' and '.join(paths))


if __name__ == '__main__':
  define_flags()
  app.run(main, flags_parser=_parse_or_exit)
