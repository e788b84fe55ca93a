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
  * The other feature-space metrics StudioGAN and TF-GAN report, in numpy
    float64 on the host and computed in row chunks (never an N x M matrix):
    KID (`kid`, Binkowski et al. 2018), precision and recall (`prdc`,
    `precision_recall`; Kynkaanniemi et al. 2019), density and coverage
    (`prdc`, `density_coverage`; Naeem et al. 2020), on k-NN radii
    (`knn_radii`). The same caveat holds: in this project's classifier
    features they are not comparable to Inception-feature values.
  * The classifier score (`classifier_score`), the Inception Score formula on
    the evaluation classifier's class probabilities (the "MNIST score").

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
import scipy.special

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
    kl_all: the same KL over all *finite* samples, each assigned to its
      nearest mode whatever its distance. Always defined (log M when no
      sample is finite); a diagnostic for runs whose samples sit between modes.
    non_finite: fraction of all N samples with a NaN or inf coordinate (a
      diverged G). They have no nearest mode, so they are in no histogram
      (neither `mode_counts` nor kl_all's), and they count as low quality:
      `high_quality` stays a fraction of all N samples.

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

  # A sample with a NaN or inf coordinate has no nearest mode: argmin over its
  # NaN / inf distances would say mode 0. It is counted apart (`non_finite`),
  # in no histogram, and never high quality.
  finite = jnp.all(jnp.isfinite(samples), axis=-1)
  samples = jnp.where(finite[:, None], samples, 0.0)
  # (N, M) squared distances; N * M is 2,500 x 25 at most in the benchmarks.
  sq_dist = jnp.sum(jnp.square(samples[:, None, :] - centers[None, :, :]), axis=-1)
  min_sq_dist = jnp.min(sq_dist, axis=-1)
  # A far but finite sample (say 1e20) has squared distances that overflow to
  # inf, tying every mode at argmin 0: its nearest mode is found on points and
  # centers divided by their largest magnitude instead (which orders the
  # distances the same way, with every difference in [-2, 2]).
  scale = jnp.maximum(jnp.max(jnp.abs(samples), axis=-1), jnp.max(jnp.abs(centers)))
  scale = jnp.where(scale > 0, scale, 1.0)[:, None, None]
  scaled_sq_dist = jnp.sum(jnp.square(samples[:, None, :] / scale -
                                      centers[None, :, :] / scale), axis=-1)
  nearest = jnp.where(jnp.isfinite(min_sq_dist), jnp.argmin(sq_dist, axis=-1),
                      jnp.argmin(scaled_sq_dist, axis=-1))
  # Squared distances against a squared radius: no sqrt needed.
  radius = threshold * jnp.asarray(std, sq_dist.dtype)
  is_hq = finite & (min_sq_dist < jnp.square(radius))
  # Ids outside [0, M) fall out of the histograms.
  nearest = jnp.where(finite, nearest, num_modes)

  mode_counts = _histogram(nearest, num_modes, weights=is_hq)
  all_counts = _histogram(nearest, num_modes)
  return {
      'high_quality': jnp.mean(is_hq.astype(jnp.float32)),
      'modes': jnp.sum(mode_counts > 0).astype(jnp.int32),
      'kl': kl_to_uniform(mode_counts),
      'kl_all': kl_to_uniform(all_counts),
      'mode_counts': mode_counts,
      'non_finite': jnp.mean((~finite).astype(jnp.float32)),
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


# ---------------------------------------------------------------------------
# KID, precision / recall, density / coverage: feature-space metrics in numpy
# float64, chunked over rows so that no N x M matrix is ever held (a 10,000 x
# 10,000 float64 matrix would be 800 MB).
# ---------------------------------------------------------------------------

# Rows per chunk of a pairwise computation: a (1024, M) float64 block is 41 MB
# at M = 5,000.
PAIRWISE_CHUNK = 1024
# k of the k-NN radii of precision / recall (Kynkaanniemi et al. use k = 3 for
# their headline numbers, k = 5 is the choice of Naeem et al. and StudioGAN)
# and of density / coverage (Naeem et al. 2020: k = 5).
KNN_K = 5


def _features(x: ArrayLike, name: str, min_rows: int = 1) -> np.ndarray:
  x = np.asarray(x, dtype=np.float64)
  if x.ndim != 2:
    raise ValueError(f'{name} must have shape (N, d); got {x.shape}.')
  if x.shape[0] < min_rows:
    raise ValueError(f'{name} needs at least {min_rows} rows; got {x.shape[0]}.')
  return x


def _same_dim(real: np.ndarray, fake: np.ndarray) -> None:
  if real.shape[1] != fake.shape[1]:
    raise ValueError(f'real and fake features must have the same dimension; got '
                     f'{real.shape} and {fake.shape}.')


def _check_chunk(chunk_size: int) -> int:
  chunk_size = operator.index(chunk_size)
  if chunk_size < 1:
    raise ValueError(f'chunk_size must be a positive int; got {chunk_size}.')
  return chunk_size


def _distances(a: np.ndarray, b: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
  """(len(a), len(b)) Euclidean distances, from ||a||^2 + ||b||^2 - 2 a.b (>= 0)."""
  a_sq = np.einsum('ij,ij->i', a, a)
  sq = a_sq[:, None] + b_sq[None, :] - 2.0 * (a @ b.T)
  return np.sqrt(np.maximum(sq, 0.0))


def knn_radii(features: ArrayLike, k: int = KNN_K, *,
              chunk_size: int = PAIRWISE_CHUNK) -> np.ndarray:
  """(N,) distance of each row of `features` to its k-th nearest *other* row.

      r_k(x_i) = || x_i - NN_k(x_i) ||,  NN_k over {x_j : j != i},

  the radius of the k-NN ball that estimates the manifold of a feature set in
  precision / recall (Kynkaanniemi et al. 2019, arXiv:1904.06991) and density /
  coverage (Naeem et al. 2020, arXiv:2002.09797). A point is not its own
  neighbour (its own distance is excluded by index, so an exact duplicate of
  x_i does count, at distance 0); the same as taking the (k+1)-th smallest
  distance including the point itself, as both papers' code does. Needs N > k.
  """
  x = _features(features, 'features')
  k = operator.index(k)
  if k < 1 or x.shape[0] <= k:
    raise ValueError(f'knn_radii needs 1 <= k < N; got k = {k} for N = {x.shape[0]}.')
  chunk_size = _check_chunk(chunk_size)
  x_sq = np.einsum('ij,ij->i', x, x)
  radii = np.empty(x.shape[0])
  for start in range(0, x.shape[0], chunk_size):
    d = _distances(x[start:start + chunk_size], x, x_sq)
    rows = np.arange(d.shape[0])
    d[rows, start + rows] = np.inf
    radii[start:start + d.shape[0]] = np.partition(d, k - 1, axis=1)[:, k - 1]
  return radii


def prdc(real: ArrayLike, fake: ArrayLike, k: int = KNN_K, *,
         real_radii: ArrayLike | None = None,
         chunk_size: int = PAIRWISE_CHUNK) -> dict[str, float]:
  """Precision, recall, density and coverage of fake features against real ones.

  With real features x_1..x_N, fake features y_1..y_M, and the k-NN radii
  r(x_i) within the real set and r(y_j) within the fake set (`knn_radii`):

    precision = 1/M sum_j 1[ exists i: ||y_j - x_i|| <= r(x_i) ]
    recall    = 1/N sum_i 1[ exists j: ||x_i - y_j|| <= r(y_j) ]
      (Kynkaanniemi et al. 2019, "Improved Precision and Recall Metric for
      Assessing Generative Models", arXiv:1904.06991, eq. 1-3: closed balls,
      as in their released code);
    density   = 1/(k M) sum_j sum_i 1[ ||y_j - x_i|| < r(x_i) ]
    coverage  = 1/N sum_i 1[ min_j ||x_i - y_j|| < r(x_i) ]
      (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for
      Generative Models", arXiv:2002.09797, eq. 5-6: strict comparisons, as in
      their released `prdc` code).

  Precision, recall and coverage are in [0, 1]; density is in [0, N / k] and
  is about 1 for fakes distributed like the reals. Identical sets give
  precision = recall = 1 (and coverage = 1 unless some radius is 0). The
  boundary rule only matters at exact ties (duplicates, discrete data).

  Args:
    real: (N, d) real features, N > k.
    fake: (M, d) fake features, M > k.
    k: the neighbourhood size, 5 in both papers' recommended setting.
    real_radii: `knn_radii(real, k)`, precomputed once for a fixed real set.
    chunk_size: real rows per (chunk, M) distance block.

  Returns:
    A dict of Python floats: precision, recall, density, coverage.
  """
  real = _features(real, 'real')
  fake = _features(fake, 'fake')
  _same_dim(real, fake)
  chunk_size = _check_chunk(chunk_size)
  if real_radii is None:
    real_radii = knn_radii(real, k, chunk_size=chunk_size)
  real_radii = np.asarray(real_radii, np.float64)
  if real_radii.shape != (real.shape[0],):
    raise ValueError(f'real_radii must have shape ({real.shape[0]},); got '
                     f'{real_radii.shape}.')
  fake_radii = knn_radii(fake, k, chunk_size=chunk_size)
  fake_sq = np.einsum('ij,ij->i', fake, fake)
  fake_in_real = np.zeros(fake.shape[0], bool)
  density_counts = np.zeros(fake.shape[0], np.int64)
  real_in_fake = np.empty(real.shape[0], bool)
  covered = np.empty(real.shape[0], bool)
  for start in range(0, real.shape[0], chunk_size):
    d = _distances(real[start:start + chunk_size], fake, fake_sq)  # (c, M)
    r = real_radii[start:start + d.shape[0], None]
    fake_in_real |= np.any(d <= r, axis=0)
    density_counts += np.sum(d < r, axis=0)
    real_in_fake[start:start + d.shape[0]] = np.any(d <= fake_radii[None, :], axis=1)
    covered[start:start + d.shape[0]] = np.min(d, axis=1) < r[:, 0]
  return {
      'precision': float(np.mean(fake_in_real)),
      'recall': float(np.mean(real_in_fake)),
      'density': float(np.sum(density_counts) / (operator.index(k) * fake.shape[0])),
      'coverage': float(np.mean(covered)),
  }


def precision_recall(real: ArrayLike, fake: ArrayLike, k: int = KNN_K,
                     **kwargs) -> dict[str, float]:
  """Improved precision and recall (Kynkaanniemi et al. 2019); see `prdc`."""
  m = prdc(real, fake, k, **kwargs)
  return {'precision': m['precision'], 'recall': m['recall']}


def density_coverage(real: ArrayLike, fake: ArrayLike, k: int = KNN_K,
                     **kwargs) -> dict[str, float]:
  """Density and coverage (Naeem et al. 2020); see `prdc`."""
  m = prdc(real, fake, k, **kwargs)
  return {'density': m['density'], 'coverage': m['coverage']}


def polynomial_kernel_sum(x: ArrayLike, y: ArrayLike | None = None, *,
                          chunk_size: int = PAIRWISE_CHUNK) -> float:
  """Sum of k(x_i, y_j) = (x_i . y_j / d + 1)^3 over all pairs (i, j).

  With `y` None the sum is over the pairs i != j of `x` with itself (the
  diagonal left out, as the unbiased MMD needs). d is the feature dimension.
  """
  x = _features(x, 'x')
  same = y is None
  y = x if same else _features(y, 'y')
  _same_dim(x, y)
  chunk_size = _check_chunk(chunk_size)
  dim = x.shape[1]
  total = 0.0
  for start in range(0, x.shape[0], chunk_size):
    kernel = (x[start:start + chunk_size] @ y.T / dim + 1.0) ** 3
    if same:
      rows = np.arange(kernel.shape[0])
      kernel[rows, start + rows] = 0.0
    total += float(np.sum(kernel))
  return total


def mmd2_unbiased(real: ArrayLike, fake: ArrayLike, *, real_term: float | None = None,
                  chunk_size: int = PAIRWISE_CHUNK) -> float:
  """The unbiased MMD^2 estimate with the cubic polynomial kernel; see `kid`.

  `real_term`, the first sum of the estimate for this `real` set
  (`polynomial_kernel_sum(real) / (n (n - 1))`), may be passed to skip it.
  """
  real = _features(real, 'real', min_rows=2)
  fake = _features(fake, 'fake', min_rows=2)
  _same_dim(real, fake)
  n, m = real.shape[0], fake.shape[0]
  if real_term is None:
    real_term = polynomial_kernel_sum(real, chunk_size=chunk_size) / (n * (n - 1))
  fake_term = polynomial_kernel_sum(fake, chunk_size=chunk_size) / (m * (m - 1))
  cross = polynomial_kernel_sum(real, fake, chunk_size=chunk_size) / (n * m)
  return float(real_term + fake_term - 2.0 * cross)


def kid(real: ArrayLike, fake: ArrayLike, *, num_subsets: int | None = None,
        subset_size: int = 1000, seed: int = 0, real_term: float | None = None,
        chunk_size: int = PAIRWISE_CHUNK) -> dict[str, float]:
  """Kernel Inception Distance: the unbiased MMD^2 with a cubic polynomial kernel.

  Binkowski et al. 2018, "Demystifying MMD GANs", arXiv:1801.01401, with
  real features x_1..x_n, fake features y_1..y_m in R^d and

      k(a, b) = (a . b / d + 1)^3,

      KID = 1/(n (n-1)) sum_{i != j} k(x_i, x_j)
          + 1/(m (m-1)) sum_{i != j} k(y_i, y_j)
          - 2/(n m)     sum_{i, j}   k(x_i, y_j).

  The estimator is unbiased, so a generator that matches the data scores 0 in
  expectation and single estimates can be negative; unlike the Frechet
  distance its value does not depend on the sample size in expectation.

  Without `num_subsets` the estimate uses all n and m rows. With it, as in the
  paper's code and TF-GAN's `kernel_classifier_distance_and_std`, KID is the
  mean over `num_subsets` estimates, each on `subset_size` real and
  `subset_size` fake rows drawn without replacement (independently per subset,
  from `np.random.default_rng(seed)`, so the result is deterministic), and
  `kid_std` is their standard deviation (ddof = 0, as in the paper's code;
  TF-GAN reports a standard error over disjoint blocks instead, i.e. the
  std / sqrt(#blocks)).

  Args:
    real: (n, d) real features, n >= 2 (and >= subset_size with subsets).
    fake: (m, d) fake features, m >= 2 (and >= subset_size with subsets).
    num_subsets: number of subsets, or None for one estimate on all rows.
    subset_size: rows per subset (the paper and TF-GAN use 1000).
    seed: seed of the subset draws.
    real_term: `polynomial_kernel_sum(real) / (n (n - 1))` for a fixed real
      set, to skip recomputing it (full-set estimates only).
    chunk_size: rows per kernel block.

  Returns:
    {'kid': float}, plus 'kid_std' with subsets.
  """
  real = _features(real, 'real', min_rows=2)
  fake = _features(fake, 'fake', min_rows=2)
  _same_dim(real, fake)
  if num_subsets is None:
    return {'kid': mmd2_unbiased(real, fake, real_term=real_term, chunk_size=chunk_size)}
  num_subsets = operator.index(num_subsets)
  subset_size = operator.index(subset_size)
  if num_subsets < 1:
    raise ValueError(f'num_subsets must be a positive int; got {num_subsets}.')
  if not 2 <= subset_size <= min(real.shape[0], fake.shape[0]):
    raise ValueError(f'subset_size must be in [2, min(n, m) = '
                     f'{min(real.shape[0], fake.shape[0])}]; got {subset_size}.')
  if real_term is not None:
    raise ValueError('real_term applies to the full real set, not to subsets.')
  rng = np.random.default_rng(seed)
  estimates = np.empty(num_subsets)
  for s in range(num_subsets):
    r = real[rng.choice(real.shape[0], subset_size, replace=False)]
    f = fake[rng.choice(fake.shape[0], subset_size, replace=False)]
    estimates[s] = mmd2_unbiased(r, f, chunk_size=chunk_size)
  return {'kid': float(np.mean(estimates)), 'kid_std': float(np.std(estimates))}


# ---------------------------------------------------------------------------
# The classifier score (Inception Score on the evaluation classifier).
# ---------------------------------------------------------------------------


def joint_channel_probabilities(probabilities: ArrayLike) -> np.ndarray:
  """(N, K^C) joint class probabilities of C independently classified channels.

  From (N, C, K) per-channel probabilities, p(l_0, ..., l_{C-1} | x) =
  prod_c p_c(l_c | x), with the tuple at index sum_c l_c K^(C-1-c) (for
  Stacked MNIST, 100 l_0 + 10 l_1 + l_2, as in `stacked_mode_ids`).
  """
  p = np.asarray(probabilities, np.float64)
  if p.ndim != 3:
    raise ValueError(f'probabilities must have shape (N, C, K); got {p.shape}.')
  joint = p[:, 0]
  for c in range(1, p.shape[1]):
    joint = (joint[:, :, None] * p[:, c, None, :]).reshape(p.shape[0], -1)
  return joint


def classifier_score(probabilities: ArrayLike) -> float:
  """The Inception Score formula on a classifier's class probabilities.

      score = exp( E_x KL( p(y|x) || p(y) ) ),   p(y) = E_x p(y|x),

  with the expectations the means over the N samples (Salimans et al. 2016,
  "Improved Techniques for Training GANs", arXiv:1606.03498). On this
  project's evaluation classifier instead of Inception it is the "MNIST score"
  analogue: 1 when every sample gets the same prediction (or every prediction
  is the same distribution), and K when confident predictions are spread
  evenly over the K classes (the maximum). One score on all N samples (no
  splits into 10 groups as in the original IS code); it depends on N through
  the plug-in estimate of p(y), so compare at equal N.

  Args:
    probabilities: (N, K) rows of class probabilities (each summing to 1), or
      (N, C, K) for C channels classified independently, scored over the K^C
      joint classes (`joint_channel_probabilities`; 1000 for Stacked MNIST).

  Returns:
    The score as a Python float, in [1, K] (or [1, K^C]).
  """
  p = np.asarray(probabilities, np.float64)
  if p.ndim == 3:
    p = joint_channel_probabilities(p)
  if p.ndim != 2 or p.shape[0] < 1:
    raise ValueError(f'probabilities must have shape (N, K) or (N, C, K); got '
                     f'{np.shape(probabilities)}.')
  marginal = np.mean(p, axis=0)
  # 0 log 0 = 0; where p(y|x) > 0, p(y) > 0 too.
  kl = np.sum(scipy.special.xlogy(p, p) - scipy.special.xlogy(p, marginal), axis=1)
  return float(np.exp(np.mean(kl)))
