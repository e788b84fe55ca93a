"""Closed forms of GAN theory: optimal discriminator, value at the optimum, JSD, Dirac-GAN.

Two results anchor the study of GAN training in this codebase:

* Goodfellow et al. 2014 (arXiv:1406.2661), section 4. For a fixed generator the
  discriminator that maximises

      V(D, G) = E_{x~p_data}[log D(x)] + E_{x~p_g}[log(1 - D(x))]
              = integral p_data(x) log D(x) + p_g(x) log(1 - D(x)) dx

  is D*_G(x) = p_data(x) / (p_data(x) + p_g(x)) (Proposition 1), because
  h(y) = a log y + b log(1 - y) peaks at y* = a / (a + b). Substituting it gives
  the virtual training criterion

      C(G) = V(D*_G, G) = -log 4 + 2 JSD(p_data || p_g)          (Theorem 1),

  minimised, at -log 4, exactly when p_g = p_data.

* Mescheder et al. 2018 (arXiv:1801.04406), section 2.2. The Dirac-GAN: data is a
  point mass at 0, the generator a point mass at theta, the discriminator is linear,
  D_psi(x) = psi * x (a logit). Its unique equilibrium is (theta, psi) = (0, 0),
  where the Jacobian of the simultaneous-gradient vector field has the purely
  imaginary eigenvalues +-i f'(0) (f'(0) = 1/2 for the GAN losses), so gradient
  descent spirals outwards. The R1 penalty gamma/2 psi^2 shifts them to
  -gamma/2 +- sqrt(gamma^2/4 - f'(0)^2), and training converges (Theorem 4.1).

The Dirac-GAN here is assembled from the project's own `gan_jax.losses` and
differentiated with JAX, so the eigenvalues test the losses, not a transcription
of the paper's formulas.

Densities are given as values on a 1-D grid `x` and integrated with the
trapezoidal rule; everything is a pure function of arrays (no I/O), and uses
0 log 0 = 0 so that densities with disjoint supports are handled exactly.
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import xlogy

from gan_jax import losses as losses_lib

Array = jax.Array
VectorField = Callable[[Array], Array]

# C(G) at its global minimum p_g = p_data (Goodfellow et al. 2014, Theorem 1).
MIN_VALUE = -math.log(4.0)


# ---------------------------------------------------------------------------
# The optimal discriminator and the value function (Goodfellow et al. 2014).
# ---------------------------------------------------------------------------


def pointwise_value(y: Array, a: Array, b: Array) -> Array:
  """h(y) = a log y + b log(1 - y), the integrand of V(D, G) at one x.

  With a = p_data(x), b = p_g(x) and y = D(x), V(D, G) is the integral of h; it is
  maximised pointwise, at y* = a / (a + b) (`optimal_discriminator`), because
  h'(y) = a / y - b / (1 - y) vanishes there and h''(y) < 0 on (0, 1).
  Terms with a zero weight are zero even where their log is -inf.
  """
  return xlogy(a, y) + xlogy(b, 1.0 - y)


def optimal_discriminator(p_data: Array, p_g: Array) -> Array:
  """D*_G(x) = p_data(x) / (p_data(x) + p_g(x)) (Goodfellow et al. 2014, Prop. 1).

  Where both densities vanish D does not enter V, so any value is optimal; 1/2 is
  returned there (no evidence either way) rather than NaN.
  """
  total = p_data + p_g
  positive = total > 0
  return jnp.where(positive, p_data / jnp.where(positive, total, 1.0), 0.5)


def optimal_discriminator_logit(log_p_data: Array, log_p_g: Array) -> Array:
  """logit D*_G(x) = log p_data(x) - log p_g(x), what an unbounded D's logit approaches.

  Working in log densities keeps it exact in the tails, where D* itself rounds to
  0 or 1.
  """
  return log_p_data - log_p_g


def _check_grid(x: Array, **densities: Array) -> None:
  if jnp.ndim(x) != 1 or x.shape[0] < 2:
    raise ValueError(f'x must be a 1-D grid of at least 2 points, got shape {jnp.shape(x)}.')
  for name, value in densities.items():
    if jnp.shape(value) != x.shape:
      raise ValueError(f'{name} must be sampled on the grid x, shape {x.shape}; '
                       f'got shape {jnp.shape(value)}.')


def _weighted_log(weight: Array, log_value: Array) -> Array:
  """weight * log_value with 0 * (-inf) = 0: where a density vanishes, D is free."""
  positive = weight > 0
  return jnp.where(positive, weight * jnp.where(positive, log_value, 0.0), 0.0)


def value_function(d: Array, p_data: Array, p_g: Array, x: Array) -> Array:
  """V(D, G) = integral p_data(x) log D(x) + p_g(x) log(1 - D(x)) dx.

  Goodfellow et al. 2014, eq. 1, with E_z[log(1 - D(G(z)))] written as an
  expectation over p_g (the change of variables x = G(z) of section 4.1).

  Args:
    d: D(x) as a probability, on the grid.
    p_data: the data density on the grid.
    p_g: the generator's density on the grid.
    x: the grid, increasing; the densities should vanish at its ends.
  """
  _check_grid(x, d=d, p_data=p_data, p_g=p_g)
  integrand = _weighted_log(p_data, jnp.log(d)) + _weighted_log(p_g, jnp.log1p(-d))
  return jnp.trapezoid(integrand, x)


def value_function_from_logits(logits: Array, p_data: Array, p_g: Array,
                               x: Array) -> Array:
  """`value_function` for D = sigmoid(logits), exact where D rounds to 0 or 1.

  log D = log_sigmoid(l) and log(1 - D) = log_sigmoid(-l), as in the losses.
  """
  _check_grid(x, logits=logits, p_data=p_data, p_g=p_g)
  integrand = (_weighted_log(p_data, jax.nn.log_sigmoid(logits)) +
               _weighted_log(p_g, jax.nn.log_sigmoid(-logits)))
  return jnp.trapezoid(integrand, x)


def _log_density(p: Array) -> Array:
  """log p where p is a normal float of its dtype, else -inf.

  A density below the dtype's smallest normal (1.2e-38 in float32) cannot be
  trusted: XLA's CPU and GPU backends flush such subnormals to zero in
  arithmetic and comparisons (so p > 0 is False for them), while its log
  returns a clamped value. Treating them as 0 changes an integral by at most
  ~1e-36 per grid point: their terms p log(p / m) are bounded by p log 2 + p |log p|.
  """
  p = jnp.asarray(p)
  tiny = jnp.finfo(jnp.result_type(p, jnp.float32)).tiny
  normal = p >= tiny
  return jnp.where(normal, jnp.log(jnp.where(normal, p, 1.0)), -jnp.inf)


def _p_log_ratio(log_p: Array, log_q: Array) -> Array:
  """p (log p - log q) pointwise from log densities, with 0 log 0 = 0.

  p = exp(log_p). Where log_p = -inf (p = 0) the term is 0 whatever q is; where
  p > 0 but log_q = -inf it is +inf (p puts mass where q has none). The inner
  `where`s keep the -inf out of the subtraction, so gradients stay finite.
  """
  p_positive = log_p > -jnp.inf
  q_positive = log_q > -jnp.inf
  both = p_positive & q_positive
  safe_p = jnp.where(both, log_p, 0.0)
  safe_q = jnp.where(both, log_q, 0.0)
  term = jnp.exp(safe_p) * (safe_p - safe_q)
  return jnp.where(both, term, jnp.where(p_positive, jnp.inf, 0.0))


def kl_divergence_from_logs(log_p: Array, log_q: Array, x: Array) -> Array:
  """KL(p || q) = integral p(x) (log p(x) - log q(x)) dx from log densities, in nats.

  The form to use on grids that reach far into the tails: log N(x; mu, s^2) is
  finite everywhere, where the density itself underflows float32 beyond
  ~13 standard deviations (and q = 0 under p > 0 would make KL infinite).
  -inf log densities are zero densities (0 log 0 = 0).
  """
  _check_grid(x, log_p=log_p, log_q=log_q)
  return jnp.trapezoid(_p_log_ratio(log_p, log_q), x)


def kl_divergence(p: Array, q: Array, x: Array) -> Array:
  """KL(p || q) = integral p(x) log(p(x) / q(x)) dx, in nats, with 0 log 0 = 0.

  Computed from log p and log q (`kl_divergence_from_logs`); densities below the
  smallest normal float count as 0 (see `_log_density`). Where q has underflowed
  to 0 under a p that has not, the given densities say KL = inf, and that is
  what is returned: pass log densities to `kl_divergence_from_logs` instead.
  """
  _check_grid(x, p=p, q=q)
  return kl_divergence_from_logs(_log_density(p), _log_density(q), x)


def jensen_shannon_divergence_from_logs(log_p: Array, log_q: Array, x: Array) -> Array:
  """JSD(p || q) = 1/2 KL(p || m) + 1/2 KL(q || m), m = (p + q) / 2, from log densities.

  log m = logaddexp(log p, log q) - log 2 is computed without forming m, so it
  never underflows where p or q is positive: m >= p / 2 and every term
  p log(p / m) lies in (-inf, p log 2].
  """
  _check_grid(x, log_p=log_p, log_q=log_q)
  log_m = jnp.logaddexp(log_p, log_q) - math.log(2.0)
  return 0.5 * jnp.trapezoid(_p_log_ratio(log_p, log_m) + _p_log_ratio(log_q, log_m), x)


def jensen_shannon_divergence(p: Array, q: Array, x: Array) -> Array:
  """JSD(p || q) = 1/2 KL(p || m) + 1/2 KL(q || m), m = (p + q) / 2, in nats.

  Symmetric, zero iff p = q, and at most log 2 (reached for disjoint supports).
  Computed in the log domain (`jensen_shannon_divergence_from_logs`): m itself
  is never formed, because (p + q) / 2 falls below float32's smallest normal
  ~13 standard deviations out, where XLA flushes it to 0 and p log(p / m) would
  be inf. Densities below the smallest normal count as 0 (`_log_density`).
  """
  _check_grid(x, p=p, q=q)
  return jensen_shannon_divergence_from_logs(_log_density(p), _log_density(q), x)


def virtual_training_criterion(p_data: Array, p_g: Array, x: Array) -> Array:
  """C(G) = max_D V(D, G) = V(D*_G, G), by numerical integration.

  Equals -log 4 + 2 JSD(p_data || p_g) (Goodfellow et al. 2014, Theorem 1); it is
  computed here from the value function, not from that identity, so that the two
  can be checked against each other.

  1 - D* is taken as p_g / (p_data + p_g), not by subtraction: in the tails, where
  one density is 1e-30 times the other, 1 - D* would round to 0 and log to -inf.
  """
  _check_grid(x, p_data=p_data, p_g=p_g)
  integrand = (_weighted_log(p_data, jnp.log(optimal_discriminator(p_data, p_g))) +
               _weighted_log(p_g, jnp.log(optimal_discriminator(p_g, p_data))))
  return jnp.trapezoid(integrand, x)


# ---------------------------------------------------------------------------
# Dirac-GAN (Mescheder et al. 2018, section 2.2 and 4).
# ---------------------------------------------------------------------------


def dirac_gan_losses(loss: str | losses_lib.GANLoss, theta: Array, psi: Array, *,
                     gamma: Array | float = 0.0,
                     noise_std: float = 0.0) -> tuple[Array, Array]:
  """(L_D, L_G) of the Dirac-GAN under one of the project's losses.

  Data is x = 0, the generator's only sample is theta, and the discriminator's
  logit (critic score) is D_psi(x) = psi * x. D minimises

      L_D(theta, psi) = d_loss(D_psi(0), D_psi(theta)) + gamma * R1,
      R1 = 1/2 |dD_psi/dx (0)|^2 = 1/2 psi^2   (`losses.r1_penalty`),

  and G minimises L_G(theta, psi) = g_loss(D_psi(0), D_psi(theta)) (the real
  logit is read only by the relativistic losses, `GANLoss.g_needs_real`).

  Args:
    loss: a name in `losses.LOSSES` or a `GANLoss`.
    theta: the generator's parameter (a scalar).
    psi: the discriminator's parameter (a scalar).
    gamma: the R1 weight.
    noise_std: instance noise sigma (Sonderby et al. 2016): D sees 0 + eps and
      theta + eps, eps ~ N(0, sigma^2), and both losses are expectations over
      eps, taken exactly for polynomials of degree < 2 * HERMITE_NODES by
      Gauss-Hermite quadrature (losses separable in real and fake only). At the
      equilibrium the GAN's Jacobian becomes [[0, 1/2], [-1/2, -sigma^2/2]]:
      eigenvalues -sigma^2/4 +- sqrt(sigma^4/16 - 1/4) (Mescheder et al. 2018,
      section 3.2: instance noise converges, like R1 with gamma = sigma^2/2).
  """
  if isinstance(loss, str):
    loss = losses_lib.get_loss(loss)
  if noise_std:
    if loss.g_needs_real:
      raise ValueError(f'noise_std: the quadrature needs a loss separable in real and '
                       f'fake; config.loss={loss.name!r} is relativistic.')
    nodes, weights = np.polynomial.hermite_e.hermegauss(HERMITE_NODES)
    weights = jnp.asarray(weights / weights.sum(), jnp.float32)

    def at_node(eps):
      return _dirac_losses_at(loss, theta, psi, noise_std * eps, gamma)
    d_losses, g_losses = jax.vmap(at_node)(jnp.asarray(nodes, jnp.float32))
    return jnp.sum(weights * d_losses), jnp.sum(weights * g_losses)
  return _dirac_losses_at(loss, theta, psi, 0.0, gamma)


HERMITE_NODES = 32


def _dirac_losses_at(loss: losses_lib.GANLoss, theta: Array, psi: Array, eps,
                     gamma) -> tuple[Array, Array]:
  """(L_D, L_G) with real x = eps and G's sample theta + eps (eps = 0: no noise)."""
  real = jnp.zeros((1, 1), jnp.result_type(theta, psi, float)) + eps
  fake = jnp.reshape(theta, (1, 1)).astype(real.dtype) + eps

  def score_fn(x: Array) -> Array:
    return psi * x[:, 0]

  d_loss = loss.d_loss(score_fn(real), score_fn(fake))
  d_loss = d_loss + gamma * losses_lib.r1_penalty(score_fn, real)
  g_loss = loss.generator_loss(score_fn(real), score_fn(fake))
  return d_loss, g_loss


def dirac_gan_vector_field(loss: str | losses_lib.GANLoss, *,
                           gamma: Array | float = 0.0,
                           noise_std: float = 0.0) -> VectorField:
  """The simultaneous-gradient field v(theta, psi) = (-dL_G/dtheta, -dL_D/dpsi).

  Each player follows the negative gradient of its own loss (`dirac_gan_losses`);
  a gradient step of size h on both players is z <- z + h v(z).

  For the minimax and non-saturating losses v(0, 0) = 0 and the Jacobian there is
  [[0, 1/2], [-1/2, -gamma]]: eigenvalues +-i/2 without penalty and
  -gamma/2 +- sqrt(gamma^2/4 - 1/4) with R1 (Mescheder et al. 2018, Lemma 2.2 and
  Theorem 4.1). The Wasserstein and hinge losses give [[0, 1], [-1, -gamma]],
  eigenvalues +-i at gamma = 0: their f'(0) is 1. For least squares with this
  bias-free D the real logit is pinned at 0 and the Jacobian at (0, 0) is
  [[0, 1], [0, -gamma]], not an isolated equilibrium; it is provided for
  completeness but the paper's analysis does not cover it. WGAN-GP's penalty
  (|psi| - 1)^2 is not differentiable at psi = 0, so only R1 is offered here.

  Returns:
    v: (2,) array z = (theta, psi) -> (2,) array.
  """
  if isinstance(loss, str):
    loss = losses_lib.get_loss(loss)
  if isinstance(gamma, (int, float)) and gamma < 0:
    raise ValueError(f'gamma must be >= 0 (an R1 weight), got {gamma}.')

  def field(z: Array) -> Array:
    theta, psi = z[0], z[1]
    losses_at = functools.partial(dirac_gan_losses, loss, gamma=gamma, noise_std=noise_std)
    dg_dtheta = jax.grad(lambda t: losses_at(t, psi)[1])(theta)
    dd_dpsi = jax.grad(lambda p: losses_at(theta, p)[0])(psi)
    return jnp.stack([-dg_dtheta, -dd_dpsi]).astype(z.dtype)

  return field


def dirac_gan_jacobian(loss: str | losses_lib.GANLoss, z: Array | None = None, *,
                       gamma: Array | float = 0.0) -> Array:
  """dv/dz of `dirac_gan_vector_field` at z (default: the equilibrium (0, 0)).

  Rows are (v_theta, v_psi), columns (theta, psi).
  """
  if z is None:
    z = jnp.zeros((2,), jnp.float32)
  return jax.jacfwd(dirac_gan_vector_field(loss, gamma=gamma))(jnp.asarray(z))


def eigenvalues_2x2(matrix: Array) -> Array:
  """Both eigenvalues of a real 2x2 matrix, as complex numbers.

      lambda = tr/2 +- sqrt(tr^2/4 - det)

  A closed form rather than `jnp.linalg.eigvals`, whose order is unspecified:
  here the root with the + sign always comes first, so results can be compared
  entry by entry.
  """
  if jnp.shape(matrix) != (2, 2):
    raise ValueError(f'matrix must have shape (2, 2), got {jnp.shape(matrix)}.')
  half_trace = 0.5 * (matrix[0, 0] + matrix[1, 1])
  det = matrix[0, 0] * matrix[1, 1] - matrix[0, 1] * matrix[1, 0]
  complex_dtype = jnp.result_type(matrix.dtype, jnp.complex64)
  root = jnp.sqrt((half_trace**2 - det).astype(complex_dtype))
  return jnp.stack([half_trace + root, half_trace - root])


def dirac_gan_eigenvalues(loss: str | losses_lib.GANLoss, *,
                          gamma: Array | float = 0.0) -> Array:
  """Eigenvalues of the Dirac-GAN Jacobian at the equilibrium (0, 0), + root first."""
  return eigenvalues_2x2(dirac_gan_jacobian(loss, gamma=gamma))


def dirac_gan_trajectory(field: VectorField, z0: Array, *, learning_rate: float,
                         num_steps: int, alternating: bool = False) -> Array:
  """Iterates gradient steps on the Dirac-GAN and returns every iterate.

  Simultaneous: z <- z + h v(z). Its linearisation I + h J has eigenvalues
  1 + h lambda; for lambda = +-i/2 their modulus sqrt(1 + h^2/4) exceeds 1, so the
  iterates spiral away from the equilibrium for every step size (Mescheder et al.
  2018, section 2.2). Alternating: psi first, then theta against the new psi
  (the project's default D-then-G order).

  Args:
    field: a vector field from `dirac_gan_vector_field`.
    z0: (2,) start (theta, psi).
    learning_rate: h.
    num_steps: number of updates.
    alternating: update D first and G against the updated D.

  Returns:
    (num_steps + 1, 2) array of iterates, z0 first.
  """
  if num_steps < 0:
    raise ValueError(f'num_steps must be >= 0, got {num_steps}.')
  z0 = jnp.asarray(z0)

  def step(z: Array, _) -> tuple[Array, Array]:
    if alternating:
      z = z.at[1].add(learning_rate * field(z)[1])
      z = z.at[0].add(learning_rate * field(z)[0])
    else:
      z = z + learning_rate * field(z)
    return z, z

  _, zs = jax.lax.scan(step, z0, None, length=num_steps)
  return jnp.concatenate([z0[None], zs], axis=0)


# ---------------------------------------------------------------------------
# Dirac-GAN convergence table: each training method as a discrete update
# operator z_{t+1} = F(z_t), its Jacobian at the equilibrium, and where it
# takes a start point after N steps (Mescheder et al. 2018, sections 2-4;
# Mescheder et al. 2017; Gidel et al. 2019; Daskalakis et al. 2018; Metz et al.
# 2016). WGAN-GP is absent: its penalty (|psi| - 1)^2 is not differentiable at
# the equilibrium psi = 0, so there is no Jacobian to take.
# ---------------------------------------------------------------------------

DIRAC_METHODS = ('simultaneous', 'alternating', 'optimistic', 'extragradient',
                 'consensus', 'r1', 'instance_noise', 'unrolled')


def dirac_gan_update(method: str, loss: str | losses_lib.GANLoss = 'non_saturating', *,
                     learning_rate: float, gamma: float = 0.0, noise_std: float = 0.0,
                     unroll_steps: int = 0) -> Callable[[Array], Array]:
  """The update operator F of one training method on the Dirac-GAN.

  With v the simultaneous field of `dirac_gan_vector_field` (the project's losses)
  and h the step size:

    simultaneous   z <- z + h v(z); at the equilibrium I + hJ, eigenvalues 1 + h lambda.
    alternating    psi first, then theta against the new psi (D-then-G order).
    optimistic     z_{t+1} = z_t + h (2 v(z_t) - v(z_{t-1})), optimistic gradient
                   descent (Daskalakis et al. 2018; optax.optimistic_gradient_descent
                   with alpha = beta = 1, whose first step reuses v(z_0)). The state is
                   (theta, psi, v_prev) in R^4; per eigenvalue lambda of J the
                   characteristic roots solve mu^2 - (1 + 2 h lambda) mu + h lambda = 0.
    extragradient  z <- z + h v(z + h v(z)) (Korpelevich 1976; Gidel et al. 2019);
                   linearisation I + hJ + h^2 J^2.
    consensus      z <- z + h (v - gamma grad 1/2 |v|^2) = z + h (v - gamma J(z)^T v)
                   (Mescheder et al. 2017); at the equilibrium J - gamma J^T J, for
                   the GAN losses eigenvalues -gamma/4 +- i/2.
    r1             simultaneous steps on the R1-regularised field (Mescheder et al.
                   2018, Theorem 4.1): eigenvalues -gamma/2 +- sqrt(gamma^2/4 - 1/4).
    instance_noise simultaneous steps on the field with noise_std = sigma: eigenvalues
                   -sigma^2/4 +- sqrt(sigma^4/16 - 1/4) (`dirac_gan_losses`).
    unrolled       G descends L_G(theta, psi_K(theta)), psi_K = K SGD steps of D
                   from psi, differentiated through them (Metz et al. 2016); D takes
                   a plain simultaneous step. For WGAN, |mu|^2 = 1 - (2K - 1) h^2
                   when K h < 1.

  Returns:
    F: state -> state; the state is z = (theta, psi), or (theta, psi, v_prev) for
    'optimistic' (`dirac_gan_initial_state` builds it).
  """
  if method not in DIRAC_METHODS:
    raise ValueError(f'method={method!r} is not a Dirac-GAN method; valid choices: '
                     f'{", ".join(DIRAC_METHODS)}.')
  if not learning_rate > 0:
    raise ValueError(f'learning_rate={learning_rate!r} must be > 0.')
  if method == 'unrolled' and unroll_steps < 1:
    raise ValueError(f'method=unrolled needs unroll_steps >= 1, got {unroll_steps}.')
  if method == 'instance_noise' and not noise_std > 0:
    raise ValueError(f'method=instance_noise needs noise_std > 0, got {noise_std}.')
  h = learning_rate
  field = dirac_gan_vector_field(loss, gamma=gamma if method == 'r1' else 0.0,
                                 noise_std=noise_std if method == 'instance_noise' else 0.0)

  if method in ('simultaneous', 'r1', 'instance_noise'):
    return lambda z: z + h * field(z)
  if method == 'alternating':
    def alternating(z):
      z = z.at[1].add(h * field(z)[1])
      return z.at[0].add(h * field(z)[0])
    return alternating
  if method == 'optimistic':
    def optimistic(s):
      z, v_prev = s[:2], s[2:]
      v = field(z)
      return jnp.concatenate([z + h * (2.0 * v - v_prev), v])
    return optimistic
  if method == 'extragradient':
    return lambda z: z + h * field(z + h * field(z))
  if method == 'unrolled':
    def unrolled(z):
      theta, psi = z[0], z[1]

      def psi_k(t):
        p = psi
        for _ in range(unroll_steps):
          p = p + h * field(jnp.stack([t, p]))[1]
        return p
      g_grad = jax.grad(lambda t: dirac_gan_losses(loss, t, psi_k(t))[1])(theta)
      return jnp.stack([theta - h * g_grad, psi + h * field(z)[1]])
    return unrolled
  # consensus: grad of 1/2 |v|^2 is J(z)^T v(z).
  half_sq = lambda z: 0.5 * jnp.sum(jnp.square(field(z)))
  return lambda z: z + h * (field(z) - gamma * jax.grad(half_sq)(z))


def dirac_gan_initial_state(method: str, z0: Array,
                            loss: str | losses_lib.GANLoss = 'non_saturating') -> Array:
  """The state `dirac_gan_update(method)` iterates from z0: z0, or (z0, v(z0)) for optimistic."""
  z0 = jnp.asarray(z0, jnp.float32)
  if method == 'optimistic':
    return jnp.concatenate([z0, dirac_gan_vector_field(loss)(z0)])
  return z0


def spectral_radius(matrix: Array) -> Array:
  """max |eigenvalue| of a square matrix; < 1 means the linear iteration converges."""
  return jnp.max(jnp.abs(jnp.linalg.eigvals(jnp.asarray(matrix))))


def dirac_gan_update_jacobian(method: str, loss: str | losses_lib.GANLoss = 'non_saturating',
                              **options) -> Array:
  """dF/dstate at the equilibrium (state 0), by forward-mode JAX through F.

  `options`: those of `dirac_gan_update` (learning_rate, gamma, ...).
  """
  size = 4 if method == 'optimistic' else 2
  update = dirac_gan_update(method, loss, **options)
  return jax.jacfwd(update)(jnp.zeros((size,), jnp.float32))


def dirac_gan_iterates(method: str, loss: str | losses_lib.GANLoss = 'non_saturating', *,
                       z0=(1.0, 1.0), num_steps: int, **options) -> Array:
  """(num_steps + 1, 2) iterates (theta, psi) of `dirac_gan_update(method)` from z0."""
  if num_steps < 0:
    raise ValueError(f'num_steps must be >= 0, got {num_steps}.')
  update = dirac_gan_update(method, loss, **options)

  def step(state, _):
    state = update(state)
    return state, state[:2]
  s0 = dirac_gan_initial_state(method, z0, loss)
  _, zs = jax.lax.scan(step, s0, None, length=num_steps)
  return jnp.concatenate([s0[None, :2], zs], axis=0)


# (label, method, loss): the rows of `dirac_gan_convergence_table`.
DIRAC_TABLE_ROWS = (
    ('simultaneous GD', 'simultaneous', 'non_saturating'),
    ('alternating GD', 'alternating', 'non_saturating'),
    ('WGAN, simultaneous', 'simultaneous', 'wasserstein'),
    ('WGAN, alternating', 'alternating', 'wasserstein'),
    ('R1', 'r1', 'non_saturating'),
    ('instance noise', 'instance_noise', 'non_saturating'),
    ('consensus', 'consensus', 'non_saturating'),
    ('optimistic', 'optimistic', 'non_saturating'),
    ('extragradient', 'extragradient', 'non_saturating'),
    ('unrolled K', 'unrolled', 'non_saturating'),
    ('WGAN, unrolled K', 'unrolled', 'wasserstein'),
)


def dirac_gan_convergence_table(*, learning_rate: float = 0.1, gamma: float = 1.0,
                                noise_std: float = 1.0, unroll_steps: int = 5,
                                num_steps: int = 1000, z0=(1.0, 1.0),
                                rows=DIRAC_TABLE_ROWS) -> list[dict]:
  """One row per (label, method, loss) of `rows`: the local-convergence facts.

  Columns: label, method, loss, rho (spectral radius of F's Jacobian at the
  equilibrium; the iteration converges locally iff rho < 1, at the linear rate
  rho per step), converges (rho < 1 - 1e-6), neutral (|rho - 1| <= 1e-6:
  neither converges nor diverges locally), and distance (|z_N| after num_steps
  steps from z0; the equilibrium is 0). `gamma` is the consensus and R1 weight.
  """
  options = dict(learning_rate=learning_rate, gamma=gamma, noise_std=noise_std,
                 unroll_steps=unroll_steps)
  out = []
  for label, method, loss in rows:
    rho = float(spectral_radius(dirac_gan_update_jacobian(method, loss, **options)))
    update = jax.jit(dirac_gan_update(method, loss, **options))
    state = dirac_gan_initial_state(method, z0, loss)
    for _ in range(num_steps):
      state = update(state)
    out.append(dict(label=label, method=method, loss=loss, rho=rho,
                    converges=rho < 1.0 - 1e-6, neutral=abs(rho - 1.0) <= 1e-6,
                    distance=float(jnp.linalg.norm(state[:2]))))
  return out


def format_convergence_table(rows: list[dict], *, num_steps: int) -> str:
  """The table as aligned text (what `python -m gan_jax.theory` prints)."""
  lines = [f'{"method":<20} {"rho":>10} {"locally":>11} {f"|z_{num_steps}|":>12}']
  for r in rows:
    verdict = 'converges' if r['converges'] else ('neutral' if r['neutral'] else 'diverges')
    lines.append(f'{r["label"]:<20} {r["rho"]:>10.6f} {verdict:>11} {r["distance"]:>12.4g}')
  return '\n'.join(lines)


def main(argv: list[str] | None = None) -> str:
  """python -m gan_jax.theory [--lr 0.1] [--gamma 1] [--noise 1] [--unroll 5] [--steps 1000]."""
  import argparse  # pylint: disable=g-import-not-at-top
  parser = argparse.ArgumentParser(description='The Dirac-GAN convergence table.')
  parser.add_argument('--lr', type=float, default=0.1, help='step size h')
  parser.add_argument('--gamma', type=float, default=1.0, help='R1 and consensus weight')
  parser.add_argument('--noise', type=float, default=1.0, help='instance noise std')
  parser.add_argument('--unroll', type=int, default=5, help='unrolled D steps K')
  parser.add_argument('--steps', type=int, default=1000, help='N, for |z_N| from (1, 1)')
  args = parser.parse_args(argv)
  rows = dirac_gan_convergence_table(learning_rate=args.lr, gamma=args.gamma,
                                     noise_std=args.noise, unroll_steps=args.unroll,
                                     num_steps=args.steps)
  text = (f'Dirac-GAN (Mescheder et al. 2018), h = {args.lr}, gamma = {args.gamma}, '
          f'sigma = {args.noise}, K = {args.unroll}, from (theta, psi) = (1, 1):\n'
          + format_convergence_table(rows, num_steps=args.steps))
  print(text)
  return text


if __name__ == '__main__':
  main()
