"""What every data source shares: `DataInfo`, the two kinds, the config type.

Kept apart from `gan_jax/datasets/__init__.py` (the registry) so that the
source modules can import it while the registry imports them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

# An ml_collections.ConfigDict, or any mapping with `.get` (e.g. a dict).
DataConfig = Any
Batch = dict[str, np.ndarray]

# What evaluation, plotting and the sweep branch on, never a dataset's name.
MIXTURE = 'mixture'  # 2-D points with known modes: mode metrics
IMAGE = 'image'      # pictures: classifier metrics
KINDS = (MIXTURE, IMAGE)


@dataclasses.dataclass(frozen=True)
class DataInfo:
  """Static description of a dataset, enough to build models and metrics.

  Attributes:
    shape: one example, e.g. (2,) for mixtures, (28, 28, 1) for MNIST,
      (28, 28, 3) for stacked MNIST.
    kind: 'mixture' (2-D points, mode metrics) or 'image' (pictures,
      classifier metrics).
    num_classes: labels lie in [0, num_classes): the class, the mixture mode
      index, or C**3 (1000) for stacked data.
    value_range: images are scaled from uint8 [0, 255] to this interval. For
      mixtures, whose samples are unbounded, it is the box of the mode centers
      padded by 4 std on each side: a plotting window, not a hard bound.
  """
  shape: tuple[int, ...]
  num_classes: int
  value_range: tuple[float, float]
  kind: str

  @property
  def is_mixture(self) -> bool:
    return self.kind == MIXTURE
