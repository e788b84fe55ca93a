"""Discriminator rejection sampling: closed forms, the accepted distribution, the sweep rows."""

from __future__ import annotations

import csv
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import config_base
from gan_jax import rejection
from gan_jax import sweep

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _quick_ring():
  module, _ = config_base.load_config_file(
      os.path.join(ROOT, 'experiments', 'mode_collapse_ring.py'))
  return module.get_config('quick')


def test_without_eps_and_gamma_the_acceptance_is_the_textbook_ratio():
  # sigmoid(F) = exp(D~ - D~*): p_d / (M p_g) with log M = D~*.
  logits = jnp.array([-1.0, 0.5, 1.9])
  probs = rejection.acceptance_probability(logits, jnp.float32(2.0))
  np.testing.assert_allclose(probs, [math.exp(-3.0), math.exp(-1.5), math.exp(-0.1)],
                             rtol=1e-5)


def test_acceptance_logit_matches_the_hand_computed_formula():
  # D~ = 0, D~* = 1, eps = 0.1: F = -1 - log(1 - e^-1.1).
  expected = -1.0 - math.log(1.0 - math.exp(-1.1))
  assert abs(float(rejection.acceptance_logit(jnp.float32(0.0), jnp.float32(1.0), 0.1))
             - expected) < 1e-5
  # gamma shifts F: sigmoid(F - gamma).
  gamma = 0.7
  p = rejection.acceptance_probability(jnp.float32(0.0), jnp.float32(1.0), epsilon=0.1,
                                       gamma=gamma)
  assert abs(float(p) - 1.0 / (1.0 + math.exp(-(expected - gamma)))) < 1e-6


def test_each_candidate_is_judged_against_the_running_max_up_to_itself():
  probs, new_max = rejection.batch_acceptance(
      jnp.array([1.0, 3.0, 2.0]), jnp.float32(-jnp.inf), epsilon=0.0,
      gamma_percentile=None)
  # Maxima 1, 3, 3: exp(0), exp(0), exp(-1).
  np.testing.assert_allclose(probs, [1.0, 1.0, math.exp(-1.0)], rtol=1e-6)
  assert float(new_max) == 3.0
  # A larger running max from earlier batches lowers every acceptance.
  probs, new_max = rejection.batch_acceptance(
      jnp.array([1.0, 3.0]), jnp.float32(4.0), epsilon=0.0, gamma_percentile=None)
  np.testing.assert_allclose(probs, [math.exp(-3.0), math.exp(-1.0)], rtol=1e-5)
  assert float(new_max) == 4.0


def test_gamma_percentile_puts_that_percentile_at_one_half():
  logits = jnp.array([0.0, -1.0, -2.0, -3.0, -4.0])
  probs, _ = rejection.batch_acceptance(logits, jnp.float32(0.0), epsilon=1e-3,
                                        gamma_percentile=50.0)
  # F is increasing in D~; the median F is that of D~ = -2, shifted to 0.
  assert abs(float(probs[2]) - 0.5) < 1e-6
  assert np.all(np.diff(np.asarray(probs)) < 0)


def _uniform_proposal(key, n):
  """Two 'generators' of U[0, 1] with exact log-ratio logits to densities 2x and 3x^2."""
  x = jax.random.uniform(key, (n,), minval=1e-6, maxval=1.0)
  logits = jnp.stack([jnp.log(2.0 * x), jnp.log(3.0 * x ** 2)])
  return jnp.stack([x, x])[..., None], logits


def test_exact_rejection_sampling_draws_the_data_density():
  result = rejection.rejection_sample(
      jax.random.PRNGKey(0), _uniform_proposal, 20_000, burn_in=1000, batch_size=5000,
      max_candidates=200_000, epsilon=0.0, gamma_percentile=None)
  # Density 2x: mean 2/3 (s.e. 0.0017 at 20k); 3x^2: mean 3/4 (s.e. 0.0014).
  assert [s.shape for s in result.samples] == [(20_000, 1), (20_000, 1)]
  assert abs(result.samples[0].mean() - 2 / 3) < 0.01
  assert abs(result.samples[1].mean() - 3 / 4) < 0.01
  # Acceptance E[x] = 1/2 and E[x^2] = 1/3 of U[0, 1].
  np.testing.assert_allclose(result.acceptance, [1 / 2, 1 / 3], atol=0.02)
  np.testing.assert_allclose(result.max_logit, [math.log(2), math.log(3)], atol=1e-3)


def test_sampling_is_a_pure_function_of_the_key():
  kwargs = dict(burn_in=100, batch_size=500, max_candidates=5000, epsilon=1e-6,
                gamma_percentile=95.0)
  a = rejection.rejection_sample(jax.random.PRNGKey(3), _uniform_proposal, 300, **kwargs)
  b = rejection.rejection_sample(jax.random.PRNGKey(3), _uniform_proposal, 300, **kwargs)
  for x, y in zip(a.samples, b.samples):
    np.testing.assert_array_equal(x, y)
  np.testing.assert_array_equal(a.candidates, b.candidates)


def test_a_seed_that_accepts_too_little_stops_at_max_candidates():
  def propose(key, n):
    x = jax.random.uniform(key, (1, n, 1))
    # One candidate in a batch scores far above the rest: it alone is likely kept.
    logits = jnp.where(jnp.arange(n) == 0, 30.0, 0.0)[None]
    return x, logits

  result = rejection.rejection_sample(
      jax.random.PRNGKey(1), propose, 1000, burn_in=0, batch_size=100,
      max_candidates=1000, epsilon=0.0, gamma_percentile=None)
  assert int(result.candidates[0]) == 1000
  assert len(result.samples[0]) == int(result.accepted[0]) < 1000


def test_config_checks_name_the_field():
  config = _quick_ring()
  config.eval.drs.enabled = True
  rejection.check_config(config)
  bad = config.copy_and_resolve_references()
  bad.loss = 'wasserstein_gp'
  with pytest.raises(ValueError, match=r"config.loss='wasserstein_gp'.*non_saturating"):
    rejection.check_config(bad)
  bad = config.copy_and_resolve_references()
  bad.model.pack = 2
  with pytest.raises(ValueError, match=r'config.model.pack=2'):
    rejection.check_config(bad)
  bad = config.copy_and_resolve_references()
  bad.eval.drs.batch_size = 0
  with pytest.raises(ValueError, match=r'config.eval.drs.batch_size=0 must be an integer'):
    rejection.check_config(bad)


def test_sweep_writes_drs_rows_beside_the_raw_ones(tmp_path):
  config = _quick_ring()
  config.eval.drs.update(dict(enabled=True, burn_in=200, batch_size=500, max_candidates=5000))
  config.model.update(dict(g_widths=(8,), d_widths=(8,)))
  config.train.num_steps = config.sweep.eval_every = 4
  config.eval.num_samples = 100
  config.sweep.num_seeds = 2
  workdir = str(tmp_path / 'w')
  table = sweep.run_sweep(config, lambda add: add(**{'model.latent_dim': 2}), workdir)
  with open(os.path.join(workdir, 'drs.csv')) as f:
    drs_rows = list(csv.DictReader(f))
  with open(os.path.join(workdir, 'results.csv')) as f:
    raw_rows = list(csv.DictReader(f))
  assert [(r['variant'], r['seed']) for r in drs_rows] == [
      (r['variant'], r['seed']) for r in raw_rows] == [('model.latent_dim=2', '0'),
                                                         ('model.latent_dim=2', '1')]
  n = int(config.eval.num_samples)
  for r in drs_rows:
    assert float(r['gamma_percentile']) == 95.0
    assert 0 < int(r['accepted']) <= int(r['candidates'])
    assert float(r['acceptance']) == pytest.approx(
        int(r['accepted']) / int(r['candidates']), abs=1e-4)
    assert 0 <= int(r['modes']) <= 8 and 0 <= float(r['high_quality']) <= 1
  # The raw rows keep their own evaluation: eval.num_samples samples of the fixed z.
  raw = np.load(os.path.join(workdir, 'variants', 'model.latent_dim=2.npz'))
  assert raw['final_samples'].shape == (2, n, 2)
  assert '| model.latent_dim=2 | 2 / 0 / 0 |' in table
  assert '| model.latent_dim=2 + DRS (gamma: percentile 95) | 2 / 0 / 0 |' in table
  with open(os.path.join(workdir, 'results.md')) as f:
    assert '+ DRS' in f.read()


def test_drs_on_a_variant_it_cannot_score_is_an_error_before_any_write(tmp_path):
  config = _quick_ring()
  config.eval.drs.enabled = True
  workdir = str(tmp_path / 'w')
  with pytest.raises(ValueError, match=r'model.pack=2.*config.model.pack=2.*--only'):
    sweep.run_sweep(config, lambda add: (add(**{'model.latent_dim': 2}),
                                         add(**{'model.pack': 2})), workdir)
  assert not os.path.exists(workdir)


def test_main_says_drs_is_a_sweep_evaluation_instead_of_ignoring_it(tmp_path):
  from gan_jax import train  # pylint: disable=g-import-not-at-top
  config = _quick_ring()
  config.eval.drs.enabled = True
  with pytest.raises(ValueError, match=r'config.eval.drs.enabled=True is an evaluation of '
                                       r'gan_jax.sweep'):
    train.train_and_evaluate(config, str(tmp_path / 'w'))
  assert not os.path.exists(tmp_path / 'w')
