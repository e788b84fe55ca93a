"""Building blocks shared by the GAN models.

* `Maxout` (Goodfellow et al. 2013), the unit of the Mirza & Osindero CGAN
  discriminator.
* Two ways of letting D look at a whole minibatch, the classic remedies for mode
  collapse: `MinibatchDiscrimination` (Salimans et al. 2016) and `MinibatchStddev`
  (Karras et al. 2018).
* `pack_inputs`: PacGAN packing (Lin et al. 2018).
* Helpers that every model uses the same way: activation look-up by name and the
  one-hot encoding of labels for conditional models.

Everything here is pure; nothing does I/O.
"""

from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array


def as_tuple(value):
  """Lists (e.g. from the command line) as tuples: modules must be hashable for jit."""
  if isinstance(value, (list, tuple)):
    return tuple(value)
  return value


def leaky_relu(x: Array) -> Array:
  """LeakyReLU with slope 0.2, the DCGAN discriminator's choice (Radford et al. 2016)."""
  return jax.nn.leaky_relu(x, negative_slope=0.2)


ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    'relu': jax.nn.relu,
    'leaky_relu': leaky_relu,
    'elu': jax.nn.elu,
    'gelu': jax.nn.gelu,
    'swish': jax.nn.swish,
    'softplus': jax.nn.softplus,
    'tanh': jnp.tanh,
    'sigmoid': jax.nn.sigmoid,
    'linear': lambda x: x,
}

# G's last activation sets the range of the samples, which must match how the
# input pipeline scales the data: [-1, 1], [0, 1] or unbounded (2-D mixtures).
OUT_ACTIVATIONS = ('tanh', 'sigmoid', 'linear')

MINIBATCH_KINDS = ('none', 'discrimination', 'stddev')

# Kernel initialisers of the MLPs, by name; `scale` is the std of 'normal'
# (PacGAN: N(0, 0.02^2)) and the gain of 'orthogonal' (Metz et al.'s demo: 1.4).
INITS = ('lecun_normal', 'normal', 'orthogonal')


def get_kernel_init(name: str, scale: float = 1.0) -> Callable:
  """The kernel initialiser called `name`; ValueError naming model.init and the choices."""
  if name not in INITS:
    raise ValueError(f'Unknown model.init {name!r}; valid: {list(INITS)}.')
  if not (isinstance(scale, (int, float)) and scale > 0 and scale < float('inf')):
    raise ValueError(f'model.init_scale={scale!r} must be a finite number > 0.')
  if name == 'normal':
    return nn.initializers.normal(stddev=float(scale))
  if name == 'orthogonal':
    return nn.initializers.orthogonal(scale=float(scale))
  # flax's default; `scale` multiplies the variance as in variance_scaling.
  return nn.initializers.variance_scaling(float(scale), 'fan_in', 'truncated_normal')


def get_activation(name: str, field: str = 'activation') -> Callable[[Array], Array]:
  """The activation called `name`; ValueError naming `field` and the choices."""
  if name not in ACTIVATIONS:
    raise ValueError(f'Unknown {field} {name!r}; valid: {sorted(ACTIVATIONS)}.')
  return ACTIVATIONS[name]


def get_out_activation(name: str) -> Callable[[Array], Array]:
  """G's output activation: 'tanh' -> [-1, 1], 'sigmoid' -> [0, 1], 'linear'."""
  if name not in OUT_ACTIVATIONS:
    raise ValueError(
        f'Unknown out_activation {name!r}; valid: {list(OUT_ACTIVATIONS)}.')
  return ACTIVATIONS[name]


def check_flag(value, field: str) -> bool:
  """A config boolean, or a ValueError naming the field (True/False only)."""
  if not isinstance(value, bool):
    raise ValueError(f'config.{field}={value!r} must be True or False.')
  return value


def check_minibatch(kind: str) -> None:
  if kind not in MINIBATCH_KINDS:
    raise ValueError(f'Unknown minibatch {kind!r}; valid: {list(MINIBATCH_KINDS)}.')


def one_hot_labels(labels: Array | None, num_classes: int, batch_size: int) -> Array:
  """(B,) int labels -> (B, num_classes) float32 one-hot, checking the inputs.

  A conditional model called without labels is an error rather than a silent
  unconditional sample: the caller almost certainly forgot to pass them.
  """
  if labels is None:
    raise ValueError(
        f'labels is None but the model is conditional (num_classes={num_classes}); '
        'pass labels of shape (batch,), or build the model with num_classes=0.')
  labels = jnp.asarray(labels)
  if labels.shape != (batch_size,):
    raise ValueError(
        f'labels must have shape ({batch_size},) to match the batch, got {labels.shape}.')
  return jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)


def pack_inputs(x: Array, pack: int, *, channels_last: bool = False) -> Array:
  """PacGAN packing (Lin et al. 2018, "PacGAN: The power of two samples in GANs").

  D judges m samples jointly: m consecutive examples are concatenated into one,
  so D's input distribution becomes the m-fold product p^m, whose total variation
  distance penalises mode collapse more than that of p. Real and fake batches are
  packed separately (a pack is all real or all fake).

    * `channels_last=False` (MLPs): x (B, ...) -> (B / m, m * prod(...)), the
      flattened examples side by side.
    * `channels_last=True` (conv nets): x (B, H, W, C) -> (B / m, H, W, m * C),
      the examples stacked along the channels, as in the paper's PacDCGAN.

  Raises ValueError when B is not divisible by m.
  """
  if pack < 1:
    raise ValueError(f'pack must be a positive integer, got {pack}.')
  batch = x.shape[0]
  if batch % pack:
    raise ValueError(
        f'pack={pack} does not divide the batch size {batch}: PacGAN needs '
        'batch % pack == 0.')
  if pack == 1:
    return x
  if not channels_last:
    return x.reshape(batch // pack, -1)
  if x.ndim != 4:
    raise ValueError(f'channels_last packing expects (B, H, W, C), got shape {x.shape}.')
  _, h, w, c = x.shape
  x = x.reshape(batch // pack, pack, h, w, c)
  # Channel index of the packed image is k * C + c for example k of the pack.
  return jnp.moveaxis(x, 1, 3).reshape(batch // pack, h, w, pack * c)


class Maxout(nn.Module):
  """Maxout layer (Goodfellow et al. 2013, "Maxout Networks").

      h_i(x) = max_{j in 1..k} (x^T W_{:, i, j} + b_{i, j}),   i = 1..features

  i.e. one dense layer with `features * pieces` outputs followed by a max over
  groups of `pieces`. Parameters: in * features * pieces + features * pieces.
  """
  features: int
  pieces: int
  kernel_init: Callable = nn.initializers.lecun_normal()

  @nn.compact
  def __call__(self, x: Array) -> Array:
    if self.pieces < 1:
      raise ValueError(f'Maxout pieces must be >= 1, got {self.pieces}.')
    y = nn.Dense(self.features * self.pieces, kernel_init=self.kernel_init,
                 name='dense')(x)
    return jnp.max(y.reshape(*y.shape[:-1], self.features, self.pieces), axis=-1)


def spectral_norm(layer: nn.Module, enabled: bool, *, train: bool) -> Callable[[Array], Array]:
  """`layer` with its kernel spectrally normalised when `enabled` (Miyato et al. 2018).

      W_SN = W / sigma(W),  sigma(W) ~ v^T W u  by power iteration:
      v <- W u / |W u|,  u <- W^T v / |W^T v|   (W reshaped to (-1, out) for convs).

  `flax.linen.SpectralNorm` with one power iteration per call (SN-GAN's
  choice): u persists between calls in the 'batch_stats' collection, so it
  flows through the train step, the checkpoints and resume exactly as BatchNorm's
  statistics do, and the estimate stays converged while W changes slowly. u is
  updated only when train=True; in inference mode the iteration runs from the
  stored u without storing. The layer keeps its parameter path (params/<name>);
  the vectors live in batch_stats/<name>_sn. Biases are not normalised.
  """
  if not enabled:
    return layer
  wrapped = nn.SpectralNorm(layer, n_steps=1, name=f'{layer.name}_sn')
  return lambda x: wrapped(x, update_stats=train)


class MinibatchDiscrimination(nn.Module):
  """Minibatch discrimination (Salimans et al. 2016, "Improved Techniques for
  Training GANs", section 3.2).

  With features f(x_i) in R^A and a learned tensor T in R^{A x B x C}:

      M_i = f(x_i) T                             in R^{B x C}
      c_b(x_i, x_j) = exp(-||M_{i,b} - M_{j,b}||_1)
      o(x_i)_b = sum_{j != i} c_b(x_i, x_j)      in R^B

  and the layer returns [f(x_i), o(x_i)] in R^{A + B}. Self-similarity is
  excluded (as in the authors' code, which adds 1e6 to the diagonal distance):
  a batch of identical examples gives o_b = N - 1 exactly. Because o(x_i)
  depends on the other examples, D can tell a collapsed batch from a diverse
  one. The statistics are over the batch this layer sees, so real and fake
  batches must go through D separately (as with BatchNorm).

  Inputs of rank > 2 are flattened. B = `num_kernels`, C = `kernel_dim`.
  Memory is O(N^2 B C) for a batch of N.
  """
  num_kernels: int = 50
  kernel_dim: int = 5
  # The authors' code draws T from N(0, 0.05^2).
  kernel_init: Callable = nn.initializers.normal(0.05)

  @nn.compact
  def __call__(self, x: Array) -> Array:
    f = x.reshape(x.shape[0], -1) if x.ndim != 2 else x
    n = f.shape[0]
    t = self.param('kernel', self.kernel_init,
                   (f.shape[-1], self.num_kernels * self.kernel_dim), jnp.float32)
    m = (f @ t).reshape(n, self.num_kernels, self.kernel_dim)
    l1 = jnp.sum(jnp.abs(m[:, None] - m[None, :]), axis=-1)  # (N, N, B)
    not_self = ~jnp.eye(n, dtype=bool)[:, :, None]
    o = jnp.sum(jnp.where(not_self, jnp.exp(-l1), 0.0), axis=1)  # (N, B)
    return jnp.concatenate([f, o.astype(f.dtype)], axis=-1)


class MinibatchStddev(nn.Module):
  """Minibatch standard deviation (Karras et al. 2018, "Progressive Growing of
  GANs", section 3).

  For groups of G examples (G = `group_size`, whole batch when None):

      sigma(f) = sqrt(mean_{i in group} (x_i(f) - mean_group x(f))^2 + eps)
      s = mean_f sigma(f)          (over all features / pixels / channels)

  and s is appended to every example of the group as one more feature (input
  (N, F) -> (N, F + 1)) or one more constant channel (input (N, H, W, C) ->
  (N, H, W, C + 1)). A collapsed group of identical examples gives s = sqrt(eps)
  (0 with eps=0). The variance is the biased (population) one, as in the
  paper's code; eps > 0 keeps the gradient of sqrt finite at a collapsed group.
  Groups are strided as in the reference code: example i belongs to group
  i mod (N / G). N must be divisible by G.
  """
  group_size: int | None = None
  eps: float = 1e-8

  @nn.compact
  def __call__(self, x: Array) -> Array:
    n = x.shape[0]
    g = n if self.group_size is None else min(self.group_size, n)
    if g < 1 or n % g:
      raise ValueError(
          f'MinibatchStddev group_size={self.group_size} must divide the batch size {n}.')
    y = x.astype(jnp.float32).reshape(g, n // g, *x.shape[1:])
    var = jnp.mean(jnp.square(y - jnp.mean(y, axis=0)), axis=0)  # (N/G, ...)
    s = jnp.mean(jnp.sqrt(var + self.eps), axis=tuple(range(1, var.ndim)))  # (N/G,)
    s = jnp.tile(s, g).astype(x.dtype)  # example i gets group i mod (N/G)
    s = jnp.broadcast_to(s.reshape(n, *([1] * (x.ndim - 1))), (*x.shape[:-1], 1))
    return jnp.concatenate([x, s], axis=-1)


def minibatch_layer(kind: str) -> Callable[[Array], Array] | None:
  """The minibatch layer for D's config value `kind`, or None for 'none'."""
  check_minibatch(kind)
  if kind == 'discrimination':
    return MinibatchDiscrimination(name='minibatch_discrimination')
  if kind == 'stddev':
    return MinibatchStddev(name='minibatch_stddev')
  return None
