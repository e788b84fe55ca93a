"""The two-player training step: one pure function updates G, D and both optax states.

    state, metrics = train_step(state, batch, spec=spec, axis_name=None)

`spec` (a `GANSpec`) holds everything static: the two flax modules, the two optax
transformations, the loss pair and the training options. It is bound with
`functools.partial` before `jax.jit`, so the state is the only pytree that flows.

Options, all of them values of one step rather than copies of it:
  * `d_steps` discriminator updates per generator update; the batch then carries
    `d_steps` micro-batches of real data (one fresh real batch per D update, as in
    WGAN's n_critic loop);
  * `update_order`: 'd_first' (alternating, D then G: Goodfellow et al. 2014,
    algorithm 1), 'g_first', or 'simultaneous' (both gradients taken at the same
    point, the dynamics analysed by Mescheder et al. 2017/2018);
  * unrolled lookahead (Metz et al. 2016, arXiv:1611.02163): G's loss is taken
    against D after `unroll_steps` further optimizer updates, differentiated
    through the optimizer (`unroll_exact=True`) or not (first order);
  * gradient penalty / R1 / weight clipping, label smoothing, noisy labels,
    instance noise, the matching-aware CGAN discriminator (Reed et al. 2016);
  * `game`: 'extragradient' or 'consensus' optimisation (`_game_update`);
    optimistic gradient is an optimizer choice (factory.make_optimizer);
  * an exponential moving average of G's parameters;
  * `freeze_g`: D trains against a fixed G, whose gradient is computed but not
    applied (Arjovsky & Bottou 2017's experiment, `gan_jax.vanishing`).

Data parallelism: given `axis_name`, the step runs per device inside `shard_map`
(or `pmap`); gradients, metrics and BatchNorm statistics are averaged over the
axis. All noise (z, fake labels, label noise, penalty interpolation) is drawn for
the *global* batch from the same key and sliced per device, so an n-device step
equals the single-device step on the same global batch. Dropout masks are the
exception: flax draws them for the local batch, so each device folds its index
into the dropout key (masks differ across devices, as they must, but do not
reproduce the single-device masks).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from gan_jax import losses as losses_lib

Array = jax.Array
PyTree = Any

UPDATE_ORDERS = ('d_first', 'g_first', 'simultaneous')
GAMES = ('gd', 'extragradient', 'consensus')
LATENT_DISTRIBUTIONS = ('normal', 'uniform')


@flax.struct.dataclass
class GANState:
  """Everything that changes during training, as one pytree.

  `g_batch_stats` / `d_batch_stats` are empty dicts for models without
  BatchNorm; `ema_params` equals `g_params` when no EMA is configured.
  """
  step: Array
  g_params: PyTree
  d_params: PyTree
  g_opt_state: PyTree
  d_opt_state: PyTree
  g_batch_stats: PyTree
  d_batch_stats: PyTree
  ema_params: PyTree
  rng: Array


@dataclasses.dataclass(frozen=True)
class GANSpec:
  """The static half of a GAN: models, optimizers, loss and options."""
  generator: nn.Module
  discriminator: nn.Module
  g_tx: optax.GradientTransformation
  d_tx: optax.GradientTransformation
  loss: losses_lib.GANLoss
  latent_dim: int
  num_classes: int = 0  # > 0: conditional GAN, labels go into G and D.
  latent_distribution: str = 'normal'
  d_steps: int = 1
  update_order: str = 'd_first'
  gradient_penalty: float = 0.0
  r1_gamma: float = 0.0
  r2_gamma: float = 0.0  # R2: 1/2 E_fake |grad_x D|^2 (Mescheder et al. 2018).
  dragan: float = 0.0  # DRAGAN lambda (Kodali et al. 2017), around the reals.
  weight_clip: float = 0.0
  label_smoothing: float = 0.0
  label_smoothing_fake: float = 0.0  # two-sided smoothing: fake target beta (see fake_targets).
  label_noise: float = 0.0
  instance_noise: float = 0.0
  instance_noise_decay_steps: int = 0  # linear decay of the std to 0; 0 = constant.
  matching_aware: bool = False
  unroll_steps: int = 0
  unroll_exact: bool = True
  unroll_remat: bool = False
  unroll_g_once: bool = True  # False: the K-pass lookahead that re-runs G each step.
  ema_decay: float = 0.0
  game: str = 'gd'  # gd | extragradient | consensus (see _game_update).
  consensus_gamma: float = 0.0  # consensus: weight of 1/2 |v|^2.
  freeze_g: bool = False  # G's gradient is computed (metrics) but never applied.

  def __post_init__(self):
    if self.update_order not in UPDATE_ORDERS:
      raise ValueError(f'config.update_order={self.update_order!r}; valid choices: '
                       f'{", ".join(UPDATE_ORDERS)}.')
    if self.latent_distribution not in LATENT_DISTRIBUTIONS:
      raise ValueError(f'config.model.latent_distribution={self.latent_distribution!r}; '
                       f'valid choices: {", ".join(LATENT_DISTRIBUTIONS)}.')
    if self.d_steps < 1:
      raise ValueError(f'config.d_steps={self.d_steps} must be >= 1.')
    if self.update_order == 'simultaneous' and self.d_steps != 1:
      raise ValueError('config.update_order=simultaneous takes one gradient of each '
                       f'player at the same point; config.d_steps={self.d_steps} must be 1.')
    if self.game not in GAMES:
      raise ValueError(f'config.game.method={self.game!r}; valid choices: '
                       f'{", ".join(GAMES)}.')
    if self.game != 'gd' and (self.update_order != 'simultaneous' or self.d_steps != 1
                              or self.unroll_steps):
      raise ValueError(
          f'config.game.method={self.game!r} takes both players\' gradients at the same '
          'point: it needs config.update_order=simultaneous, config.d_steps=1 and '
          f'config.unroll.steps=0 (got {self.update_order!r}, {self.d_steps}, '
          f'{self.unroll_steps}).')
    if self.game == 'consensus' and not self.consensus_gamma > 0:
      raise ValueError(f'config.game.method=consensus needs config.game.consensus_gamma > 0, '
                       f'got {self.consensus_gamma!r}.')
    if self.unroll_steps < 0:
      raise ValueError(f'config.unroll.steps={self.unroll_steps} must be >= 0.')
    if self.matching_aware and self.num_classes < 2:
      raise ValueError('config.matching_aware=True needs a conditional model with at '
                       'least 2 classes (config.model.conditional=True).')
    if self.matching_aware and self.loss.g_needs_real:
      raise ValueError(f'config.matching_aware=True doubles D\'s negatives, which a '
                       f'relativistic loss cannot pair with the reals; config.loss='
                       f'{self.loss.name!r} needs one of the non-relativistic losses.')
    if (self.label_smoothing or self.label_noise) and not self.loss.uses_targets:
      raise ValueError(
          f'config.label_smoothing / config.label_noise need a loss with targets '
          f'(minimax, non_saturating, least_squares); config.loss={self.loss.name!r} has none.')
    beta = self.label_smoothing_fake
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 <= beta < 1:
      raise ValueError(f'config.label_smoothing_fake={beta!r} must lie in [0, 1).')
    if beta and not self.loss.uses_targets:
      raise ValueError(
          f'config.label_smoothing_fake needs a loss with targets (minimax, '
          f'non_saturating, least_squares); config.loss={self.loss.name!r} has none.')
    if not 1.0 - self.label_smoothing > beta:
      raise ValueError(
          f'config.label_smoothing_fake={beta!r} must be below the real target 1 - '
          f'config.label_smoothing = {1.0 - self.label_smoothing!r}: D must still '
          'rank reals above fakes.')
    if self.freeze_g and self.game != 'gd':
      raise ValueError(f'config.train.freeze_g=True trains D alone against a fixed G; '
                       f'config.game.method={self.game!r} moves both players at once '
                       "(use 'gd').")

  @property
  def conditional(self) -> bool:
    return self.num_classes > 0


# ---------------------------------------------------------------------------
# Noise drawn for the global batch and sliced per device.
# ---------------------------------------------------------------------------


def _draw(key: Array, sampler: Callable[[Array, tuple[int, ...]], Array],
          local_shape: tuple[int, ...], axis_name: str | None) -> Array:
  if axis_name is None:
    return sampler(key, local_shape)
  num_devices = jax.lax.psum(1, axis_name)
  index = jax.lax.axis_index(axis_name)
  n = local_shape[0]
  full = sampler(key, (num_devices * n,) + tuple(local_shape[1:]))
  return jax.lax.dynamic_slice_in_dim(full, index * n, n)


def _global_sampler(sampler: Callable[[Array, tuple[int, ...]], Array],
                    axis_name: str | None) -> Callable[[Array, tuple[int, ...]], Array]:
  """`sampler` for a local shape, drawing the global batch and slicing (see `_draw`)."""
  return lambda key, shape: _draw(key, sampler, shape, axis_name)


def latent_sampler(spec: GANSpec) -> Callable[[Array, tuple[int, ...]], Array]:
  """(key, shape) -> z: N(0, I) or U[-1, 1] (Goodfellow et al. 2014 / seed 000)."""
  if spec.latent_distribution == 'uniform':
    return lambda k, s: jax.random.uniform(k, s, minval=-1.0, maxval=1.0)
  return jax.random.normal


def sample_latents(spec: GANSpec, key: Array, n: int) -> Array:
  return latent_sampler(spec)(key, (n, spec.latent_dim))


def _latents(spec: GANSpec, key: Array, n: int, axis_name: str | None) -> Array:
  return _draw(key, latent_sampler(spec), (n, spec.latent_dim), axis_name)


def _fake_labels(spec: GANSpec, key: Array, n: int, axis_name: str | None):
  if not spec.conditional:
    return None
  return _draw(key, lambda k, s: jax.random.randint(k, s, 0, spec.num_classes),
               (n,), axis_name)


# ---------------------------------------------------------------------------
# Forward passes.
# ---------------------------------------------------------------------------


def _apply(module: nn.Module, params: PyTree, batch_stats: PyTree, inputs: Array,
           labels: Array | None, dropout_key: Array,
           axis_name: str | None = None) -> tuple[Array, PyTree]:
  """Applies a module in training mode, returning (output, new batch_stats).

  Under data parallelism the dropout key is folded with the device index: each
  device draws its own masks (flax's Dropout draws them for the local batch, so
  the same key would repeat one mask on every device).
  """
  if axis_name is not None:
    dropout_key = jax.random.fold_in(dropout_key, jax.lax.axis_index(axis_name))
  variables = {'params': params}
  if batch_stats:
    variables['batch_stats'] = batch_stats
    out, updates = module.apply(variables, inputs, labels, train=True,
                                rngs={'dropout': dropout_key},
                                mutable=['batch_stats'])
    return out, updates['batch_stats']
  out = module.apply(variables, inputs, labels, train=True,
                     rngs={'dropout': dropout_key})
  return out, batch_stats


def generate(spec: GANSpec, g_params: PyTree, g_batch_stats: PyTree, z: Array,
             labels: Array | None = None) -> Array:
  """G's samples in inference mode (BatchNorm running averages, no dropout)."""
  variables = {'params': g_params}
  if g_batch_stats:
    variables['batch_stats'] = g_batch_stats
  return spec.generator.apply(variables, z, labels, train=False)


def discriminate(spec: GANSpec, d_params: PyTree, d_batch_stats: PyTree, x: Array,
                 labels: Array | None = None) -> Array:
  """D's logits in inference mode."""
  variables = {'params': d_params}
  if d_batch_stats:
    variables['batch_stats'] = d_batch_stats
  return spec.discriminator.apply(variables, x, labels, train=False)


def _instance_noise_std(spec: GANSpec, step: Array) -> Array:
  if spec.instance_noise_decay_steps > 0:
    frac = jnp.clip(1.0 - step / spec.instance_noise_decay_steps, 0.0, 1.0)
    return spec.instance_noise * frac
  return jnp.asarray(spec.instance_noise, jnp.float32)


def _d_objective(spec: GANSpec, d_params: PyTree, d_batch_stats: PyTree,
                 real: Array, real_labels: Array | None, fake: Array,
                 fake_labels: Array | None, key: Array, step: Array,
                 axis_name: str | None) -> tuple[Array, tuple[PyTree, dict[str, Array]]]:
  """D's full loss (loss pair + penalties) on one real and one fake batch."""
  k_noise_r, k_noise_f, k_wrong, k_tr, k_tf, k_gp, k_drop = jax.random.split(key, 7)
  n = real.shape[0]
  if spec.instance_noise > 0:
    std = _instance_noise_std(spec, step)
    normal = _global_sampler(jax.random.normal, axis_name)
    real = losses_lib.add_instance_noise(k_noise_r, real, std, normal=normal)
    fake = losses_lib.add_instance_noise(k_noise_f, fake, std, normal=normal)

  real_logits, d_batch_stats = _apply(spec.discriminator, d_params, d_batch_stats,
                                      real, real_labels, k_drop, axis_name)
  fake_logits, d_batch_stats = _apply(spec.discriminator, d_params, d_batch_stats,
                                      fake, fake_labels, jax.random.fold_in(k_drop, 1),
                                      axis_name)
  negatives = fake_logits
  if spec.matching_aware:
    # Real images with a wrong label are negatives too (Reed et al. 2016, GAN-CLS):
    # a shift of 1..K-1 classes is uniform over the wrong labels.
    shift = _draw(k_wrong, lambda k, s: jax.random.randint(k, s, 1, spec.num_classes),
                  (n,), axis_name)
    wrong_labels = (real_labels + shift) % spec.num_classes
    wrong_logits, d_batch_stats = _apply(spec.discriminator, d_params, d_batch_stats,
                                         real, wrong_labels, jax.random.fold_in(k_drop, 2),
                                         axis_name)
    negatives = jnp.concatenate([fake_logits, wrong_logits])

  if spec.loss.uses_targets:
    real_t = _draw(k_tr, functools.partial(losses_lib.real_targets,
                                           smoothing=spec.label_smoothing,
                                           noise_std=spec.label_noise),
                   real_logits.shape, axis_name)
    sample_fake_t = functools.partial(losses_lib.fake_targets,
                                      smoothing=spec.label_smoothing_fake,
                                      noise_std=spec.label_noise)
    fake_t = _draw(k_tf, sample_fake_t, fake_logits.shape, axis_name)
    if spec.matching_aware:
      # Drawn per part: a device's [fake, wrong] slice must line up with the
      # single-device [all fake, all wrong] batch.
      fake_t = jnp.concatenate([fake_t, _draw(jax.random.fold_in(k_tf, 1), sample_fake_t,
                                              wrong_logits.shape, axis_name)])
    loss = spec.loss.d_loss(real_logits, negatives, real_targets=real_t,
                            fake_targets=fake_t)
  else:
    loss = spec.loss.d_loss(real_logits, negatives)

  aux = {}
  if spec.gradient_penalty > 0 or spec.r1_gamma > 0 or spec.r2_gamma > 0 or spec.dragan > 0:
    def score_fn(x, labels):
      logits, _ = _apply(spec.discriminator, d_params, d_batch_stats, x, labels,
                         jax.random.fold_in(k_drop, 3), axis_name)
      return logits
    if spec.gradient_penalty > 0:
      # Per-example interpolation coefficients, drawn globally like all noise.
      gp = losses_lib.gradient_penalty(
          lambda x: score_fn(x, real_labels), real, fake, k_gp,
          uniform=_global_sampler(jax.random.uniform, axis_name))
      loss = loss + spec.gradient_penalty * gp
      aux['gradient_penalty'] = gp
    if spec.r1_gamma > 0:
      r1 = losses_lib.r1_penalty(lambda x: score_fn(x, real_labels), real)
      loss = loss + spec.r1_gamma * r1
      aux['r1_penalty'] = r1
    if spec.r2_gamma > 0:  # at G's samples (the fakes, with their labels)
      r2 = losses_lib.r2_penalty(lambda x: score_fn(x, fake_labels), fake)
      loss = loss + spec.r2_gamma * r2
      aux['r2_penalty'] = r2
    if spec.dragan > 0:
      dragan = losses_lib.dragan_penalty(
          lambda x: score_fn(x, real_labels), real, jax.random.fold_in(k_gp, 1),
          uniform=_global_sampler(jax.random.uniform, axis_name))
      loss = loss + spec.dragan * dragan
      aux['dragan_penalty'] = dragan
  aux['d_loss'] = loss  # what D minimises, penalties included.
  aux['d_real'] = _readout(spec, real_logits)
  aux['d_fake'] = _readout(spec, fake_logits)
  return loss, (d_batch_stats, aux)


def _readout(spec: GANSpec, logits: Array) -> Array:
  """Mean D output: a probability for sigmoid losses, the raw score otherwise."""
  values = jax.nn.sigmoid(logits) if spec.loss.probabilistic else logits
  return jnp.mean(values)


def _pmean(tree: PyTree, axis_name: str | None) -> PyTree:
  return tree if axis_name is None else jax.lax.pmean(tree, axis_name)


def _clip(spec: GANSpec, d_params: PyTree) -> PyTree:
  if spec.weight_clip > 0:
    return losses_lib.clip_weights(d_params, spec.weight_clip)
  return d_params


# ---------------------------------------------------------------------------
# One D update and one G update.
# ---------------------------------------------------------------------------


def _d_grads(spec: GANSpec, state: GANState, real: Array, real_labels: Array | None,
             key: Array, axis_name: str | None, *, through_g: bool = False):
  """(grad of D's objective w.r.t. d_params (this device's), D's new batch_stats, aux).

  `through_g`: keep G's samples differentiable w.r.t. state.g_params, for
  consensus optimisation, which differentiates |grad_D L_D|^2 w.r.t. G too.
  """
  k_z, k_y, k_g, k_d = jax.random.split(key, 4)
  n = real.shape[0]
  z = _latents(spec, k_z, n, axis_name)
  fake_labels = _fake_labels(spec, k_y, n, axis_name)
  # G's BatchNorm statistics are updated by the G step only.
  fake, _ = _apply(spec.generator, state.g_params, state.g_batch_stats, z,
                   fake_labels, k_g, axis_name)
  if not through_g:
    fake = jax.lax.stop_gradient(fake)
  grad_fn = jax.grad(_d_objective, argnums=1, has_aux=True)
  grads, (d_batch_stats, aux) = grad_fn(spec, state.d_params, state.d_batch_stats,
                                        real, real_labels, fake, fake_labels, k_d,
                                        state.step, axis_name)
  return grads, d_batch_stats, aux


def _d_update(spec: GANSpec, state: GANState, real: Array, real_labels: Array | None,
              key: Array, axis_name: str | None) -> tuple[GANState, dict[str, Array]]:
  grads, d_batch_stats, aux = _d_grads(spec, state, real, real_labels, key, axis_name)
  return _d_apply(spec, state, grads, d_batch_stats, aux, axis_name)


def _d_apply(spec: GANSpec, state: GANState, grads: PyTree, d_batch_stats: PyTree,
             aux: dict[str, Array], axis_name: str | None):
  """D's optimizer step with `grads` from state.d_params (then weight clipping)."""
  grads = _pmean(grads, axis_name)
  updates, d_opt_state = spec.d_tx.update(grads, state.d_opt_state, state.d_params)
  d_params = _clip(spec, optax.apply_updates(state.d_params, updates))
  aux['d_grad_norm'] = optax.tree.norm(grads)
  return state.replace(d_params=d_params, d_opt_state=d_opt_state,
                       d_batch_stats=d_batch_stats), aux


def _lookahead_d_params(spec: GANSpec, g_params: PyTree, g_batch_stats: PyTree,
                        d_params: PyTree, d_opt_state: PyTree, d_batch_stats: PyTree,
                        real: Array, real_labels: Array | None, key: Array,
                        step: Array, axis_name: str | None) -> PyTree:
  """D's parameters after `spec.unroll_steps` optimizer updates (Metz et al. 2016, eq. 5).

      theta_D^{k+1} = theta_D^k + eta^k(theta_D^k, d f(theta_G, theta_D^k) / d theta_D^k)

  The updates see fresh noise each step and are functions of G's parameters, so
  differentiating the result w.r.t. `g_params` is the exact unrolled gradient.
  """
  n = real.shape[0]
  keys = jax.random.split(key, spec.unroll_steps)

  def draw_fakes(k):
    k_z, k_y, k_g, _ = jax.random.split(k, 4)
    z = _latents(spec, k_z, n, axis_name)
    fake_labels = _fake_labels(spec, k_y, n, axis_name)
    fake, _ = _apply(spec.generator, g_params, g_batch_stats, z, fake_labels, k_g,
                     axis_name)
    return fake, fake_labels

  def one_update(carry, k, fake, fake_labels):
    params, opt_state = carry
    k_d = jax.random.split(k, 4)[3]
    grads, _ = jax.grad(_d_objective, argnums=1, has_aux=True)(
        spec, params, d_batch_stats, real, real_labels, fake, fake_labels, k_d,
        step, axis_name)
    grads = _pmean(grads, axis_name)
    updates, opt_state = spec.d_tx.update(grads, opt_state, params)
    return (_clip(spec, optax.apply_updates(params, updates)), opt_state), None

  if spec.unroll_g_once:
    # G's parameters are fixed inside the lookahead, so its K batches are drawn up
    # front and G runs once, vmapped over them (vmap keeps each batch's BatchNorm
    # statistics its own); the scan then carries D alone. The draws are those of
    # the K-pass loop below, key for key, so both give the same gradients.
    if g_batch_stats:
      fakes, fake_labels = jax.vmap(draw_fakes)(keys)
    else:
      # No batch statistics: one G call on the K n latents (XLA's CPU dot is far
      # faster on one (K n, d) matrix than batched over K). G's dropout masks, if
      # any, are then drawn once for the K n batch (the first step's key).
      k_zs, k_ys, k_gs, _ = jnp.moveaxis(jax.vmap(lambda k: jax.random.split(k, 4))(keys), 1, 0)
      z = jax.vmap(lambda k: _latents(spec, k, n, axis_name))(k_zs)
      fake_labels = (None if not spec.conditional else
                     jax.vmap(lambda k: _fake_labels(spec, k, n, axis_name))(k_ys))
      flat = lambda a: None if a is None else a.reshape((-1,) + a.shape[2:])
      fake, _ = _apply(spec.generator, g_params, g_batch_stats, flat(z), flat(fake_labels),
                       k_gs[0], axis_name)
      fakes = fake.reshape(z.shape[:2] + fake.shape[1:])
    if not spec.unroll_exact:
      fakes = jax.lax.stop_gradient(fakes)  # first order: no G backward through D's steps
    step_fn = lambda carry, xs: one_update(carry, *xs)
    xs = (keys, fakes, fake_labels)
  else:  # the reference: G re-run at each of the K steps.
    step_fn = lambda carry, k: one_update(carry, k, *draw_fakes(k))
    xs = keys
  if spec.unroll_remat:
    step_fn = jax.checkpoint(step_fn)
  (params, _), _ = jax.lax.scan(step_fn, (d_params, d_opt_state), xs)
  return params


def _g_objective(g_params: PyTree, spec: GANSpec, state: GANState, real: Array,
                 real_labels: Array | None, key: Array, axis_name: str | None):
  k_z, k_y, k_g, k_d, k_unroll = jax.random.split(key, 5)
  n = real.shape[0]
  z = _latents(spec, k_z, n, axis_name)
  fake_labels = _fake_labels(spec, k_y, n, axis_name)
  fake, g_batch_stats = _apply(spec.generator, g_params, state.g_batch_stats, z,
                               fake_labels, k_g, axis_name)
  d_params = state.d_params
  if spec.unroll_steps > 0:
    d_params = _lookahead_d_params(spec, g_params, state.g_batch_stats, d_params,
                                   state.d_opt_state, state.d_batch_stats, real,
                                   real_labels, k_unroll, state.step, axis_name)
    if not spec.unroll_exact:
      d_params = jax.lax.stop_gradient(d_params)
  if spec.instance_noise > 0:
    fake = losses_lib.add_instance_noise(
        jax.random.fold_in(k_d, 1), fake, _instance_noise_std(spec, state.step),
        normal=_global_sampler(jax.random.normal, axis_name))
  fake_logits, _ = _apply(spec.discriminator, d_params, state.d_batch_stats, fake,
                          fake_labels, k_d, axis_name)
  real_logits = None
  if spec.loss.g_needs_real:  # only losses that read D(real) pay for it.
    if spec.instance_noise > 0:
      real = losses_lib.add_instance_noise(
          jax.random.fold_in(k_d, 2), real, _instance_noise_std(spec, state.step),
          normal=_global_sampler(jax.random.normal, axis_name))
    real_logits, _ = _apply(spec.discriminator, d_params, state.d_batch_stats, real,
                            real_labels, jax.random.fold_in(k_d, 3), axis_name)
  loss = spec.loss.generator_loss(real_logits, fake_logits)
  return loss, (g_batch_stats, {'g_loss': loss})


def _g_grads(spec: GANSpec, state: GANState, real: Array, real_labels: Array | None,
             key: Array, axis_name: str | None):
  """(grad of G's loss w.r.t. g_params (this device's), G's new batch_stats, aux)."""
  grads, (g_batch_stats, aux) = jax.grad(_g_objective, has_aux=True)(
      state.g_params, spec, state, real, real_labels, key, axis_name)
  return grads, g_batch_stats, aux


def _g_update(spec: GANSpec, state: GANState, real: Array, real_labels: Array | None,
              key: Array, axis_name: str | None) -> tuple[GANState, dict[str, Array]]:
  grads, g_batch_stats, aux = _g_grads(spec, state, real, real_labels, key, axis_name)
  return _g_apply(spec, state, grads, g_batch_stats, aux, axis_name)


def _g_apply(spec: GANSpec, state: GANState, grads: PyTree, g_batch_stats: PyTree,
             aux: dict[str, Array], axis_name: str | None):
  """G's optimizer step with `grads` from state.g_params."""
  grads = _pmean(grads, axis_name)
  updates, g_opt_state = spec.g_tx.update(grads, state.g_opt_state, state.g_params)
  g_params = optax.apply_updates(state.g_params, updates)
  aux['g_grad_norm'] = optax.tree.norm(grads)
  return state.replace(g_params=g_params, g_opt_state=g_opt_state,
                       g_batch_stats=g_batch_stats), aux


def _game_update(spec: GANSpec, state: GANState, real: Array, real_labels: Array | None,
                 d_key: Array, g_key: Array, axis_name: str | None):
  """Both players' update by a game method that targets non-convergence.

  With v(theta) = (-grad_G L_G, -grad_D L_D) the simultaneous field and T the
  players' optimizers (theta <- theta + T(v)):

  * 'extragradient' (Korpelevich 1976; Gidel et al. 2019, arXiv:1802.10551):
    an extrapolation half-step theta' = theta + T(v(theta)) for both players,
    whose optimizer state is discarded, then theta <- theta + T(v(theta')),
    the update from the current point with the gradient at the extrapolated one.
    For SGD: theta <- theta + h v(theta + h v(theta)); on the Dirac-GAN its
    linearisation I + hJ + h^2 J^2 contracts for 0 < h < 2.
  * 'consensus' (Mescheder et al. 2017, arXiv:1705.10461): each player
    descends its own loss plus gamma L, L = 1/2 |v|^2 of the joint field,
    i.e. v <- v - gamma grad L = v - gamma J^T v; the second derivatives flow
    through both players (G's samples stay differentiable in D's gradient).

  The optimistic method is an optimizer (config.optim.*.name = 'optimistic',
  optax.optimistic_gradient_descent) and runs through the plain step.
  """
  if spec.game == 'extragradient':
    grads_d, _, _ = _d_grads(spec, state, real, real_labels, jax.random.fold_in(d_key, 1),
                             axis_name)
    grads_g, _, _ = _g_grads(spec, state, real, real_labels, jax.random.fold_in(g_key, 1),
                             axis_name)
    half, _ = _d_apply(spec, state, grads_d, state.d_batch_stats, {}, axis_name)
    half, _ = _g_apply(spec, half, grads_g, state.g_batch_stats, {}, axis_name)
    half = half.replace(d_opt_state=state.d_opt_state, g_opt_state=state.g_opt_state)
    grads_d, d_batch_stats, d_aux = _d_grads(spec, half, real, real_labels, d_key, axis_name)
    grads_g, g_batch_stats, g_aux = _g_grads(spec, half, real, real_labels, g_key, axis_name)
  else:  # consensus
    def half_squared_field(g_params, d_params):
      at = state.replace(g_params=g_params, d_params=d_params)
      gd, d_stats, d_aux = _d_grads(spec, at, real, real_labels, d_key, axis_name,
                                    through_g=True)
      gg, g_stats, g_aux = _g_grads(spec, at, real, real_labels, g_key, axis_name)
      gd, gg = _pmean(gd, axis_name), _pmean(gg, axis_name)
      sq = 0.5 * (optax.tree.norm(gd, squared=True) + optax.tree.norm(gg, squared=True))
      return sq, (sq, gd, gg, d_stats, g_stats, d_aux, g_aux)
    (pen_g, pen_d), (penalty, grads_d, grads_g, d_batch_stats, g_batch_stats, d_aux,
                     g_aux) = jax.grad(half_squared_field, argnums=(0, 1), has_aux=True)(
                         state.g_params, state.d_params)
    gamma = spec.consensus_gamma
    grads_d = jax.tree_util.tree_map(lambda a, b: a + gamma * b, grads_d, pen_d)
    grads_g = jax.tree_util.tree_map(lambda a, b: a + gamma * b, grads_g, pen_g)
    d_aux['consensus_penalty'] = penalty
  new, d_aux = _d_apply(spec, state, grads_d, d_batch_stats, d_aux, axis_name)
  new, g_aux = _g_apply(spec, new, grads_g, g_batch_stats, g_aux, axis_name)
  return new, d_aux, g_aux


# ---------------------------------------------------------------------------
# The step.
# ---------------------------------------------------------------------------


def _split_micro_batches(spec: GANSpec, batch: dict[str, Array]):
  x = batch['x']
  if x.shape[0] % spec.d_steps:
    raise ValueError(f'the batch of {x.shape[0]} examples cannot be split into '
                     f'config.d_steps={spec.d_steps} micro-batches.')
  micro = x.shape[0] // spec.d_steps
  xs = x.reshape((spec.d_steps, micro) + x.shape[1:])
  labels = batch.get('label')
  if spec.conditional:
    if labels is None:
      raise ValueError('a conditional GAN needs labels: the batch has no "label".')
    labels = labels.reshape((spec.d_steps, micro))
  else:
    labels = [None] * spec.d_steps
  return xs, labels


def train_step(state: GANState, batch: dict[str, Array], *, spec: GANSpec,
               axis_name: str | None = None) -> tuple[GANState, dict[str, Array]]:
  """One generator update and `spec.d_steps` discriminator updates.

  Args:
    state: the current `GANState`.
    batch: {'x': (d_steps * B, ...) real examples, 'label': (d_steps * B,) ints}
      (labels only for conditional GANs); per device under data parallelism.
    spec: the static `GANSpec` (bind with functools.partial before jit).
    axis_name: the device axis to average gradients and metrics over, or None.

  Returns:
    (new state, metrics) with scalar metrics averaged over devices.
  """
  key = jax.random.fold_in(state.rng, state.step)
  xs, labels = _split_micro_batches(spec, batch)
  d_keys = jax.random.split(jax.random.fold_in(key, 0), spec.d_steps)
  g_key = jax.random.fold_in(key, 1)
  last_real, last_labels = xs[-1], labels[-1]

  def d_phase(s):
    aux = {}
    for i in range(spec.d_steps):
      s, aux = _d_update(spec, s, xs[i], labels[i], d_keys[i], axis_name)
    return s, aux

  def g_phase(s):
    # freeze_g: G's gradient is still taken (g_loss / g_grad_norm report what G
    # would follow; jit drops it when those metrics are unused) but not applied,
    # so G's params, optimizer state, batch statistics and EMA stay as they are.
    new, aux = _g_update(spec, s, last_real, last_labels, g_key, axis_name)
    return (s if spec.freeze_g else new), aux

  if spec.game != 'gd':  # extragradient / consensus: see _game_update.
    state, d_aux, g_aux = _game_update(spec, state, xs[0], labels[0], d_keys[0],
                                       g_key, axis_name)
  elif spec.update_order == 'd_first':
    state, d_aux = d_phase(state)
    state, g_aux = g_phase(state)
  elif spec.update_order == 'g_first':
    state, g_aux = g_phase(state)
    state, d_aux = d_phase(state)
  else:  # simultaneous: both gradients at the same (theta_G, theta_D).
    new_d, d_aux = _d_update(spec, state, xs[0], labels[0], d_keys[0], axis_name)
    new_g, g_aux = g_phase(state)
    state = new_g.replace(d_params=new_d.d_params, d_opt_state=new_d.d_opt_state,
                          d_batch_stats=new_d.d_batch_stats)

  ema_params = state.g_params
  if spec.freeze_g:
    ema_params = state.ema_params
  elif spec.ema_decay > 0:
    ema_params = jax.tree_util.tree_map(
        lambda e, p: spec.ema_decay * e + (1.0 - spec.ema_decay) * p,
        state.ema_params, state.g_params)
  state = state.replace(step=state.step + 1, ema_params=ema_params)

  metrics = {**d_aux, **g_aux,
             'g_param_norm': optax.tree.norm(state.g_params),
             'd_param_norm': optax.tree.norm(state.d_params)}
  return state, _pmean(metrics, axis_name)


def init_state(spec: GANSpec, rng: Array, data_shape: tuple[int, ...]) -> GANState:
  """Initialises both players' parameters, batch statistics and optimizer states.

  One compiled program (inside another jit or vmap it is simply traced): run op
  by op, a CGAN MLP's init took 3.9 s, compiled 1.6 s. The MLP inits are
  bitwise those of the op-by-op run; a DCGAN's or BatchNorm G's differ in the
  last ulp (XLA fuses the init's scale).
  """
  return jax.jit(functools.partial(_init_state, spec, data_shape=tuple(data_shape)))(rng)


def _init_state(spec: GANSpec, rng: Array, data_shape: tuple[int, ...]) -> GANState:
  k_g, k_d, k_step = jax.random.split(rng, 3)
  n = 2 * max(1, getattr(spec.discriminator, 'pack', 1))
  z = jnp.zeros((n, spec.latent_dim), jnp.float32)
  x = jnp.zeros((n,) + tuple(data_shape), jnp.float32)
  labels = jnp.zeros((n,), jnp.int32) if spec.conditional else None
  g_vars = spec.generator.init({'params': k_g, 'dropout': k_g}, z, labels, train=False)
  d_vars = spec.discriminator.init({'params': k_d, 'dropout': k_d}, x, labels,
                                   train=False)
  g_params, d_params = g_vars['params'], _clip(spec, d_vars['params'])
  return GANState(
      step=jnp.zeros((), jnp.int32),
      g_params=g_params,
      d_params=d_params,
      g_opt_state=spec.g_tx.init(g_params),
      d_opt_state=spec.d_tx.init(d_params),
      g_batch_stats=g_vars.get('batch_stats', {}),
      d_batch_stats=d_vars.get('batch_stats', {}),
      ema_params=g_params,
      rng=k_step)
