"""gan_jax/workdir.py: what reaches TensorBoard besides scalars, and the flattened config."""

from __future__ import annotations

import ml_collections
import numpy as np

from gan_jax import plotting
from gan_jax import workdir as workdir_lib


class Recorder:
  """Stands in for tensorboardX's SummaryWriter and keeps every call."""

  def __init__(self):
    self.calls = []

  def __getattr__(self, name):
    return lambda *args, **kwargs: self.calls.append((name, args, kwargs))


def test_flatten_config_names_every_leaf():
  c = ml_collections.ConfigDict({'loss': 'hinge', 'optim': {'g': {'lr': 0.1}}, 'x': (1, 2)})
  assert workdir_lib.flatten_config(c) == {'loss': 'hinge', 'optim.g.lr': 0.1, 'x': (1, 2)}


def test_images_config_text_and_hparams_reach_tensorboard(tmp_path):
  writer = workdir_lib.MetricWriter(str(tmp_path), enabled=True)
  writer._tb.close()  # pylint: disable=protected-access
  writer._tb = recorder = Recorder()  # pylint: disable=protected-access
  png = str(tmp_path / 'grid.png')
  plotting.image_grid(np.zeros((20, 4, 4, 1)), png, rows=2)
  writer.image(7, 'samples', png)
  config = ml_collections.ConfigDict({'loss': 'hinge', 'optim': {'lr': 0.5},
                                      'widths': (3, 4)})
  writer.config(config)
  writer.hparams(config, {'eval/modes': 8.0})
  (name, args, kwargs), = [c for c in recorder.calls if c[0] == 'add_image']
  import matplotlib.image  # pylint: disable=g-import-not-at-top
  height, width = matplotlib.image.imread(png).shape[:2]
  assert args[0] == 'samples' and args[1].shape == (height, width, 3) and args[2] == 7
  assert kwargs == {'dataformats': 'HWC'}
  (_, args, _), = [c for c in recorder.calls if c[0] == 'add_text']
  assert args[0] == 'config' and '"loss": "hinge"' in args[1]
  (_, args, kwargs), = [c for c in recorder.calls if c[0] == 'add_hparams']
  # Scalars only: the tuple field cannot be an hparam.
  assert args == ({'loss': 'hinge', 'optim.lr': 0.5}, {'eval/modes': 8.0})
  writer.close()
