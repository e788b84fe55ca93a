"""Evaluation metrics for GAN samples: pure functions, no I/O, no training.

Three families:

  * Mixture metrics for the 2-D mode-collapse benchmarks (ring of 8, grid of 25
    Gaussians) in the protocol of VEEGAN (Srivastava et al. 2017,
    arXiv:1705.07761) and PacGAN (Lin et al. 2018, arXiv:1712.04086):
    `mixture_metrics`. Written in `jax.numpy` with static shapes and no Python
    control flow on values, so it jits and vmaps over a leading seeds axis.
  * Classifier-based image metrics, computed from the *predicted labels* of an
    evaluation classifier (the classifier itself lives elsewhere):
    `label_accuracy` (CGAN label control), `class_histogram_metrics` (class
    coverage and KL to uniform), `stacked_mode_ids` / `stacked_mode_metrics`
    (Stacked MNIST, 1000 modes; Metz et al. 2016, arXiv:1611.02163). Also
    `jax.numpy`, jit- and vmap-able.
  * The Frechet distance between Gaussians fitted to features
    (`feature_statistics`, `frechet_distance`), in numpy float64 on the host.
    In this project the features are the penultimate activations of the
    project's own classifier, so the number is a Frechet distance in *that*
    feature space; it is not Inception FID and is not comparable to published
    FID values.

All KL divergences here are KL(q || u) of an empirical histogram q against the
uniform distribution u over K categories,

    KL(q || u) = sum_k q_k log(K q_k) = log K - H(q),

with 0 log 0 = 0. It is 0 for a uniform histogram and log K for a histogram
concentrated on one category; this is the "reverse KL" of VEEGAN and PacGAN
(generated distribution first). Being a plug-in estimate from N samples it is
biased upward by about (K - 1) / (2 N) even for a perfect generator: ~0.019
for Stacked MNIST's 1000 modes at 26,000 samples, ~0.0014 for 8 modes at 2,500.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
ArrayLike = Any

# Stacked MNIST: three channels, each a digit 0-9 (Metz et al. 2016).
STACKED_NUM_CHANNELS = 3
STACKED_NUM_MODES = 10**STACKED_NUM_CHANNELS


def kl_to_uniform(counts: ArrayLike) -> Array:
  """KL(q || uniform) of the histogram q = counts / sum(counts), in nats.

      KL = sum_k q_k log(K q_k) = log K - H(q),   K = counts.shape[-1],

  with 0 log 0 = 0 (`xlogy`). Reduces over the last axis, so a batch of
  histograms gives a batch of KLs. An all-zero histogram has no distribution;
  it gets log K, the largest value any histogram can take (every sample in one
  category), so that "no samples at all" never scores better than "collapsed
  to one mode" and a mean over seeds stays finite.
  """
  counts = jnp.asarray(counts, jnp.float32)
  num_bins = counts.shape[-1]
  total = jnp.sum(counts, axis=-1, keepdims=True)
  q = counts / jnp.maximum(total, 1.0)
  kl = jnp.sum(jax.scipy.special.xlogy(q, num_bins * q), axis=-1)
  return jnp.where(total[..., 0] > 0, kl, math.log(num_bins))


def _histogram(ids: Array, num_bins: int, weights: Array | None = None) -> Array:
  """(num_bins,) int32 counts of 1-D `ids`; ids outside [0, num_bins) are dropped."""
  weights = jnp.ones(ids.shape, jnp.int32) if weights is None else weights.astype(jnp.int32)
  # segment_sum drops out-of-range ids; jnp.bincount would clip them into the
  # end bins. O(N + K) memory, unlike a one-hot (26,000 x 1000 for Stacked MNIST).
  return jax.ops.segment_sum(weights, ids, num_segments=num_bins)


# ---------------------------------------------------------------------------
# Mixture-of-Gaussians benchmarks (VEEGAN / PacGAN protocol).
# ---------------------------------------------------------------------------


def mixture_metrics(samples: ArrayLike, centers: ArrayLike, std: float | ArrayLike,
                    *, threshold: float = 3.0) -> dict[str, Array]:
  """Mode coverage and sample quality on a mixture of isotropic Gaussians.

  Every sample is assigned to its nearest mode center (Euclidean distance, which
  for equal isotropic stds is the same as the standardised distance PacGAN
  uses). A sample is *high quality* if that distance is below
  `threshold * std` (VEEGAN and PacGAN use three standard deviations).

  Returns a dict of arrays:
    high_quality: fraction of all N samples that are high quality.
    modes: number of modes that are the nearest mode of at least one
      high-quality sample (VEEGAN's "modes captured").
    mode_counts: (M,) int32 histogram of the high-quality samples over modes.
    kl: KL(mode_counts / sum || uniform over M), see `kl_to_uniform`. The
      histogram is the one PacGAN's released evaluation code builds
      (`MetricLogger` in github.com/fjxmlzn/PacGAN, synthetic_data_experiments/
      PacGAN/pacgan/extensions.py counts only samples within 3 std, and
      derives coverage, entropy and a JSD to uniform from it; it logs no KL).
      Low-quality samples carry no evidence about which mode was learned, so
      they are left out. With no high-quality
      sample at all, kl = log(M) (the collapsed-to-one-mode value; finite so
      that means over seeds stay defined); read it together with
      `high_quality`.
    kl_all: the same KL over *all* samples, each assigned to its nearest mode
      whatever its distance. Always defined; a diagnostic for runs whose
      samples sit between modes.

  The comparison is strict (`distance < threshold * std`), as in PacGAN's code.
  Shapes are static and there is no Python control flow on values, so the
  function can be jitted and vmapped over a leading seeds axis:
  `jax.vmap(mixture_metrics, in_axes=(0, None, None))(samples, centers, std)`.

  Args:
    samples: (N, D) generated points.
    centers: (M, D) mode centers of the target mixture.
    std: the per-coordinate standard deviation of every mode (a scalar).
    threshold: quality radius in units of `std`.
  """
  samples = jnp.asarray(samples)
  centers = jnp.asarray(centers)
  if samples.ndim != 2:
    raise ValueError(f'samples must have shape (N, D); got {samples.shape}.')
  if centers.ndim != 2 or centers.shape[-1] != samples.shape[-1]:
    raise ValueError(
        f'centers must have shape (M, D) with D = samples.shape[-1] = '
        f'{samples.shape[-1]}; got {centers.shape}.')
  if isinstance(std, (int, float)) and std <= 0:
    raise ValueError(f'std must be positive; got {std}.')
  num_modes = centers.shape[0]

  # (N, M) squared distances; N * M is 2,500 x 25 at most in the benchmarks.
  sq_dist = jnp.sum(jnp.square(samples[:, None, :] - centers[None, :, :]), axis=-1)
  nearest = jnp.argmin(sq_dist, axis=-1)
  min_sq_dist = jnp.min(sq_dist, axis=-1)
  # Squared distances against a squared radius: no sqrt needed.
  radius = threshold * jnp.asarray(std, sq_dist.dtype)
  is_hq = min_sq_dist < jnp.square(radius)

  mode_counts = _histogram(nearest, num_modes, weights=is_hq)
  all_counts = _histogram(nearest, num_modes)
  return {
      'high_quality': jnp.mean(is_hq.astype(jnp.float32)),
      'modes': jnp.sum(mode_counts > 0).astype(jnp.int32),
      'kl': kl_to_uniform(mode_counts),
      'kl_all': kl_to_uniform(all_counts),
      'mode_counts': mode_counts,
  }


# ---------------------------------------------------------------------------
# Classifier-based metrics on images.
# ---------------------------------------------------------------------------


def label_accuracy(pred_labels: ArrayLike, requested_labels: ArrayLike) -> Array:
  """Fraction of conditional samples whose predicted class is the one asked for.

  The CGAN label-control metric: G(z, y) is classified by the evaluation
  classifier and compared with y (Mirza & Osindero 2014, arXiv:1411.1784).
  """
  pred_labels = jnp.asarray(pred_labels)
  requested_labels = jnp.asarray(requested_labels)
  if pred_labels.shape != requested_labels.shape:
    raise ValueError(
        f'pred_labels and requested_labels must have the same shape; got '
        f'{pred_labels.shape} and {requested_labels.shape}.')
  return jnp.mean((pred_labels == requested_labels).astype(jnp.float32), axis=-1)


def class_histogram_metrics(pred_labels: ArrayLike, num_classes: int) -> dict[str, Array]:
  """Class coverage and KL(class histogram || uniform) of unconditional samples.

  Args:
    pred_labels: (N,) integer class predictions (vmap for a batch of runs).
    num_classes: K, a Python int (it sets a shape).

  Returns:
    coverage: number of classes predicted for at least one sample.
    kl: KL(counts / sum || uniform over K), see `kl_to_uniform`.
    counts: (K,) int32 histogram.

  Labels outside [0, K) are not counted (they cannot be checked under jit);
  the classifier's argmax never produces them.
  """
  try:
    valid = operator.index(num_classes) >= 1
  except TypeError:
    valid = False
  if not valid:
    raise ValueError(f'num_classes must be a positive int; got {num_classes!r}.')
  num_classes = operator.index(num_classes)
  pred_labels = jnp.asarray(pred_labels)
  if pred_labels.ndim != 1:
    raise ValueError(f'pred_labels must have shape (N,); got {pred_labels.shape}.')
  counts = _histogram(pred_labels, num_classes)
  return {
      'coverage': jnp.sum(counts > 0).astype(jnp.int32),
      'kl': kl_to_uniform(counts),
      'counts': counts,
  }


def stacked_mode_ids(channel_labels: ArrayLike) -> Array:
  """Stacked MNIST mode of each sample: 100 * l0 + 10 * l1 + l2, in [0, 1000).

  `channel_labels` is (N, 3): the evaluation classifier's digit for each of the
  three stacked channels (Metz et al. 2016, section 3.3.1). A row with a digit
  outside 0-9 gets id -1 (which no histogram counts) rather than aliasing onto
  another mode; under jit it cannot raise.
  """
  channel_labels = jnp.asarray(channel_labels)
  if channel_labels.ndim < 1 or channel_labels.shape[-1] != STACKED_NUM_CHANNELS:
    raise ValueError(
        f'channel_labels must have shape (N, {STACKED_NUM_CHANNELS}); got '
        f'{channel_labels.shape}.')
  labels = channel_labels.astype(jnp.int32)
  ids = jnp.sum(labels * jnp.array([100, 10, 1], dtype=jnp.int32), axis=-1)
  valid = jnp.all((labels >= 0) & (labels < 10), axis=-1)
  return jnp.where(valid, ids, -1)


def stacked_mode_metrics(channel_labels: ArrayLike) -> dict[str, Array]:
  """Modes covered and KL to uniform on Stacked MNIST (1000 modes).

  The VEEGAN / PacGAN protocol classifies each channel of 26,000 samples and
  reports the number of the 1000 digit triples that occur at least once and
  KL(mode histogram || uniform over 1000) (VEEGAN table 2, PacGAN table 2).
  Both depend on the number of samples: use 26,000 to compare with the papers.

  Returns:
    modes: number of distinct modes among the samples.
    kl: KL(counts / sum || uniform over 1000).
    counts: (1000,) int32 histogram.
  """
  out = class_histogram_metrics(stacked_mode_ids(channel_labels), STACKED_NUM_MODES)
  return {'modes': out['coverage'], 'kl': out['kl'], 'counts': out['counts']}


# ---------------------------------------------------------------------------
# Frechet distance between Gaussians fitted to features.
# ---------------------------------------------------------------------------


def feature_statistics(features: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
  """Mean and unbiased (ddof = 1) covariance of (N, d) features, in float64."""
  features = np.asarray(features, dtype=np.float64)
  if features.ndim != 2:
    raise ValueError(f'features must have shape (N, d); got {features.shape}.')
  if features.shape[0] < 2:
    raise ValueError(
        f'features needs at least 2 rows to estimate a covariance; got '
        f'{features.shape[0]}.')
  mu = features.mean(axis=0)
  sigma = np.cov(features, rowvar=False, ddof=1).reshape(features.shape[1],
                                                           features.shape[1])
  return mu, sigma


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
  """Symmetric square root of a symmetric PSD matrix via eigh."""
  eigvals, eigvecs = np.linalg.eigh(sigma)
  # Round-off makes near-singular covariances (N < d) slightly indefinite.
  return (eigvecs * np.sqrt(np.clip(eigvals, 0.0, None))) @ eigvecs.T


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike,
                     sigma2: ArrayLike) -> float:
  """Frechet (2-Wasserstein squared) distance between N(mu1, S1) and N(mu2, S2).

      d^2 = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2})

  (Dowson & Landau 1982; used as FID by Heusel et al. 2017, arXiv:1706.08500.)
  S1 S2 is not symmetric, and a general `sqrtm` of it can return complex
  values from round-off; instead this uses
  Tr((S1 S2)^{1/2}) = Tr((S1^{1/2} S2 S1^{1/2})^{1/2}), whose argument is
  symmetric PSD, so both square roots come from `eigh` with tiny negative
  eigenvalues clipped to 0. Computed in float64 on the host; the result is
  clipped at 0.

  Sample-size bias: with `feature_statistics` of finite samples the estimate
  is biased *upward*. The mean term alone has expectation
  ||mu1 - mu2||^2 + Tr(S1) / N1 + Tr(S2) / N2, and the trace term adds a
  further O(1/N) bias that depends on the spectra (Binkowski et al. 2018,
  arXiv:1801.01401; Chong & Forsyth 2020, arXiv:1911.07023). Two sets of
  samples from the *same* distribution therefore do not score 0, and scores
  are only comparable at equal sample sizes (and in the same feature space).

  Args:
    mu1, mu2: (d,) means.
    sigma1, sigma2: (d, d) covariances (symmetric PSD).

  Returns:
    The distance as a Python float.
  """
  mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
  mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
  sigma1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
  sigma2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
  if mu1.ndim != 1:
    raise ValueError(f'mu1 must have shape (d,); got {mu1.shape}.')
  d = mu1.shape[0]
  for name, value, shape in (('mu2', mu2, (d,)), ('sigma1', sigma1, (d, d)),
                             ('sigma2', sigma2, (d, d))):
    if value.shape != shape:
      raise ValueError(f'{name} must have shape {shape} (d = mu1.shape[0]); got '
                       f'{value.shape}.')

  sqrt1 = _psd_sqrt(sigma1)
  inner = sqrt1 @ sigma2 @ sqrt1
  inner = 0.5 * (inner + inner.T)  # Symmetric up to round-off; make it exact.
  trace_sqrt = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(inner), 0.0, None)))
  diff = mu1 - mu2
  value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt
  return float(max(value, 0.0))
