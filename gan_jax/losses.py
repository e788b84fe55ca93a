"""GAN losses as pure functions of discriminator outputs (logits / critic scores).

Conventions (TF-GAN and optax style):
  * Every function takes *logits* (pre-sigmoid scores), never probabilities, and
    uses `jax.nn.log_sigmoid` / `softplus` so that confident discriminators do not
    produce log(0).
  * Every loss is something the player *minimises* and is reduced by a mean over the
    batch, so it is independent of the batch size.
  * Paired names: `<family>_discriminator_loss`, `<family>_generator_loss`.
  * `real_targets` / `fake_targets` are the discriminator's targets for the
    cross-entropy losses: 1 and 0 by default; one-sided label smoothing and noisy
    labels replace them (see `real_targets`, `fake_targets`).

The registry `LOSSES` maps the config name to a `GANLoss` pair; `get_loss(name)`
raises a ValueError listing the valid names.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp

Array = jax.Array


def _mean(x: Array) -> Array:
  # At least float32 (bfloat16 logits are averaged in float32); float64 stays.
  return jnp.mean(x.astype(jnp.promote_types(x.dtype, jnp.float32)))


def binary_cross_entropy_with_logits(logits: Array, targets: Array | float) -> Array:
  """Elementwise -[t log sigmoid(l) + (1 - t) log(1 - sigmoid(l))], stable in l."""
  return -(targets * jax.nn.log_sigmoid(logits) +
           (1.0 - targets) * jax.nn.log_sigmoid(-logits))


# ---------------------------------------------------------------------------
# Minimax and non-saturating GAN (Goodfellow et al. 2014, arXiv:1406.2661).
# ---------------------------------------------------------------------------


def minimax_discriminator_loss(real_logits: Array, fake_logits: Array, *,
                               real_targets: Array | float = 1.0,
                               fake_targets: Array | float = 0.0) -> Array:
  """D's side of the GAN value function, as a loss to minimise.

      L_D = -E_x[log D(x)] - E_z[log(1 - D(G(z)))],   D = sigmoid(logits)

  i.e. binary cross-entropy with targets 1 for real and 0 for fake (Goodfellow et
  al. 2014, eq. 1). With `real_targets` < 1 it is one-sided label smoothing
  (Salimans et al. 2016); with noisy targets it is the noisy-label trick.
  The optimum over D is D*(x) = p_data(x) / (p_data(x) + p_g(x)).
  """
  return (_mean(binary_cross_entropy_with_logits(real_logits, real_targets)) +
          _mean(binary_cross_entropy_with_logits(fake_logits, fake_targets)))


def minimax_generator_loss(fake_logits: Array) -> Array:
  """The *saturating* generator loss of the original minimax game.

      L_G = E_z[log(1 - D(G(z)))] = -E_z[softplus(l)]

  Its gradient with respect to the logit is -sigmoid(l): it vanishes when D
  confidently rejects the fakes (l -> -inf), which is why it trains poorly early
  on (Goodfellow et al. 2014, section 3).
  """
  return _mean(jax.nn.log_sigmoid(-fake_logits))


non_saturating_discriminator_loss = minimax_discriminator_loss


def non_saturating_generator_loss(fake_logits: Array) -> Array:
  """The non-saturating ("-log D trick") generator loss.

      L_G = -E_z[log D(G(z))] = E_z[softplus(-l)]

  Same fixed point as the minimax game but gradient 1 - sigmoid(l) -> 1 when D
  rejects the fakes (Goodfellow et al. 2014, section 3).
  """
  return _mean(-jax.nn.log_sigmoid(fake_logits))


# ---------------------------------------------------------------------------
# Wasserstein GAN (Arjovsky et al. 2017, arXiv:1701.07875; Gulrajani et al.
# 2017, arXiv:1704.00028 for the gradient penalty).
# ---------------------------------------------------------------------------


def wasserstein_discriminator_loss(real_scores: Array, fake_scores: Array) -> Array:
  """The critic's loss: the negated Kantorovich-Rubinstein dual estimate.

      L_D = E_z[f(G(z))] - E_x[f(x)]

  Minimising it over 1-Lipschitz f (enforced by weight clipping or a gradient
  penalty) estimates W_1(p_data, p_g) = -min L_D.
  """
  return _mean(fake_scores) - _mean(real_scores)


def wasserstein_generator_loss(fake_scores: Array) -> Array:
  """L_G = -E_z[f(G(z))] (Arjovsky et al. 2017, algorithm 1)."""
  return -_mean(fake_scores)


# ---------------------------------------------------------------------------
# Least squares GAN (Mao et al. 2017, arXiv:1611.04076), a-b-c = 0-1-1 coding.
# ---------------------------------------------------------------------------


def least_squares_discriminator_loss(real_scores: Array, fake_scores: Array, *,
                                     real_targets: Array | float = 1.0,
                                     fake_targets: Array | float = 0.0) -> Array:
  """L_D = 1/2 E_x[(D(x) - b)^2] + 1/2 E_z[(D(G(z)) - a)^2], with a = 0, b = 1.

  Minimising it with c = 1 in the generator loss minimises the Pearson chi^2
  divergence between p_data + p_g and 2 p_g (Mao et al. 2017, eq. 2 and 3).
  """
  return 0.5 * (_mean(jnp.square(real_scores - real_targets)) +
                _mean(jnp.square(fake_scores - fake_targets)))


def least_squares_generator_loss(fake_scores: Array) -> Array:
  """L_G = 1/2 E_z[(D(G(z)) - c)^2] with c = 1 (Mao et al. 2017, eq. 2)."""
  return 0.5 * _mean(jnp.square(fake_scores - 1.0))


# ---------------------------------------------------------------------------
# Hinge loss (Lim & Ye 2017, arXiv:1705.02894; Miyato et al. 2018, SN-GAN).
# ---------------------------------------------------------------------------


def hinge_discriminator_loss(real_scores: Array, fake_scores: Array) -> Array:
  """L_D = E_x[max(0, 1 - D(x))] + E_z[max(0, 1 + D(G(z)))]."""
  return (_mean(jax.nn.relu(1.0 - real_scores)) +
          _mean(jax.nn.relu(1.0 + fake_scores)))


def hinge_generator_loss(fake_scores: Array) -> Array:
  """L_G = -E_z[D(G(z))] (the same as the Wasserstein generator loss)."""
  return -_mean(fake_scores)


# ---------------------------------------------------------------------------
# Discriminator penalties.
# ---------------------------------------------------------------------------


def _per_example_input_grads(score_fn: Callable[[Array], Array], x: Array) -> Array:
  """d score_i / d x_i for every example i, flattened to (batch, features).

  `score_fn` maps a batch to per-example scores that depend on their own example
  only, so the gradient of their sum is the stack of per-example gradients.
  """
  grads = jax.grad(lambda inputs: jnp.sum(score_fn(inputs)))(x)
  return grads.reshape(grads.shape[0], -1)


Sampler = Callable[[Array, tuple[int, ...]], Array]


def gradient_penalty(score_fn: Callable[[Array], Array], real: Array, fake: Array,
                     key: Array, *, target_norm: float = 1.0,
                     uniform: Sampler = jax.random.uniform) -> Array:
  """WGAN-GP's two-sided penalty (Gulrajani et al. 2017, eq. 3).

      GP = E_{x_hat}[(||grad_x f(x_hat)||_2 - 1)^2],
      x_hat = eps x + (1 - eps) G(z), eps ~ U[0, 1] per example.

  Multiply by lambda (10 in the paper) and add to the critic loss. `uniform(key,
  shape)` draws eps; a data-parallel step passes one that draws the global
  batch's coefficients and keeps this device's slice.
  """
  eps = uniform(key, (real.shape[0],)).astype(real.dtype)
  return gradient_norm_penalty(score_fn, interpolate(real, fake, eps),
                               target_norm=target_norm)


def interpolate(real: Array, fake: Array, eps: Array) -> Array:
  """x_hat_i = eps_i real_i + (1 - eps_i) fake_i, one eps per example."""
  eps = eps.reshape((real.shape[0],) + (1,) * (real.ndim - 1))
  return eps * real + (1.0 - eps) * fake


def gradient_norm_penalty(score_fn: Callable[[Array], Array], x: Array, *,
                          target_norm: float = 1.0) -> Array:
  """E_x[(||grad_x f(x)||_2 - target_norm)^2] at the given points."""
  grads = _per_example_input_grads(score_fn, x)
  # sqrt has an infinite derivative at 0; the epsilon keeps the penalty's own
  # gradient finite when a critic is flat at an interpolate.
  norms = jnp.sqrt(jnp.sum(jnp.square(grads), axis=-1) + 1e-12)
  return _mean(jnp.square(norms - target_norm))


def r1_penalty(score_fn: Callable[[Array], Array], real: Array) -> Array:
  """R1 (Mescheder et al. 2018, arXiv:1801.04406, eq. 9), without gamma:

      R1 = 1/2 E_x[||grad_x D(x)||^2]   on real data only.

  Multiply by gamma. On the Dirac-GAN it turns the GAN's purely imaginary
  eigenvalues +-i/2 into -gamma/2 +- sqrt(gamma^2/4 - 1/4), so training converges.
  """
  grads = _per_example_input_grads(score_fn, real)
  return 0.5 * _mean(jnp.sum(jnp.square(grads), axis=-1))


def clip_weights(params: Any, clip: float) -> Any:
  """WGAN's weight clipping: every parameter into [-clip, clip] (Arjovsky et al. 2017)."""
  return jax.tree_util.tree_map(lambda p: jnp.clip(p, -clip, clip), params)


# ---------------------------------------------------------------------------
# Target and input tricks (Salimans et al. 2016; seed articles 000 and 001).
# ---------------------------------------------------------------------------


def real_targets(key: Array, shape: tuple[int, ...], *, smoothing: float = 0.0,
                 noise_std: float = 0.0) -> Array:
  """D's targets for real examples.

  One-sided label smoothing (Salimans et al. 2016, section 3.4) uses 1 - smoothing;
  noisy labels (seed article 000) use 1 - |N(0, noise_std^2)|, so a target never
  exceeds 1. Both may be combined.
  """
  targets = jnp.full(shape, 1.0 - smoothing, jnp.float32)
  if noise_std > 0:
    targets = targets - jnp.abs(noise_std * jax.random.normal(key, shape))
  return targets


def fake_targets(key: Array, shape: tuple[int, ...], *, noise_std: float = 0.0) -> Array:
  """D's targets for fake examples: 0, or |N(0, noise_std^2)| for noisy labels.

  Smoothing is deliberately one-sided: a fake target above 0 rewards D for
  assigning mass to where G already is (Salimans et al. 2016, section 3.4).
  """
  targets = jnp.zeros(shape, jnp.float32)
  if noise_std > 0:
    targets = targets + jnp.abs(noise_std * jax.random.normal(key, shape))
  return targets


def add_instance_noise(key: Array, x: Array, std: Array | float, *,
                       normal: Sampler = jax.random.normal) -> Array:
  """Instance noise (Sonderby et al. 2016, arXiv:1610.04490): x + N(0, std^2).

  Applied to both real and fake inputs of D, it makes the two distributions
  overlap so D* is not a step function; `std` is usually annealed to 0.
  `normal(key, shape)` draws the standard noise (see `gradient_penalty`).
  """
  return x + std * normal(key, x.shape).astype(x.dtype)


# ---------------------------------------------------------------------------
# Registry.
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GANLoss:
  """A named (discriminator loss, generator loss) pair and how to read D's output.

  Attributes:
    d_loss: (real_logits, fake_logits, **targets) -> scalar.
    g_loss: fake_logits -> scalar.
    uses_targets: whether `d_loss` accepts `real_targets` / `fake_targets` (label
      smoothing and noisy labels only make sense for those).
    probabilistic: D's output is a logit of a probability; metrics report
      sigmoid(D) for these and raw scores otherwise.
    default_gradient_penalty: penalty weight used when the config leaves it unset.
    default_weight_clip: weight clipping used when the config leaves it unset.
  """
  name: str
  d_loss: Callable[..., Array]
  g_loss: Callable[[Array], Array]
  uses_targets: bool
  probabilistic: bool
  default_gradient_penalty: float = 0.0
  default_weight_clip: float = 0.0


LOSSES: dict[str, GANLoss] = {
    'minimax': GANLoss('minimax', minimax_discriminator_loss,
                       minimax_generator_loss, uses_targets=True,
                       probabilistic=True),
    'non_saturating': GANLoss('non_saturating', non_saturating_discriminator_loss,
                              non_saturating_generator_loss, uses_targets=True,
                              probabilistic=True),
    'wasserstein': GANLoss('wasserstein', wasserstein_discriminator_loss,
                           wasserstein_generator_loss, uses_targets=False,
                           probabilistic=False, default_weight_clip=0.01),
    'wasserstein_gp': GANLoss('wasserstein_gp', wasserstein_discriminator_loss,
                              wasserstein_generator_loss, uses_targets=False,
                              probabilistic=False, default_gradient_penalty=10.0),
    'least_squares': GANLoss('least_squares', least_squares_discriminator_loss,
                             least_squares_generator_loss, uses_targets=True,
                             probabilistic=False),
    'hinge': GANLoss('hinge', hinge_discriminator_loss, hinge_generator_loss,
                     uses_targets=False, probabilistic=False),
}


def get_loss(name: str) -> GANLoss:
  """The loss pair registered as `name`; a ValueError lists the valid names."""
  try:
    return LOSSES[name]
  except KeyError:
    raise ValueError(
        f'config.loss={name!r} is not a known GAN loss; valid choices: '
        f'{", ".join(sorted(LOSSES))}.') from None
