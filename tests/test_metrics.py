"""Tests for gan_jax.metrics against hand-built inputs and closed forms."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import metrics

RING_MODES = 8


def ring_centers(radius: float = 1.0) -> np.ndarray:
  angles = 2 * np.pi * np.arange(RING_MODES) / RING_MODES
  return radius * np.stack([np.cos(angles), np.sin(angles)], axis=-1)


def on_ray(mode: int, radius: float) -> np.ndarray:
  """The point at `radius` on the ray through ring mode `mode`."""
  angle = 2 * np.pi * mode / RING_MODES
  return radius * np.array([np.cos(angle), np.sin(angle)])


def mixed_ring_samples() -> np.ndarray:
  """10 points on the radius-1 ring with std 0.1 and known assignments.

  mode 0: 4 points 1 std out (HQ); mode 1: 2 points 2.9 std out (HQ);
  mode 5: 1 point on the center (HQ) and 3 points 3.5 std out (not HQ).
  """
  return np.stack(
      [on_ray(0, 1.1)] * 4 + [on_ray(1, 1.29)] * 2 + [on_ray(5, 1.0)] +
      [on_ray(5, 1.35)] * 3).astype(np.float32)


# ---------------------------------------------------------------------------
# kl_to_uniform
# ---------------------------------------------------------------------------


def test_kl_to_uniform_closed_forms():
  np.testing.assert_allclose(metrics.kl_to_uniform(jnp.array([3, 3, 3, 3])), 0.0, atol=1e-6)
  np.testing.assert_allclose(metrics.kl_to_uniform(jnp.array([0, 7, 0, 0])), math.log(4), rtol=1e-6)
  # q = (1/2, 1/2, 0, 0): KL = 2 * 1/2 * log(4 / 2) = log 2.
  np.testing.assert_allclose(metrics.kl_to_uniform(jnp.array([5, 5, 0, 0])), math.log(2), rtol=1e-6)
  # Empty histogram: documented convention log K.
  np.testing.assert_allclose(metrics.kl_to_uniform(jnp.zeros(4)), math.log(4), rtol=1e-6)


# ---------------------------------------------------------------------------
# mixture_metrics
# ---------------------------------------------------------------------------


def test_samples_on_three_of_eight_modes():
  samples = np.stack([ring_centers()[k] for k in (0, 0, 2, 2, 5, 5)])
  out = metrics.mixture_metrics(samples, ring_centers(), 0.01)
  assert int(out['modes']) == 3
  assert float(out['high_quality']) == 1.0
  np.testing.assert_array_equal(out['mode_counts'], [2, 0, 2, 0, 0, 2, 0, 0])
  # Uniform over 3 of 8 modes: KL = log(8 / 3).
  np.testing.assert_allclose(out['kl'], math.log(8 / 3), rtol=1e-5)
  np.testing.assert_allclose(out['kl_all'], math.log(8 / 3), rtol=1e-5)


def test_samples_four_std_from_every_mode_are_not_high_quality():
  std = 0.01
  samples = np.stack([on_ray(k, 1.0 + 4 * std) for k in range(RING_MODES)])
  out = metrics.mixture_metrics(samples, ring_centers(), std)
  assert float(out['high_quality']) == 0.0
  assert int(out['modes']) == 0
  np.testing.assert_array_equal(out['mode_counts'], np.zeros(RING_MODES))
  # No HQ sample: the documented value log M, finite.
  np.testing.assert_allclose(out['kl'], math.log(RING_MODES), rtol=1e-6)
  # Every sample still has a nearest mode, one per mode: uniform.
  np.testing.assert_allclose(out['kl_all'], 0.0, atol=1e-6)


def test_mixed_samples_hand_computed():
  out = metrics.mixture_metrics(mixed_ring_samples(), ring_centers(), 0.1)
  np.testing.assert_array_equal(out['mode_counts'], [4, 2, 0, 0, 0, 1, 0, 0])
  np.testing.assert_allclose(out['high_quality'], 0.7, rtol=1e-6)
  assert int(out['modes']) == 3
  # HQ histogram (4, 2, 1) / 7 against uniform over 8.
  kl = (4 / 7) * math.log(32 / 7) + (2 / 7) * math.log(16 / 7) + (1 / 7) * math.log(8 / 7)
  np.testing.assert_allclose(out['kl'], kl, rtol=1e-5)
  # All samples (4, 2, 4) / 10.
  kl_all = 2 * 0.4 * math.log(3.2) + 0.2 * math.log(1.6)
  np.testing.assert_allclose(out['kl_all'], kl_all, rtol=1e-5)


def test_threshold_is_in_units_of_std():
  # The 3.5-std points become HQ with threshold 4: all 10 samples count.
  out = metrics.mixture_metrics(mixed_ring_samples(), ring_centers(), 0.1, threshold=4.0)
  np.testing.assert_array_equal(out['mode_counts'], [4, 2, 0, 0, 0, 4, 0, 0])
  np.testing.assert_allclose(out['high_quality'], 1.0)


def test_mixture_metrics_vmap_over_seeds_matches_per_seed():
  centers, std = ring_centers(), 0.1
  per_seed = np.stack([
      mixed_ring_samples(),
      np.stack([on_ray(k % 3, 1.0) for k in range(10)]),
      np.stack([on_ray(k, 1.5) for k in range(10)]),  # Nothing HQ.
  ]).astype(np.float32)
  batched = jax.jit(jax.vmap(metrics.mixture_metrics, in_axes=(0, None, None)),
                    static_argnums=2)(per_seed, centers, std)
  for seed, samples in enumerate(per_seed):
    single = metrics.mixture_metrics(samples, centers, std)
    for key, value in single.items():
      np.testing.assert_allclose(batched[key][seed], value, rtol=1e-6, err_msg=key)
  np.testing.assert_array_equal(batched['modes'], [3, 3, 0])


def test_non_finite_samples_are_their_own_count():
  # 4 samples: one on mode 0, one NaN, one inf, one on mode 2. The NaN and inf
  # used to land in mode 0 of kl_all's histogram (argmin of NaN / inf = 0).
  samples = np.stack([on_ray(0, 1.0), [np.nan, 0.0], [np.inf, -np.inf], on_ray(2, 1.0)])
  out = metrics.mixture_metrics(samples.astype(np.float32), ring_centers(), 0.01)
  np.testing.assert_allclose(out['non_finite'], 0.5)
  np.testing.assert_allclose(out['high_quality'], 0.5)  # 2 HQ of all 4
  np.testing.assert_array_equal(out['mode_counts'], [1, 0, 1, 0, 0, 0, 0, 0])
  assert int(out['modes']) == 2
  # Both histograms are (1, 1) over 2 of 8 modes: KL = log(8 / 2).
  np.testing.assert_allclose(out['kl'], math.log(4), rtol=1e-6)
  np.testing.assert_allclose(out['kl_all'], math.log(4), rtol=1e-6)


def test_only_non_finite_samples_have_no_mode():
  samples = np.array([[np.nan, np.nan], [-np.inf, 1.0], [0.0, np.nan]], np.float32)
  out = metrics.mixture_metrics(samples, ring_centers(), 0.01)
  np.testing.assert_allclose(out['non_finite'], 1.0)
  assert float(out['high_quality']) == 0.0 and int(out['modes']) == 0
  np.testing.assert_array_equal(out['mode_counts'], np.zeros(RING_MODES))
  # No histogram at all: the documented log M for both KLs.
  np.testing.assert_allclose(out['kl'], math.log(RING_MODES), rtol=1e-6)
  np.testing.assert_allclose(out['kl_all'], math.log(RING_MODES), rtol=1e-6)


def test_far_finite_samples_keep_their_nearest_mode():
  # |x|^2 of 1e20 overflows float32: the nearest mode must still be the ray's.
  samples = np.stack([on_ray(3, 1e20), on_ray(6, 1e30), on_ray(6, 1.0)]).astype(np.float32)
  out = metrics.mixture_metrics(samples, ring_centers(), 0.01)
  assert float(out['non_finite']) == 0.0
  np.testing.assert_allclose(out['high_quality'], 1 / 3, rtol=1e-6)
  np.testing.assert_array_equal(out['mode_counts'], [0, 0, 0, 0, 0, 0, 1, 0])
  # All samples: (0, 0, 0, 1, 0, 0, 2, 0) / 3.
  kl_all = (1 / 3) * math.log(8 / 3) + (2 / 3) * math.log(16 / 3)
  np.testing.assert_allclose(out['kl_all'], kl_all, rtol=1e-5)


def test_mixture_metrics_bad_shapes():
  with pytest.raises(ValueError, match='centers'):
    metrics.mixture_metrics(np.zeros((4, 2)), np.zeros((8, 3)), 0.1)
  with pytest.raises(ValueError, match='samples'):
    metrics.mixture_metrics(np.zeros((4,)), np.zeros((8, 2)), 0.1)
  with pytest.raises(ValueError, match='std'):
    metrics.mixture_metrics(np.zeros((4, 2)), np.zeros((8, 2)), 0.0)


# ---------------------------------------------------------------------------
# Classifier-based metrics
# ---------------------------------------------------------------------------


def test_label_accuracy():
  acc = metrics.label_accuracy(jnp.array([0, 1, 2, 3, 4]), jnp.array([0, 1, 1, 3, 0]))
  np.testing.assert_allclose(acc, 3 / 5)
  with pytest.raises(ValueError, match='requested_labels'):
    metrics.label_accuracy(jnp.zeros(3), jnp.zeros(4))


def test_class_histogram_uniform_collapsed_and_mixed():
  uniform = metrics.class_histogram_metrics(jnp.tile(jnp.arange(10), 3), 10)
  assert int(uniform['coverage']) == 10
  np.testing.assert_allclose(uniform['kl'], 0.0, atol=1e-6)

  collapsed = metrics.class_histogram_metrics(jnp.full((30,), 7), 10)
  assert int(collapsed['coverage']) == 1
  np.testing.assert_allclose(collapsed['kl'], math.log(10), rtol=1e-6)

  # counts (2, 1, 1, 0): KL = 1/2 log(4/2) + 2 * 1/4 log(4/4) = log(2) / 2.
  mixed = metrics.class_histogram_metrics(jnp.array([0, 0, 1, 2]), 4)
  assert int(mixed['coverage']) == 3
  np.testing.assert_array_equal(mixed['counts'], [2, 1, 1, 0])
  np.testing.assert_allclose(mixed['kl'], 0.5 * math.log(2), rtol=1e-6)

  with pytest.raises(ValueError, match='num_classes'):
    metrics.class_histogram_metrics(jnp.array([0, 1]), 0)


def test_stacked_mode_ids():
  ids = metrics.stacked_mode_ids(jnp.array([[1, 2, 3], [0, 0, 7], [9, 9, 9], [0, 10, 0]]))
  np.testing.assert_array_equal(ids, [123, 7, 999, -1])
  with pytest.raises(ValueError, match='channel_labels'):
    metrics.stacked_mode_ids(jnp.zeros((4, 2), jnp.int32))


def test_stacked_mode_metrics_collapsed_and_full():
  collapsed = metrics.stacked_mode_metrics(jnp.tile(jnp.array([[4, 5, 6]]), (26, 1)))
  assert int(collapsed['modes']) == 1
  np.testing.assert_allclose(collapsed['kl'], math.log(1000), rtol=1e-6)

  digits = np.stack(np.meshgrid(*[np.arange(10)] * 3, indexing='ij'), -1).reshape(-1, 3)
  full = metrics.stacked_mode_metrics(jnp.asarray(digits))
  assert int(full['modes']) == 1000
  np.testing.assert_allclose(full['kl'], 0.0, atol=1e-5)


# ---------------------------------------------------------------------------
# Frechet distance
# ---------------------------------------------------------------------------


def test_frechet_distance_diagonal_closed_form():
  m1, m2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
  s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
  expected = np.sum((m1 - m2)**2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
  # = 1 + 6.25 + (1 + 9 - 6) + (4 + 1 - 4) + 0 = 12.25
  assert expected == pytest.approx(12.25)
  got = metrics.frechet_distance(m1, np.diag(s1), m2, np.diag(s2))
  assert got == pytest.approx(expected, rel=1e-12)


def test_frechet_distance_one_dimensional():
  # W2^2 between N(m1, a^2) and N(m2, b^2) is (m1 - m2)^2 + (a - b)^2.
  got = metrics.frechet_distance(np.array([0.5]), np.array([[4.0]]), np.array([-1.0]),
                                 np.array([[0.25]]))
  assert got == pytest.approx(1.5**2 + (2.0 - 0.5)**2, rel=1e-12)


def test_frechet_distance_non_commuting_2x2_closed_form():
  # For 2x2 PSD M: Tr sqrt(M) = sqrt(Tr M + 2 sqrt(det M)); S1 S2 shares its
  # eigenvalues with S1^1/2 S2 S1^1/2, so Tr (S1 S2)^1/2 has this closed form.
  s1 = np.array([[2.0, 1.0], [1.0, 2.0]])
  s2 = np.array([[1.0, 0.0], [0.0, 3.0]])
  tr_sqrt = math.sqrt(np.trace(s1 @ s2) + 2 * math.sqrt(np.linalg.det(s1) * np.linalg.det(s2)))
  # Tr(S1 S2) = 2 + 6 = 8, det = 3 * 3 = 9: Tr sqrt = sqrt(14).
  assert tr_sqrt == pytest.approx(math.sqrt(14.0))
  expected = 4.0 + 4.0 - 2 * math.sqrt(14.0)
  got = metrics.frechet_distance(np.zeros(2), s1, np.zeros(2), s2)
  assert got == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_self_zero_and_symmetric():
  rng = np.random.default_rng(0)
  a = rng.normal(size=(6, 6))
  b = rng.normal(size=(6, 6))
  s1, s2 = a @ a.T, b @ b.T + 0.1 * np.eye(6)
  m1, m2 = rng.normal(size=6), rng.normal(size=6)
  assert metrics.frechet_distance(m1, s1, m1, s1) == pytest.approx(0.0, abs=1e-9)
  assert (metrics.frechet_distance(m1, s1, m2, s2) ==
          pytest.approx(metrics.frechet_distance(m2, s2, m1, s1), rel=1e-9))
  # Rank-deficient covariance (fewer samples than dimensions): still finite, >= 0.
  low_rank = a[:, :2] @ a[:, :2].T
  assert metrics.frechet_distance(m1, low_rank, m1, low_rank) == pytest.approx(0.0, abs=1e-6)


def test_feature_statistics_and_sampled_frechet_converge():
  rng = np.random.default_rng(1)
  n = 200_000
  m1, m2 = np.array([0.0, 1.0]), np.array([0.5, 0.0])
  sd1, sd2 = np.array([1.0, 2.0]), np.array([0.5, 1.0])
  x1 = m1 + sd1 * rng.standard_normal((n, 2))
  x2 = m2 + sd2 * rng.standard_normal((n, 2))
  mu1, sigma1 = metrics.feature_statistics(x1)
  mu2, sigma2 = metrics.feature_statistics(x2)
  assert mu1.shape == (2,) and sigma1.shape == (2, 2)
  np.testing.assert_allclose(np.diag(sigma1), sd1**2, rtol=0.05)
  expected = np.sum((m1 - m2)**2) + np.sum((sd1 - sd2)**2)  # 1.25 + 1.25 = 2.5
  got = metrics.frechet_distance(mu1, sigma1, mu2, sigma2)
  # Over 30 seeds the estimate's standard deviation is ~5 / sqrt(n) = 0.011 here
  # (mostly from ||mu1 - mu2||^2) and its bias O(1 / n); 0.05 is ~4.5 sd.
  assert got == pytest.approx(expected, abs=0.05)


def test_feature_statistics_matches_hand_computed():
  mu, sigma = metrics.feature_statistics(np.array([[0.0, 0.0], [2.0, 4.0]]))
  np.testing.assert_array_equal(mu, [1.0, 2.0])
  # ddof = 1: var = ((0 - 1)^2 + (2 - 1)^2) / 1 = 2, cov = (1 * 2 + 1 * 2) / 1 = 4.
  np.testing.assert_array_equal(sigma, [[2.0, 4.0], [4.0, 8.0]])


def test_frechet_bad_inputs():
  with pytest.raises(ValueError, match='sigma2'):
    metrics.frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(3))
  with pytest.raises(ValueError, match='mu2'):
    metrics.frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(2))
  with pytest.raises(ValueError, match='features'):
    metrics.feature_statistics(np.zeros((1, 4)))
  with pytest.raises(ValueError, match='features'):
    metrics.feature_statistics(np.zeros(5))


# ---------------------------------------------------------------------------
# k-NN radii, precision / recall, density / coverage (hand-computed, 1-D)
# ---------------------------------------------------------------------------

# Seven 1-D reals.  Distances from each to the six others, sorted:
#   0: 1 3 6 10 15 21    1: 1 2 5 9 14 20    3: 2 3 3 7 12 18
#   6: 3 4 5 6 9 15      10: 4 5 7 9 10 11   15: 5 6 9 12 14 15
#   21: 6 11 15 18 20 21
# so the 1st, 2nd and 5th entries of each row are the k = 1, 2, 5 radii.
SPREAD = np.array([0., 1., 3., 6., 10., 15., 21.])[:, None]


def col(*values):
  return np.array(values, np.float64)[:, None]


def test_knn_radii_hand_computed():
  np.testing.assert_array_equal(metrics.knn_radii(SPREAD, 1), [1, 1, 2, 3, 4, 5, 6])
  np.testing.assert_array_equal(metrics.knn_radii(SPREAD, 2), [3, 2, 3, 4, 5, 6, 11])
  np.testing.assert_array_equal(metrics.knn_radii(SPREAD), [15, 14, 12, 9, 10, 14, 20])
  # Chunking does not change anything.
  np.testing.assert_array_equal(metrics.knn_radii(SPREAD, chunk_size=3),
                                metrics.knn_radii(SPREAD))
  # 2-D, k = 2: square corners (0,0),(2,0),(0,2),(2,2) and centre (1,1):
  # a corner's distances are sqrt2 (centre), 2, 2, sqrt8 -> 2nd = 2; the
  # centre's are four times sqrt2 -> sqrt2.
  square = np.array([[0, 0], [2, 0], [0, 2], [2, 2], [1, 1]], np.float64)
  np.testing.assert_allclose(metrics.knn_radii(square, 2), [2, 2, 2, 2, math.sqrt(2)])
  # A duplicate is a neighbour at distance 0 (only the point itself is left out).
  np.testing.assert_array_equal(metrics.knn_radii(col(0, 0, 5), 1), [0, 0, 5])


def test_prdc_two_clusters_hand_computed():
  # Reals: two clusters 0..5 and 100..105.  Within a cluster of six, the
  # k = 5 radius is the distance to the farthest other: 5 4 3 3 4 5.
  real = col(0, 1, 2, 3, 4, 5, 100, 101, 102, 103, 104, 105)
  # Fakes: 0.5 .. 5.5, radii (farthest other fake) 5 4 3 3 4 5, closed balls
  # [-4.5,5.5] [-2.5,5.5] [-.5,5.5] [.5,6.5] [.5,8.5] [.5,10.5].
  fake = col(0.5, 1.5, 2.5, 3.5, 4.5, 5.5)
  m = metrics.prdc(real, fake)
  # precision: every fake is in a real ball (union [-5, 10]) -> 1.
  # recall: reals 0..5 lie in the fake balls, 100..105 do not -> 6/12.
  # coverage: reals 0..5 have a fake within 0.5 < radius; 100..105 are 94.5+
  #   from any fake -> 6/12.
  # density: open real balls (-5,5) (-3,5) (-1,5) (0,6) (0,8) (0,10): fakes
  #   0.5 .. 4.5 are in all six, 5.5 in three -> (5*6 + 3) / (k M = 5*6) = 1.1.
  assert m == pytest.approx({'precision': 1.0, 'recall': 0.5, 'density': 1.1,
                             'coverage': 0.5})


def test_prdc_spread_reals_hand_computed():
  # SPREAD's k = 5 balls: 0±15 1±14 3±12 6±9 10±10 15±14 21±20 (union [-15, 41]).
  # Fakes 2 4 40 45 50 55: distances to the others, 5th smallest (= largest):
  # 53 51 38 43 48 53.
  fake = col(2, 4, 40, 45, 50, 55)
  np.testing.assert_array_equal(metrics.knn_radii(fake), [53, 51, 38, 43, 48, 53])
  m = metrics.prdc(SPREAD, fake)
  # precision: 2, 4, 40 in [-15, 41]; 45, 50, 55 not -> 3/6.
  # recall: the ball 2±53 holds every real -> 1 (one spread-out fake is enough:
  #   the outlier sensitivity Naeem et al. point out).
  # density: 2 and 4 lie in all 7 open real balls, 40 only in 21's (1, 41)
  #   -> (7 + 7 + 1) / (5 * 6) = 0.5.
  # coverage: nearest fakes 2 1 1 2 6 11 17 are all inside the radii -> 1.
  assert m == pytest.approx({'precision': 0.5, 'recall': 1.0, 'density': 0.5,
                             'coverage': 1.0})
  assert metrics.precision_recall(SPREAD, fake) == pytest.approx(
      {'precision': 0.5, 'recall': 1.0})
  assert metrics.density_coverage(SPREAD, fake) == pytest.approx(
      {'density': 0.5, 'coverage': 1.0})
  # Precomputed real radii and any chunking give the same numbers.
  assert metrics.prdc(SPREAD, fake, real_radii=metrics.knn_radii(SPREAD),
                      chunk_size=2) == m


def test_prdc_boundary_rules():
  # Reals 0..5 (radii 5 4 3 3 4 5); fake 10 is exactly on real 5's sphere.
  # Precision uses closed balls (Kynkaanniemi et al.): it counts -> 1/6.
  # Density and coverage use strict comparisons (Naeem et al.): 0.
  m = metrics.prdc(col(0, 1, 2, 3, 4, 5), col(10, 20, 21, 22, 23, 24))
  assert m['precision'] == pytest.approx(1 / 6)
  assert m['density'] == 0.0 and m['coverage'] == 0.0


def test_prdc_identical_and_far_away_sets():
  x = np.random.default_rng(0).normal(size=(200, 4))
  m = metrics.prdc(x, x)
  assert m['precision'] == 1.0 and m['recall'] == 1.0 and m['coverage'] == 1.0
  far = metrics.prdc(x, x + 100.0)
  assert far == {'precision': 0.0, 'recall': 0.0, 'density': 0.0, 'coverage': 0.0}


def test_prdc_bad_inputs():
  with pytest.raises(ValueError, match='1 <= k < N'):
    metrics.prdc(col(0, 1, 2), col(0, 1, 2, 3, 4, 5, 6))
  with pytest.raises(ValueError, match='same dimension'):
    metrics.prdc(np.zeros((8, 2)), np.zeros((8, 3)))
  with pytest.raises(ValueError, match='real_radii'):
    metrics.prdc(SPREAD, SPREAD, real_radii=np.ones(3))


# ---------------------------------------------------------------------------
# KID
# ---------------------------------------------------------------------------


def test_kid_hand_computed():
  # d = 1, k(a, b) = (a b + 1)^3.  X = {0, 1}, Y = {1, 2}:
  #   XX off-diagonal: k(0,1) = 1, twice, / (2*1) -> 1
  #   YY off-diagonal: k(1,2) = 27, twice, / 2 -> 27
  #   XY: k(0,1) + k(0,2) + k(1,1) + k(1,2) = 1 + 1 + 8 + 27 = 37, / 4 -> 9.25
  #   KID = 1 + 27 - 2 * 9.25 = 9.5.
  assert metrics.kid(col(0, 1), col(1, 2)) == {'kid': pytest.approx(9.5)}
  # Unbiased, so it can be negative: X = {0, 2}, Y = {1, 1}:
  #   XX: k(0,2) = 1; YY: k(1,1) = 8; XY: (1 + 1 + 27 + 27) / 4 = 14
  #   KID = 1 + 8 - 28 = -19.
  assert metrics.kid(col(0, 2), col(1, 1))['kid'] == pytest.approx(-19.0)
  # d = 2 divides the dot product: X = {(0,0), (1,1)}, Y = {(1,1), (2,0)}:
  #   XX: k = (0/2 + 1)^3 = 1; YY: ((2 + 0)/2 + 1)^3 = 8
  #   XY: k((0,0),.) = 1, 1; k((1,1),(1,1)) = (2/2+1)^3 = 8; k((1,1),(2,0)) = 8
  #   -> 18 / 4 = 4.5;  KID = 1 + 8 - 9 = 0.
  x2 = np.array([[0., 0.], [1., 1.]])
  y2 = np.array([[1., 1.], [2., 0.]])
  assert metrics.kid(x2, y2)['kid'] == pytest.approx(0.0, abs=1e-12)
  # The real term can be passed precomputed: sum_{i != j} k(x_i, x_j) / (n (n-1)).
  assert metrics.polynomial_kernel_sum(col(0, 1)) == 2.0
  assert metrics.polynomial_kernel_sum(col(0, 1), col(1, 2)) == 37.0
  assert metrics.kid(col(0, 1), col(1, 2), real_term=1.0)['kid'] == pytest.approx(9.5)


def test_kid_of_a_split_set_is_about_zero_and_can_be_negative():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(400, 8))
  values = [metrics.kid(x[p[:200]], x[p[200:]])['kid']
            for p in (rng.permutation(400) for _ in range(20))]
  assert abs(np.mean(values)) < 0.02 and min(values) < 0.0
  shifted = metrics.kid(x[:200], x[200:] + 1.0)['kid']
  assert shifted > 10 * max(abs(v) for v in values)
  # Chunked kernel sums give the full-matrix value.
  assert metrics.kid(x[:200], x[200:], chunk_size=7)['kid'] == pytest.approx(
      metrics.kid(x[:200], x[200:])['kid'], rel=1e-9, abs=1e-12)


def test_kid_subsets_are_deterministic_and_match_the_full_set():
  rng = np.random.default_rng(1)
  x, y = rng.normal(size=(60, 3)), rng.normal(size=(50, 3)) + 0.5
  # Subsets of every row are permutations: each estimate is the full one.
  full = metrics.kid(x[:50], y)['kid']
  m = metrics.kid(x[:50], y, num_subsets=3, subset_size=50)
  assert m['kid'] == pytest.approx(full) and m['kid_std'] == pytest.approx(0.0, abs=1e-9)
  a = metrics.kid(x, y, num_subsets=5, subset_size=20, seed=3)
  assert a == metrics.kid(x, y, num_subsets=5, subset_size=20, seed=3)
  assert a != metrics.kid(x, y, num_subsets=5, subset_size=20, seed=4)
  assert a['kid_std'] > 0.0
  with pytest.raises(ValueError, match='subset_size'):
    metrics.kid(x, y, num_subsets=2, subset_size=51)
  with pytest.raises(ValueError, match='at least 2 rows'):
    metrics.kid(col(0), col(1, 2))


# ---------------------------------------------------------------------------
# Classifier score
# ---------------------------------------------------------------------------


def test_classifier_score_hand_computed():
  # p(y|x1) = (1, 0), p(y|x2) = (1/2, 1/2)  ->  p(y) = (3/4, 1/4).
  # KL1 = log(1 / (3/4)) = log(4/3);
  # KL2 = 1/2 log((1/2)/(3/4)) + 1/2 log((1/2)/(1/4)) = 1/2 log(4/3).
  # score = exp((KL1 + KL2) / 2) = exp(3/4 log(4/3)) = (4/3)^(3/4) = 1.2408...
  assert metrics.classifier_score([[1.0, 0.0], [0.5, 0.5]]) == pytest.approx(
      (4 / 3) ** 0.75)


def test_classifier_score_constant_and_spread_predictions():
  probs = np.random.default_rng(0).dirichlet(np.ones(10))
  assert metrics.classifier_score(np.tile(probs, (50, 1))) == pytest.approx(1.0)
  one_hot = np.eye(10)[np.arange(100) % 10]
  assert metrics.classifier_score(one_hot) == pytest.approx(10.0)
  # Half the classes, evenly: 5.
  assert metrics.classifier_score(np.eye(10)[np.arange(100) % 5]) == pytest.approx(5.0)
  # Channels: the joint over K^C tuples. All 4 tuples of C = K = 2, one-hot: 4;
  # both channels the same class: only 2 tuples occur.
  tuples = np.eye(2)[np.array([[0, 0], [0, 1], [1, 0], [1, 1]])]  # (4, 2, 2)
  assert metrics.classifier_score(tuples) == pytest.approx(4.0)
  assert metrics.classifier_score(tuples[[0, 3]]) == pytest.approx(2.0)
  joint = metrics.joint_channel_probabilities(tuples)
  np.testing.assert_array_equal(np.argmax(joint, 1), [0, 1, 2, 3])  # 2 l0 + l1


def test_classifier_score_bad_shape():
  with pytest.raises(ValueError, match='probabilities'):
    metrics.classifier_score(np.ones(5))
