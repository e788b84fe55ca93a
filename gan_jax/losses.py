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
raises a ValueError listing the valid names. G's loss is called as
`loss.generator_loss(real_logits, fake_logits)`; a loss that reads D(real)
(the relativistic ones) declares `g_needs_real=True`, and real_logits is None
otherwise. A new loss is one pair of functions, one entry here and one golden
entry in tests/test_losses.py.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

Array = jax.Array


def _mean(x: Array) -> Array:
  # At least float32 (bfloat16 logits are averaged in float32); float64 stays.
  return jnp.mean(x.astype(jnp.promote_types(x.dtype, jnp.float32)))


def _bce(logits: Array, targets: Array | float) -> Array:
  """Elementwise -[t log sigmoid(l) + (1 - t) log(1 - sigmoid(l))], stable in l.

  `optax.sigmoid_binary_cross_entropy` (log_sigmoid(+-l), finite at |l| = 1e4),
  on logits promoted to at least float32 so that fractional targets (label
  smoothing, noisy labels) are not rounded to the logits' dtype.
  """
  logits = logits.astype(jnp.promote_types(logits.dtype, jnp.float32))
  return optax.sigmoid_binary_cross_entropy(logits, targets)


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
  return _mean(_bce(real_logits, real_targets)) + _mean(_bce(fake_logits, fake_targets))


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
# Relativistic losses (Jolicoeur-Martineau 2018, arXiv:1807.00734). D's output
# C(x) is a raw critic; what is judged is how much more real a real example
# looks than a fake one, so the generator's loss needs C(real) as well (these
# losses are registered with g_needs_real=True).
#
# Under data parallelism the averages E C(x_r), E C(x_f) of the "average"
# variants and RSGAN's pairs are over each device's local batch. Only
# differences of C enter, so a constant added to C (D's output bias) has zero
# gradient: it stays where it was initialised.
# ---------------------------------------------------------------------------


def _check_paired(real: Array, fake: Array, name: str) -> None:
  if jnp.shape(real) != jnp.shape(fake):
    raise ValueError(f'{name} pairs real and fake critic values one to one; got '
                     f'shapes {jnp.shape(real)} and {jnp.shape(fake)} (the matching-aware '
                     'CGAN discriminator doubles the negatives and cannot be used).')


def relativistic_discriminator_loss(real_scores: Array, fake_scores: Array) -> Array:
  """RSGAN's D loss (Jolicoeur-Martineau 2018, eq. 6 with f_1 = f_2 = softplus(-.)):

      L_D = -E_{(x_r, x_f)}[log sigmoid(C(x_r) - C(x_f))]
          =  E[softplus(C(x_f) - C(x_r))],

  the real and fake critic values paired by batch position.
  """
  _check_paired(real_scores, fake_scores, 'RSGAN')
  return _mean(jax.nn.softplus(fake_scores - real_scores))


def relativistic_generator_loss(real_scores: Array, fake_scores: Array) -> Array:
  """RSGAN's G loss: L_G = -E[log sigmoid(C(x_f) - C(x_r))] = E[softplus(C(x_r) - C(x_f))].

  The roles swap: G wants its samples judged more real than the real data
  (Jolicoeur-Martineau 2018, section 4.2).
  """
  _check_paired(real_scores, fake_scores, 'RSGAN')
  return _mean(jax.nn.softplus(real_scores - fake_scores))


def _relative_to_mean(real_scores: Array, fake_scores: Array) -> tuple[Array, Array]:
  """(C(x_r) - E C(x_f), C(x_f) - E C(x_r)), the relativistic average's arguments."""
  return real_scores - _mean(fake_scores), fake_scores - _mean(real_scores)


def relativistic_average_discriminator_loss(real_scores: Array,
                                            fake_scores: Array) -> Array:
  """RaGAN's (RaSGAN's) D loss (Jolicoeur-Martineau 2018, section 4.3):

      D~(x_r) = sigmoid(C(x_r) - E_{x_f} C(x_f)),  D~(x_f) = sigmoid(C(x_f) - E_{x_r} C(x_r)),
      L_D = -E_{x_r}[log D~(x_r)] - E_{x_f}[log(1 - D~(x_f))]
          =  E[softplus(-(C(x_r) - E C(x_f)))] + E[softplus(C(x_f) - E C(x_r))].
  """
  real_rel, fake_rel = _relative_to_mean(real_scores, fake_scores)
  return _mean(jax.nn.softplus(-real_rel)) + _mean(jax.nn.softplus(fake_rel))


def relativistic_average_generator_loss(real_scores: Array, fake_scores: Array) -> Array:
  """RaGAN's G loss, the D loss with real and fake swapped:

      L_G = -E_{x_f}[log D~(x_f)] - E_{x_r}[log(1 - D~(x_r))]
          =  E[softplus(-(C(x_f) - E C(x_r)))] + E[softplus(C(x_r) - E C(x_f))].
  """
  real_rel, fake_rel = _relative_to_mean(real_scores, fake_scores)
  return _mean(jax.nn.softplus(-fake_rel)) + _mean(jax.nn.softplus(real_rel))


def relativistic_average_least_squares_discriminator_loss(real_scores: Array,
                                                          fake_scores: Array) -> Array:
  """RaLSGAN's D loss (Jolicoeur-Martineau 2018, appendix, eq. for RaLSGAN):

      L_D = E_{x_r}[(C(x_r) - E C(x_f) - 1)^2] + E_{x_f}[(C(x_f) - E C(x_r) + 1)^2].
  """
  real_rel, fake_rel = _relative_to_mean(real_scores, fake_scores)
  return _mean(jnp.square(real_rel - 1.0)) + _mean(jnp.square(fake_rel + 1.0))


def relativistic_average_least_squares_generator_loss(real_scores: Array,
                                                      fake_scores: Array) -> Array:
  """RaLSGAN's G loss: L_G = E_{x_f}[(C(x_f) - E C(x_r) - 1)^2] + E_{x_r}[(C(x_r) - E C(x_f) + 1)^2]."""
  real_rel, fake_rel = _relative_to_mean(real_scores, fake_scores)
  return _mean(jnp.square(fake_rel - 1.0)) + _mean(jnp.square(real_rel + 1.0))


def relativistic_average_hinge_discriminator_loss(real_scores: Array,
                                                  fake_scores: Array) -> Array:
  """RaHinge's D loss (Jolicoeur-Martineau 2018, appendix):

      L_D = E_{x_r}[max(0, 1 - (C(x_r) - E C(x_f)))] + E_{x_f}[max(0, 1 + (C(x_f) - E C(x_r)))].
  """
  real_rel, fake_rel = _relative_to_mean(real_scores, fake_scores)
  return _mean(jax.nn.relu(1.0 - real_rel)) + _mean(jax.nn.relu(1.0 + fake_rel))


def relativistic_average_hinge_generator_loss(real_scores: Array,
                                              fake_scores: Array) -> Array:
  """RaHinge's G loss: L_G = E_{x_f}[max(0, 1 - (C(x_f) - E C(x_r)))] + E_{x_r}[max(0, 1 + (C(x_r) - E C(x_f)))]."""
  real_rel, fake_rel = _relative_to_mean(real_scores, fake_scores)
  return _mean(jax.nn.relu(1.0 - fake_rel)) + _mean(jax.nn.relu(1.0 + real_rel))


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


def r2_penalty(score_fn: Callable[[Array], Array], fake: Array) -> Array:
  """R2 (Mescheder et al. 2018, arXiv:1801.04406, eq. 10), without gamma:

      R2 = 1/2 E_{x ~ p_g}[||grad_x D(x)||^2]   on G's samples only.

  On the Dirac-GAN it gives the same eigenvalues as R1 (both make the
  psi-psi entry of the Jacobian -gamma); away from p_g = p_data they differ.
  The same formula as `r1_penalty`, at other points.
  """
  return r1_penalty(score_fn, fake)


def dragan_penalty(score_fn: Callable[[Array], Array], real: Array, key: Array, *,
                   scale: float = 0.5, target_norm: float = 1.0,
                   uniform: Sampler = jax.random.uniform) -> Array:
  """DRAGAN (Kodali et al. 2017, arXiv:1705.07215), without lambda:

      DRAGAN = E[(||grad_x D(x + delta)||_2 - 1)^2],
      delta = scale * std(x) * u,  u ~ U[0, 1] elementwise, std over the whole batch

  (the authors' released code: X + 0.5 * X.std() * rand; lambda = 10). A
  gradient-norm penalty in a neighbourhood of the data rather than on the
  real-fake interpolates of WGAN-GP. Under data parallelism std(x) is the local
  batch's.
  """
  perturbed = real + scale * jnp.std(real) * uniform(key, real.shape).astype(real.dtype)
  return gradient_norm_penalty(score_fn, perturbed, target_norm=target_norm)


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


def fake_targets(key: Array, shape: tuple[int, ...], *, smoothing: float = 0.0,
                 noise_std: float = 0.0) -> Array:
  """D's targets for fake examples: 0 + smoothing (beta), plus |N(0, noise_std^2)| if noisy.

  Two-sided label smoothing (seed 001) moves the real target to 1 - alpha and
  the fake one to beta. Its optimal discriminator is, pointwise,

      D*(x) = ((1 - alpha) p_data(x) + beta p_g(x)) / (p_data(x) + p_g(x)),

  Salimans et al. (2016, section 3.4) smooth the real side only because of the
  beta p_g term in the numerator: where p_data(x) ~ 0 and p_g(x) is large,
  D*(x) -> beta > 0, so D reinforces G's stray samples instead of rejecting
  them and G has no incentive to move them towards the data. Hence beta = 0
  (one-sided) is the default; beta > 0 is the remedy compared against it in
  `gan_jax.vanishing`. beta = 0 gives exactly the zeros of the one-sided trick
  (D's loss is bitwise unchanged). The step checks 0 <= beta < 1 and
  1 - alpha > beta (`steps.GANSpec`), so D still ranks reals above fakes.
  """
  targets = jnp.full(shape, smoothing, jnp.float32)
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
    g_loss: fake_logits -> scalar, or (real_logits, fake_logits) -> scalar when
      `g_needs_real`. Call it through `generator_loss`, the one contract for
      every loss (TF-GAN's losses_impl.py style: G's loss may see D(real)).
    uses_targets: whether `d_loss` accepts `real_targets` / `fake_targets` (label
      smoothing and noisy labels only make sense for those).
    probabilistic: D's output is a logit of a probability; metrics report
      sigmoid(D) for these and raw scores otherwise.
    default_gradient_penalty: penalty weight used when the config leaves it unset.
    default_weight_clip: weight clipping used when the config leaves it unset.
    g_needs_real: `g_loss` takes D's logits on real data too (the relativistic
      losses). The step computes D(real) for G's update only when this is set,
      so the other losses cost nothing more.
  """
  name: str
  d_loss: Callable[..., Array]
  g_loss: Callable[..., Array]
  uses_targets: bool
  probabilistic: bool
  default_gradient_penalty: float = 0.0
  default_weight_clip: float = 0.0
  g_needs_real: bool = False

  def generator_loss(self, real_logits: Array | None, fake_logits: Array) -> Array:
    """G's loss under the one contract: (D(real) or None, D(G(z))) -> scalar.

    `real_logits` may be None (it is not computed) unless `g_needs_real`.
    """
    if not self.g_needs_real:
      return self.g_loss(fake_logits)
    if real_logits is None:
      raise ValueError(f'config.loss={self.name!r}: its generator loss needs D\'s logits '
                       'on real data (g_needs_real=True); got real_logits=None.')
    return self.g_loss(real_logits, fake_logits)


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
    'rsgan': GANLoss('rsgan', relativistic_discriminator_loss,
                     relativistic_generator_loss, uses_targets=False,
                     probabilistic=False, g_needs_real=True),
    'ragan': GANLoss('ragan', relativistic_average_discriminator_loss,
                     relativistic_average_generator_loss, uses_targets=False,
                     probabilistic=False, g_needs_real=True),
    'ralsgan': GANLoss('ralsgan', relativistic_average_least_squares_discriminator_loss,
                       relativistic_average_least_squares_generator_loss,
                       uses_targets=False, probabilistic=False, g_needs_real=True),
    'rahinge': GANLoss('rahinge', relativistic_average_hinge_discriminator_loss,
                       relativistic_average_hinge_generator_loss, uses_targets=False,
                       probabilistic=False, g_needs_real=True),
}


def get_loss(name: str) -> GANLoss:
  """The loss pair registered as `name`; a ValueError lists the valid names."""
  try:
    return LOSSES[name]
  except KeyError:
    raise ValueError(
        f'config.loss={name!r} is not a known GAN loss; valid choices: '
        f'{", ".join(sorted(LOSSES))}.') from None
