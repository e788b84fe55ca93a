"""From an experiment config to the static `GANSpec`: models, optimizers, loss, options.

This is where config fields are checked; every error names the field and the
valid choices, so a typo fails before anything is compiled or written.
"""

from __future__ import annotations

import math

import ml_collections
import optax

from gan_jax import losses as losses_lib
from gan_jax import models as models_lib
from gan_jax import steps

OPTIMIZERS = ('adam', 'rmsprop', 'sgd', 'momentum', 'optimistic', 'optimistic_adam')


def make_optimizer(opt_config: ml_collections.ConfigDict, field: str, *,
                   differentiable: bool = False) -> optax.GradientTransformation:
  """An optax optimizer from `{name, lr, b1, b2, momentum[, decay_steps, final_lr_fraction]}`.

  `differentiable=True` is for an optimizer that the unrolled GAN differentiates
  through: Adam's sqrt(v) has an infinite derivative at v = 0, so eps_root > 0.
  """
  name = opt_config.get('name', 'adam')
  lr = opt_config.get('lr', 2e-4)
  if not (lr > 0 and math.isfinite(lr)):
    raise ValueError(f'{field}.lr={lr} must be positive and finite.')
  decay_steps = int(opt_config.get('decay_steps', 0))
  if decay_steps < 0:
    raise ValueError(f'{field}.decay_steps={decay_steps} must be >= 0 (0 = constant lr).')
  if decay_steps:
    # Cosine decay from lr to final_lr_fraction * lr over decay_steps updates.
    lr = optax.cosine_decay_schedule(lr, decay_steps,
                                     alpha=float(opt_config.get('final_lr_fraction', 0.0)))
  if name == 'adam':
    return optax.adam(lr, b1=opt_config.get('b1', 0.5), b2=opt_config.get('b2', 0.999),
                      eps_root=1e-12 if differentiable else 0.0)
  if name == 'rmsprop':
    # optax's rmsprop puts eps inside the sqrt, so it is differentiable as is.
    return optax.rmsprop(lr)
  if name == 'sgd':
    return optax.sgd(lr)
  if name == 'momentum':
    return optax.sgd(lr, momentum=opt_config.get('momentum', 0.9))
  if name == 'optimistic':
    # Optimistic gradient descent (Daskalakis et al. 2018; Mokhtari et al. 2019):
    # theta <- theta - lr ((1 + beta) g_t - beta g_{t-1}), beta = `optimism`.
    return optax.optimistic_gradient_descent(lr, alpha=1.0,
                                             beta=float(opt_config.get('optimism', 1.0)))
  if name == 'optimistic_adam':
    # Optimistic Adam (Daskalakis et al. 2018), optax's default optimism (= lr).
    return optax.optimistic_adam(lr, b1=opt_config.get('b1', 0.5),
                                 b2=opt_config.get('b2', 0.999),
                                 eps_root=1e-12 if differentiable else 0.0)
  raise ValueError(f'{field}.name={name!r} is not a known optimizer; valid choices: '
                   f'{", ".join(OPTIMIZERS)}.')


def _penalty(config, field: str, default: float) -> float:
  value = config.penalty.get(field)
  return default if value is None else float(value)


# The step counter (GANState.step) and the schedules' step counts are int32 in
# the compiled step: a larger count would overflow there, not here.
MAX_STEPS = 2**31 - 1

# Numeric fields with a valid interval: (path, low, high, low_open, high_open);
# None = unbounded. Checked before any model is built.
_RANGES = (
    ('label_smoothing', 0.0, 1.0, False, True),
    ('label_smoothing_fake', 0.0, 1.0, False, True),
    ('label_noise', 0.0, None, False, False),
    ('ema_decay', 0.0, 1.0, False, True),
    ('game.consensus_gamma', 0.0, None, False, False),
    ('optim.g.optimism', 0.0, None, False, False),
    ('optim.d.optimism', 0.0, None, False, False),
    ('instance_noise.std', 0.0, None, False, False),
    ('penalty.gradient', 0.0, None, False, False),
    ('penalty.r1', 0.0, None, False, False),
    ('penalty.r2', 0.0, None, False, False),
    ('penalty.dragan', 0.0, None, False, False),
    ('penalty.weight_clip', 0.0, None, False, False),
    ('optim.g.b1', 0.0, 1.0, False, True),
    ('optim.g.b2', 0.0, 1.0, False, True),
    ('optim.d.b1', 0.0, 1.0, False, True),
    ('optim.d.b2', 0.0, 1.0, False, True),
    ('model.latent_dim', 0, None, True, False),
    ('eval.num_samples', 0, None, True, False),
    ('eval.train_classifier_epochs', 0, 1000, False, False),
    ('eval.drs.gamma_percentile', 0.0, 100.0, False, False),
    ('eval.drs.epsilon', 0.0, None, True, False),
    ('train.sample_every', 0, MAX_STEPS, False, False),
    ('instance_noise.decay_steps', 0, MAX_STEPS, False, False),
    ('optim.g.momentum', 0.0, 1.0, False, True),
    ('optim.d.momentum', 0.0, 1.0, False, True),
    ('optim.g.decay_steps', 0, MAX_STEPS, False, False),
    ('optim.d.decay_steps', 0, MAX_STEPS, False, False),
    ('optim.g.final_lr_fraction', 0.0, 1.0, False, False),
    ('optim.d.final_lr_fraction', 0.0, 1.0, False, False),
    ('train.num_steps', 0, MAX_STEPS, True, False),
    ('model.base_width', 0, None, True, False),
    ('model.d_base_width', 0, None, True, False),
)


def _get(config, path: str):
  node = config
  for key in path.split('.'):
    if node is None or not hasattr(node, 'get'):
      return None
    node = node.get(key)
  return node


def check_ranges(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the first numeric field outside its valid interval."""
  for path, low, high, low_open, high_open in _RANGES:
    value = _get(config, path)
    if value is None:
      continue
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
          and math.isfinite(value))  # nan and inf are never a valid setting
    if ok and low is not None:
      ok = value > low if low_open else value >= low
    if ok and high is not None:
      ok = value < high if high_open else value <= high
    if not ok:
      interval = (f'{"(" if low_open else "["}{"-inf" if low is None else low}, '
                  f'{"inf" if high is None else high}{")" if high_open or high is None else "]"}')
      raise ValueError(f'config.{path}={value!r} must lie in {interval}.')
  for path in ('model.g_widths', 'model.d_widths'):
    widths = _get(config, path)
    if widths is not None and not (
        isinstance(widths, (tuple, list)) and
        all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in widths)):
      raise ValueError(f'config.{path}={widths!r} must be a tuple of positive integers, '
                       'e.g. (128, 128).')
  for path in ('model.d_dropout', 'model.g_dropout'):
    rates = _get(config, path)
    if rates is None:
      continue
    rates = rates if isinstance(rates, (tuple, list)) else (rates,)
    if not all(isinstance(r, (int, float)) and not isinstance(r, bool) and 0 <= r < 1
               for r in rates):
      raise ValueError(f'config.{path}={_get(config, path)!r}: dropout rates must lie in '
                       '[0, 1).')


def build_spec(config: ml_collections.ConfigDict, data_info, *,
               bn_axis_name: str | None = None) -> steps.GANSpec:
  """The GANSpec for `config` on a dataset described by `data_info`.

  `bn_axis_name`: the device axis BatchNorm averages its statistics over (the
  loop passes its mesh axis when it shards the batch); None on one device.
  """
  check_ranges(config)
  loss = losses_lib.get_loss(config.loss)
  conditional = bool(config.model.get('conditional', False))
  if conditional and data_info.num_classes < 2:
    raise ValueError(
        f'config.model.conditional=True but config.data.name={config.data.name!r} '
        f'has {data_info.num_classes} classes; a conditional GAN needs labels.')
  num_classes = data_info.num_classes if conditional else 0
  generator, discriminator = models_lib.build_models(config.model, data_info.shape,
                                                     num_classes, bn_axis_name=bn_axis_name)
  unroll = config.get('unroll', ml_collections.ConfigDict())
  unroll_steps = int(unroll.get('steps', 0))
  unroll_exact = bool(unroll.get('exact', True))
  instance_noise = config.get('instance_noise', ml_collections.ConfigDict())
  game = config.get('game', ml_collections.ConfigDict())
  return steps.GANSpec(
      generator=generator,
      discriminator=discriminator,
      g_tx=make_optimizer(config.optim.g, 'config.optim.g'),
      d_tx=make_optimizer(config.optim.d, 'config.optim.d',
                          differentiable=unroll_steps > 0 and unroll_exact),
      loss=loss,
      latent_dim=int(config.model.latent_dim),
      num_classes=num_classes,
      latent_distribution=config.model.get('latent_distribution', 'normal'),
      d_steps=int(config.get('d_steps', 1)),
      update_order=config.get('update_order', 'd_first'),
      gradient_penalty=_penalty(config, 'gradient', loss.default_gradient_penalty),
      r1_gamma=_penalty(config, 'r1', 0.0),
      r2_gamma=_penalty(config, 'r2', 0.0),
      dragan=_penalty(config, 'dragan', 0.0),
      weight_clip=_penalty(config, 'weight_clip', loss.default_weight_clip),
      label_smoothing=float(config.get('label_smoothing', 0.0)),
      label_smoothing_fake=float(config.get('label_smoothing_fake', 0.0)),
      label_noise=float(config.get('label_noise', 0.0)),
      instance_noise=float(instance_noise.get('std', 0.0)),
      instance_noise_decay_steps=int(instance_noise.get('decay_steps', 0)),
      matching_aware=bool(config.get('matching_aware', False)),
      unroll_steps=unroll_steps,
      unroll_exact=unroll_exact,
      unroll_remat=bool(unroll.get('remat', False)),
      unroll_g_once=bool(unroll.get('g_once', True)),
      ema_decay=float(config.get('ema_decay', 0.0)),
      game=game.get('method', 'gd'),
      consensus_gamma=float(game.get('consensus_gamma', 0.0)),
      freeze_g=bool(config.train.get('freeze_g', False)),
  )
