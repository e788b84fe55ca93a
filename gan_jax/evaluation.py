"""Periodic evaluation: samples from a fixed z, pictures and sample-based metrics.

The `Evaluator` is built once per run (it fixes z and labels, so pictures are
comparable across steps, and jit-compiles the sampler once); calling it on a
state returns a flat dict of `eval/...` metrics and writes the PNGs.
"""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan_jax import input_pipeline
from gan_jax import metrics as metrics_lib
from gan_jax import plotting
from gan_jax import steps

MIXTURES = ('ring', 'grid')
GRID_COLUMNS = 10


class Evaluator:
  """Samples G at fixed noise and measures what the dataset allows."""

  def __init__(self, config: ml_collections.ConfigDict, spec: steps.GANSpec,
               data_info: input_pipeline.DataInfo):
    self.config = config
    self.spec = spec
    self.data_info = data_info
    self.is_mixture = config.data.name in MIXTURES
    key = jax.random.PRNGKey(config.seed + 1_000_003)
    if self.is_mixture:
      self.num_samples = int(config.eval.get('num_samples', 2500))
      self.centers, self.std = input_pipeline.mixture_modes(config.data)
      self.rows = 1
    elif spec.conditional:
      self.rows = min(spec.num_classes, 10)
      self.num_samples = self.rows * GRID_COLUMNS
    else:
      self.rows = 8
      self.num_samples = self.rows * GRID_COLUMNS
    self.z = steps.sample_latents(spec, key, self.num_samples)
    self.labels = None
    if spec.conditional:
      # Row i of the grid holds label i.
      self.labels = jnp.repeat(jnp.arange(self.rows), GRID_COLUMNS)
      if self.is_mixture:
        self.labels = jnp.arange(self.num_samples) % spec.num_classes
    self._sample = jax.jit(functools.partial(steps.generate, spec))

  def samples(self, state: steps.GANState, *, use_ema: bool = False) -> np.ndarray:
    params = state.ema_params if use_ema else state.g_params
    return np.asarray(self._sample(params, state.g_batch_stats, self.z, self.labels))

  def __call__(self, state: steps.GANState, step: int, workdir: str) -> dict[str, float]:
    samples = self.samples(state)
    results = {}
    if self.is_mixture:
      m = metrics_lib.mixture_metrics(samples, self.centers, self.std)
      results['eval/modes'] = float(m['modes'])
      results['eval/high_quality'] = float(m['high_quality'])
      results['eval/kl'] = float(m['kl'])
      plotting.mixture_scatter(
          samples, self.centers, os.path.join(workdir, 'samples', f'step_{step:07d}.png'),
          title=(f'step {step}: {results["eval/modes"]:.0f} modes, '
                 f'{100 * results["eval/high_quality"]:.1f}% high quality'))
    else:
      row_labels = ([str(i) for i in range(self.rows)] if self.spec.conditional else None)
      plotting.image_grid(samples, os.path.join(workdir, 'samples', f'step_{step:07d}.png'),
                          rows=self.rows, value_range=self.data_info.value_range,
                          row_labels=row_labels, title=f'step {step}')
    return results

