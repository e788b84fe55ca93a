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
