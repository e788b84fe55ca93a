"""A run's workdir on disk: config snapshots, the metrics log, results.

  config.json, config.py the config of the run; `--config <workdir>/config.py` reruns it
                         (earlier differing ones are kept as config.prev-N.json / .py)
  metrics.jsonl          one JSON object per log period (train/...) and eval (eval/...)
  events.*               TensorBoard event files
  results.json           the last evaluation's metrics

Every file is replaced atomically (write, then rename), so a crash leaves either
the old or the new version, never half of one. Only the loop (gan_jax/train.py)
and the CLIs write here.
"""

from __future__ import annotations

import ast
import itertools
import json
import os
from typing import Any

from absl import logging
import ml_collections
import numpy as np


def write_atomically(path: str, text: str) -> None:
  tmp = f'{path}.tmp-{os.getpid()}'
  with open(tmp, 'w') as f:
    f.write(text)
  os.replace(tmp, path)


def config_source(config: ml_collections.ConfigDict) -> str:
  """`config` as a config file: `--config <workdir>/config.py` reproduces the run.

  Field types survive (an unset placeholder stays a typed placeholder), so the
  file accepts the same command-line overrides as the experiment it came from;
  references between fields are written as their resolved values.
  """
  lines = ['"""The config of a gan_jax run, written by gan_jax.train.', '',
           '  python -m gan_jax.main --config <this file> --workdir <its directory>',
           '"""', '', 'import ml_collections', 'from ml_collections import config_dict',
           '', '', 'def get_config(arg=None):', '  del arg',
           '  c = ml_collections.ConfigDict()']

  def walk(node: ml_collections.ConfigDict, prefix: str) -> None:
    for key, value in sorted(node.items()):
      name = f'{prefix}.{key}'
      if isinstance(value, ml_collections.ConfigDict):
        lines.append(f'  {name} = ml_collections.ConfigDict()')
        walk(value, name)
        continue
      field_type = node.get_type(key)
      if value is None and field_type is not type(None):
        code = f'config_dict.placeholder({field_type.__name__})'
      else:
        code = repr(value)
        if ast.literal_eval(code) != value:
          raise ValueError(f'config field {name[2:]}={value!r} is not a Python literal.')
      lines.append(f'  {name} = {code}')

  walk(config, 'c')
  lines.append('  return c')
  return '\n'.join(lines) + '\n'


def write_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  """config.json and config.py of the run; differing earlier ones are kept as
  config.prev-N.json / .py."""
  texts = {'json': config.to_json_best_effort(indent=2, sort_keys=True)}
  try:
    texts['py'] = config_source(config)
  except (ValueError, SyntaxError) as e:
    logging.warning('config.py not written: %s', e)
  path = os.path.join(workdir, 'config.json')
  if os.path.exists(path):
    with open(path) as f:
      if f.read() == texts['json']:
        return
    for i in itertools.count(1):
      if not os.path.exists(os.path.join(workdir, f'config.prev-{i}.json')):
        for ext in texts:
          if os.path.exists(os.path.join(workdir, f'config.{ext}')):
            os.replace(os.path.join(workdir, f'config.{ext}'),
                       os.path.join(workdir, f'config.prev-{i}.{ext}'))
        break
  for ext, text in texts.items():
    write_atomically(os.path.join(workdir, f'config.{ext}'), text)


def flatten_config(config: ml_collections.ConfigDict, prefix: str = '') -> dict[str, Any]:
  """{'optim.g.lr': 0.0002, ...}: every leaf of `config` under its dotted name."""
  flat = {}
  for key, value in config.items():
    name = f'{prefix}{key}'
    if isinstance(value, ml_collections.ConfigDict):
      flat.update(flatten_config(value, name + '.'))
    else:
      flat[name] = value
  return flat


class MetricWriter:
  """JSONL + TensorBoard, written by process 0 only."""

  def __init__(self, workdir: str, enabled: bool):
    self.enabled = enabled
    self._jsonl = None
    self._tb = None
    if enabled:
      self._jsonl = open(os.path.join(workdir, 'metrics.jsonl'), 'a')
      try:
        from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
        self._tb = SummaryWriter(workdir)
      except ImportError:
        logging.warning('tensorboardX is not installed; no TensorBoard events.')

  def write(self, step: int, scalars: dict[str, float]) -> None:
    if not self.enabled:
      return
    self._jsonl.write(json.dumps({'step': step, **scalars}) + '\n')
    self._jsonl.flush()
    if self._tb is not None:
      for k, v in scalars.items():
        self._tb.add_scalar(k, v, step)

  def image(self, step: int, tag: str, path: str) -> None:
    """A PNG the loop wrote (e.g. a sample grid), into TensorBoard's images tab."""
    if self._tb is None or not os.path.exists(path):
      return
    import matplotlib.image  # pylint: disable=g-import-not-at-top
    pixels = matplotlib.image.imread(path)[..., :3]  # float in [0, 1], HWC, no alpha
    self._tb.add_image(tag, pixels, step, dataformats='HWC')

  def config(self, config: ml_collections.ConfigDict) -> None:
    """The run's config as text (TensorBoard's text tab), written once per start."""
    if self._tb is not None:
      text = config.to_json_best_effort(indent=2, sort_keys=True)
      self._tb.add_text('config', '```\n' + text + '\n```', 0)

  def hparams(self, config: ml_collections.ConfigDict, metrics: dict[str, float]) -> None:
    """The scalar config fields with the final metrics (TensorBoard's hparams tab)."""
    if self._tb is None or not metrics:
      return
    flat = flatten_config(config)
    self._tb.add_hparams({k: v for k, v in flat.items()
                          if isinstance(v, (bool, int, float, str))},
                         {k: float(v) for k, v in metrics.items()},
                         name='hparams', global_step=0)

  def close(self) -> None:
    if self._jsonl is not None:
      self._jsonl.close()
    if self._tb is not None:
      self._tb.close()


def load_rows(workdir: str) -> list[dict[str, Any]]:
  path = os.path.join(workdir, 'metrics.jsonl')
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def truncate_metrics(workdir: str, step: int) -> None:
  """Drops rows logged after `step`: a resumed run writes them again, identically."""
  path = os.path.join(workdir, 'metrics.jsonl')
  rows = load_rows(workdir)
  kept = [r for r in rows if r.get('step', 0) <= step]
  if len(kept) < len(rows):
    write_atomically(path, ''.join(json.dumps(r) + '\n' for r in kept))


def previous_results(workdir: str) -> dict[str, float]:
  path = os.path.join(workdir, 'results.json')
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    return {k: v for k, v in json.load(f).items() if k != 'step'}


def read_history(workdir: str) -> dict[str, np.ndarray]:
  """The train/ rows of metrics.jsonl as arrays (for curves)."""
  rows = [r for r in load_rows(workdir) if 'train/d_loss' in r]
  keys = set().union(*rows) if rows else set()
  return {k: np.array([r.get(k, np.nan) for r in rows], dtype=float) for k in keys}


def write_results(workdir: str, step: int, metrics: dict[str, float]) -> None:
  """results.json: the last evaluation's metrics and the step they were taken at."""
  write_atomically(os.path.join(workdir, 'results.json'),
                   json.dumps({'step': step, **metrics}, indent=2))


def write_pending(workdir: str, step: int, start: int, rows: list[dict[str, Any]]) -> None:
  """metrics.pending.json: the rows of the log period a checkpoint of `step` cut.

  `start` is the step the period began after; the rows are the per-step metrics
  since then (float32 values survive JSON exactly).
  """
  data = {'step': int(step), 'start': int(start),
          'rows': [{k: float(v) for k, v in r.items()} for r in rows]}
  write_atomically(os.path.join(workdir, 'metrics.pending.json'), json.dumps(data))


def read_pending(workdir: str, step: int) -> tuple[int, list[dict[str, Any]]] | None:
  """(start, rows) saved with the checkpoint of `step`, as float32 scalars; None if none."""
  path = os.path.join(workdir, 'metrics.pending.json')
  if not os.path.exists(path):
    return None
  with open(path) as f:
    data = json.load(f)
  if data.get('step') != step:
    return None  # written with another checkpoint: not this period's rows
  return int(data['start']), [{k: np.float32(v) for k, v in r.items()} for r in data['rows']]
