"""Discriminator rejection sampling (DRS; Azadi et al. 2019, arXiv:1810.06758).

A discriminator trained with the sigmoid cross-entropy (minimax or
non-saturating GAN) is, at its optimum, D(x) = p_d(x) / (p_d(x) + p_g(x)), so
its logit estimates the log density ratio,

    D~(x) = log p_d(x) - log p_g(x).

Rejection sampling from G with proposal bound M >= max p_d / p_g accepts x with
probability p_d(x) / (M p_g(x)) = exp(D~(x) - D~*), log M = D~* = max_x D~(x),
and then draws exactly from p_d. DRS writes that acceptance as a sigmoid, so that
it can be shifted:

    F(x) = D~(x) - D~* - log(1 - exp(D~(x) - D~* - eps)),
    accept x with probability sigmoid(F(x) - gamma).

With eps = gamma = 0, F is the logit of exp(D~ - D~*), so sigmoid(F) is the
textbook acceptance (tests/test_rejection.py checks both this identity and the
accepted distribution). eps keeps the log finite at the maximum; gamma trades
acceptance for quality. D~* is estimated: the maximum logit of a burn-in batch,
then a running maximum over every candidate seen (Algorithm 1). gamma is set per
batch to a percentile of that batch's F. The defaults (eps 1e-6, 95th percentile)
are those of Uber's MH-GAN code, whose DRS baseline this follows
(github.com/uber-research/metropolis-hastings-gans, mhgan/mh.py).

Not done here: the paper also fine-tunes D on held-out data to calibrate it
before sampling; gan_jax samples with D as training left it. D~ estimates log
p_d / p_g only for the sigmoid losses, and only when D scores single points
(no PacGAN packing), so `check_config` rejects other settings.

The sampled set is an evaluation of its own: a sweep reports it as a separate
row beside the raw samples' row, never mixed with it.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan_jax import losses as losses_lib

Array = jax.Array
# propose(key, n) -> (samples (S, n, ...), D logits (S, n)) for S generators.
Proposal = Callable[[Array, int], tuple[Array, Array]]


def acceptance_logit(logits: Array, max_logit: Array, epsilon: float) -> Array:
  """F(x) = D~(x) - D~* - log(1 - exp(D~(x) - D~* - eps)), for D~(x) <= D~*.

  log(1 - e^u) is computed as log(-expm1(u)), exact for u near 0 where
  1 - e^u loses its digits.
  """
  delta = logits - max_logit
  return delta - jnp.log(-jnp.expm1(delta - epsilon))


def acceptance_probability(logits: Array, max_logit: Array, *, epsilon: float = 0.0,
                           gamma: Array | float = 0.0) -> Array:
  """sigmoid(F(x) - gamma): DRS's probability of keeping x."""
  return jax.nn.sigmoid(acceptance_logit(logits, max_logit, epsilon) - gamma)


def batch_acceptance(logits: Array, running_max: Array, *, epsilon: float,
                     gamma_percentile: float | None) -> tuple[Array, Array]:
  """(acceptance probabilities (n,), new running max) of one batch of D logits.

  Candidate i is judged against the maximum of `running_max` and the logits up
  to and including its own (the algorithm's D~* update comes before its test),
  so D~(x) - D~* <= 0 always. gamma is the `gamma_percentile`-th percentile of
  the batch's F (None: gamma = 0).
  """
  maxima = jnp.maximum(running_max, jax.lax.cummax(logits))
  f = acceptance_logit(logits, maxima, epsilon)
  gamma = 0.0 if gamma_percentile is None else jnp.percentile(f, gamma_percentile)
  return jax.nn.sigmoid(f - gamma), maxima[-1]


@dataclasses.dataclass
class DRSResult:
  """Accepted samples of S generators and what it took to get them."""
  samples: list[np.ndarray]   # S arrays (n_s, ...), n_s <= num_samples
  accepted: np.ndarray        # (S,) candidates accepted (before truncation to num_samples)
  candidates: np.ndarray      # (S,) candidates proposed until seed s had enough
  max_logit: np.ndarray       # (S,) final D~*

  @property
  def acceptance(self) -> np.ndarray:
    """(S,) accepted / proposed."""
    return self.accepted / np.maximum(self.candidates, 1)


def rejection_sample(key: Array, propose: Proposal, num_samples: int, *,
                     burn_in: int, batch_size: int, max_candidates: int,
                     epsilon: float, gamma_percentile: float | None) -> DRSResult:
  """DRS for S generators at once until each has `num_samples` samples.

  With (k_propose, k_coins) = split(key), batch r's candidates come from
  `propose(fold_in(k_propose, r), batch_size)` (r = 0 is the burn-in, `burn_in`
  candidates that only set D~*) and its coins from fold_in(k_coins, r), so the
  result is a pure function of `key`. Stops when
  every seed has `num_samples` or `max_candidates` candidates were proposed after
  the burn-in; a seed that fell short keeps what it accepted (its row says how
  many).
  """
  step = jax.jit(jax.vmap(lambda lg, m: batch_acceptance(
      lg, m, epsilon=epsilon, gamma_percentile=gamma_percentile)))
  k_propose, k_coins = jax.random.split(key)
  running = None
  if burn_in > 0:
    _, logits = propose(jax.random.fold_in(k_propose, 0), burn_in)
    running = jnp.max(logits, axis=1)
  kept: list[list[np.ndarray]] | None = None
  accepted = candidates = None
  proposed, r = 0, 0
  while proposed < max_candidates:
    r += 1
    samples, logits = propose(jax.random.fold_in(k_propose, r), batch_size)
    if running is None:
      running = jnp.full(logits.shape[:1], -jnp.inf, logits.dtype)
    probs, running = step(logits, running)
    coins = jax.random.uniform(jax.random.fold_in(k_coins, r), probs.shape)
    accept, samples = jax.device_get((coins < probs, samples))
    num_seeds = accept.shape[0]
    if kept is None:
      kept = [[] for _ in range(num_seeds)]
      accepted = np.zeros(num_seeds, np.int64)
      candidates = np.zeros(num_seeds, np.int64)
    for s in range(num_seeds):
      if accepted[s] >= num_samples:
        continue
      kept[s].append(samples[s][accept[s]])
      accepted[s] += int(accept[s].sum())
      candidates[s] += accept.shape[1]
    proposed += batch_size
    if np.all(accepted >= num_samples):
      break
  return DRSResult(
      samples=[np.concatenate(k)[:num_samples] for k in kept],
      accepted=accepted, candidates=candidates, max_logit=np.asarray(running))


def check_config(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the field when `config.eval.drs` cannot apply."""
  drs = config.eval.get('drs')
  if drs is None or not drs.enabled:
    return
  loss = losses_lib.get_loss(config.loss)
  if not loss.probabilistic:
    valid = ', '.join(n for n, l in losses_lib.LOSSES.items() if l.probabilistic)
    raise ValueError(
        f'config.eval.drs.enabled=True needs a D whose logit estimates log p_data / p_G '
        f'(a sigmoid loss); config.loss={config.loss!r} has none. Valid losses: {valid}.')
  pack = int(config.model.get('pack', 1) or 1)
  if pack != 1:
    raise ValueError(f'config.eval.drs.enabled=True scores single points, but '
                     f'config.model.pack={pack} makes D score packs of {pack}; use '
                     'pack 1.')
  for field in ('burn_in', 'batch_size', 'max_candidates'):
    value = drs.get(field)
    low = 0 if field == 'burn_in' else 1
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= low):
      raise ValueError(f'config.eval.drs.{field}={value!r} must be an integer >= {low}.')
