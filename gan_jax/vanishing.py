"""Vanishing gradients, measured: Arjovsky & Bottou 2017 ("Towards principled methods
for training GANs", arXiv:1701.04862), Figures 1-3, with the project's step and losses.

    python -m gan_jax.vanishing --config experiments/vanishing_gradients.py --workdir runs/vanishing
    python -m gan_jax.vanishing --config experiments/vanishing_gradients.py:quick --workdir /tmp/vanishing_quick

The protocol (`config.vanishing`):
  1. Train the config's GAN for every seed (config.seed + i, i < num_seeds; the
     seeds vmapped in one program, real data drawn on the device) and checkpoint
     it at each budget in `budgets` (workdir/checkpoints/budget_<n>/).
  2. From each checkpoint, freeze G (`config.train.freeze_g=True`: the same
     `steps.train_step`, which then computes G's gradient but never applies it)
     and train a fresh D, re-initialised from scratch, for `d_steps` updates.
     Before the first and after every `log_every` updates a probe (D in
     inference mode, a fixed probe batch of `probe_batch` reals and latents per
     seed) records the norm of G's gradient under four G losses, all computed on
     the same D logits l = D(G_theta(z)) with the project's own `gan_jax.losses`
     and none applied:

       minimax         L = E log(1 - sigmoid(l))   dL/dl = -sigmoid(l)      -> 0 as l -> -inf
       non-saturating  L = -E log sigmoid(l)       dL/dl = -(1 - sigmoid(l)) -> -1
       Wasserstein-GP  L = -E l                    dL/dl = -1   (G's side; D is not a critic here)
       least squares   L = 1/2 E (l - 1)^2         dL/dl = l - 1

     and grad_theta L = E[dL/dl dl/dtheta], so a D that confidently rejects the
     fakes (sigmoid(l) -> 0) silences the minimax loss only (Arjovsky & Bottou's
     Theorem 2.4: ||grad_theta E log(1 - D(G(z)))|| < M eps / (1 - eps) for
     ||D - D*|| < eps). The probe also records D's accuracy,
     1/2 [mean 1(l_real > 0) + mean 1(l_fake < 0)], and mean D(x), D(G(z)).
  3. The same from the same checkpoints for each remedy of the config file's
     `remedies(add)` (D-side options: label smoothing one- or two-sided,
     instance noise, R1...): one table of G's gradient norm after `d_steps`.

All D runs of a variant (budgets x seeds) are one vmapped program, and every
fresh D of a seed starts from the same initialisation and sees the same real
batches whatever the budget or the remedy, so rows differ only by G and the
option. Statistics over seeds of the gradient norms are taken on log10 (the
figure's axis): the tables show the geometric mean and the std of log10 in
decades.

The workdir receives config.json / config.py, checkpoints/budget_<n>/,
curves.npz (every probe of every variant, budget and seed), vanishing_gradients.png
(the paper's form: one panel per G loss, G's gradient norm on a log axis against
D's training steps, one curve per budget, mean +- std over seeds; plus D's
accuracy and mean D(G(z))) and vanishing_gradients.md (the tables). Rerunning
reuses the budget checkpoints.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import sys
import time
from typing import Any, Callable, Sequence

from gan_jax import xla_flags

if __name__ == '__main__':
  # Before JAX is imported: the dense nets ran faster without Eigen's threads
  # (xla_flags.py; the flag does not confine XLA to one core).
  xla_flags.pin_cpu_to_one_thread()

import jax  # pylint: disable=g-import-not-at-top
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan_jax import losses
from gan_jax import steps

Array = jax.Array
Sampler = Callable[[Array, int], dict[str, Array]]

# The four G losses of the figure, as the project defines them (name, label, fn).
G_LOSSES: tuple[tuple[str, str, Callable[[Array], Array]], ...] = (
    ('minimax', 'minimax  E log(1 - D(G(z)))', losses.minimax_generator_loss),
    ('non_saturating', 'non-saturating  -E log D(G(z))', losses.non_saturating_generator_loss),
    ('wasserstein_gp', 'Wasserstein-GP  -E D(G(z))', losses.wasserstein_generator_loss),
    ('least_squares', 'least squares  1/2 E (D(G(z)) - 1)^2', losses.least_squares_generator_loss),
)
G_LOSS_NAMES = tuple(name for name, _, _ in G_LOSSES)


# ---------------------------------------------------------------------------
# The measurements (pure).
# ---------------------------------------------------------------------------


def g_gradient_norms(spec: steps.GANSpec, g_params, g_batch_stats, d_params, d_batch_stats,
                     z: Array) -> dict[str, Array]:
  """||grad_theta L(D(G_theta(z)))||_2 for every G loss of `G_LOSSES`, none applied.

  Both nets in inference mode. One forward pass and one pullback per loss:
  grad_theta L = (dl/dtheta)^T dL/dl, with dL/dl from the loss itself.
  """
  def logits_of(params):
    return steps.discriminate(spec, d_params, d_batch_stats,
                              steps.generate(spec, params, g_batch_stats, z))

  logits, pullback = jax.vjp(logits_of, g_params)
  out = {}
  for name, _, loss_fn in G_LOSSES:
    (grads,) = pullback(jax.grad(loss_fn)(logits))
    out[name] = jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in jax.tree_util.tree_leaves(grads)))
  return out


def d_accuracy(real_logits: Array, fake_logits: Array) -> Array:
  """1/2 [mean 1(l_real > 0) + mean 1(l_fake < 0)]: D's accuracy at threshold 1/2."""
  return 0.5 * (jnp.mean((real_logits > 0).astype(jnp.float32)) +
                jnp.mean((fake_logits < 0).astype(jnp.float32)))


def probe(spec: steps.GANSpec, state: steps.GANState, real: Array, z: Array) -> dict[str, Array]:
  """G's gradient norms (keys 'grad/<loss>'), D's accuracy, mean D(x) and D(G(z)).

  D(.) = sigmoid(logit) (D is trained with a cross-entropy loss here).
  """
  norms = g_gradient_norms(spec, state.g_params, state.g_batch_stats, state.d_params,
                           state.d_batch_stats, z)
  fake = steps.generate(spec, state.g_params, state.g_batch_stats, z)
  real_logits = steps.discriminate(spec, state.d_params, state.d_batch_stats, real)
  fake_logits = steps.discriminate(spec, state.d_params, state.d_batch_stats, fake)
  return {**{f'grad/{k}': v for k, v in norms.items()},
          'd_accuracy': d_accuracy(real_logits, fake_logits),
          'd_real': jnp.mean(jax.nn.sigmoid(real_logits)),
          'd_fake': jnp.mean(jax.nn.sigmoid(fake_logits))}


def image_sampler(images: Array) -> Sampler:
  """(key, n) -> {'x': n images drawn uniformly with replacement}, on the device."""
  def sample(key: Array, n: int) -> dict[str, Array]:
    return {'x': images[jax.random.randint(key, (n,), 0, images.shape[0])]}
  return sample


def fresh_discriminator(spec: steps.GANSpec, state: steps.GANState, key: Array,
                        data_shape: tuple[int, ...]) -> steps.GANState:
  """`state` with D re-initialised from `key` (params, batch stats, optimizer state),
  the step counter at 0 and the step rng from `key`; G (params, optimizer state,
  batch statistics, EMA) untouched."""
  new = steps.init_state(spec, key, data_shape)
  return state.replace(step=new.step, d_params=new.d_params, d_opt_state=new.d_opt_state,
                       d_batch_stats=new.d_batch_stats, rng=new.rng)


def train_d_and_probe(state: steps.GANState, data_key: Array, probe_key: Array, *,
                      spec: steps.GANSpec, sampler: Sampler, batch_size: int,
                      num_steps: int, log_every: int, probe_batch: int
                      ) -> tuple[steps.GANState, dict[str, Array]]:
  """`num_steps` train steps of a frozen-G `spec`, probed at 0, log_every, 2 log_every, ...

  The batch of step t is `sampler(fold_in(data_key, t), d_steps * batch_size)`;
  the probe batch (reals and z) is drawn once from `probe_key`. Returns the final
  state and the probes stacked over time: (num_steps // log_every + 1,) each.
  """
  if not spec.freeze_g:
    raise ValueError('train_d_and_probe trains D against a fixed G: the spec needs '
                     'freeze_g=True (config.train.freeze_g).')
  k_real, k_z = jax.random.split(probe_key)
  real = sampler(k_real, probe_batch)['x']
  z = steps.sample_latents(spec, k_z, probe_batch)
  n = spec.d_steps * batch_size

  def one_step(s, _):
    s, _ = steps.train_step(s, sampler(jax.random.fold_in(data_key, s.step), n), spec=spec)
    return s, None

  def chunk(s, _):
    s, _ = jax.lax.scan(one_step, s, None, length=log_every)
    return s, probe(spec, s, real, z)

  first = probe(spec, state, real, z)
  state, later = jax.lax.scan(chunk, state, None, length=num_steps // log_every)
  return state, jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a[None], b]),
                                       first, later)


# ---------------------------------------------------------------------------
# Statistics and tables (pure: arrays in, numbers and text out).
# ---------------------------------------------------------------------------


def log_stats(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(mean, std with ddof = 1) of log10(values) over axis 0 (seeds); std 0 for one seed."""
  logs = np.log10(np.maximum(np.asarray(values, np.float64), np.finfo(np.float64).tiny))
  std = logs.std(axis=0, ddof=1) if logs.shape[0] > 1 else np.zeros(logs.shape[1:])
  return logs.mean(axis=0), std


def mean_std(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(mean, std with ddof = 1) over axis 0; std 0 for one seed."""
  v = np.asarray(values, np.float64)
  return v.mean(axis=0), (v.std(axis=0, ddof=1) if v.shape[0] > 1 else np.zeros(v.shape[1:]))


def _fmt_log(mean_log: float, std_log: float) -> str:
  return f'{10.0 ** mean_log:.2e} (±{std_log:.2f})'


def _fmt(mean: float, std: float, digits: int = 3) -> str:
  return f'{mean:.{digits}f} ± {std:.{digits}f}'


def decades_fallen(curves: np.ndarray, at: int) -> np.ndarray:
  """Per seed: log10(norm at probe 0 / norm at probe `at`) (positive = fell)."""
  c = np.maximum(np.asarray(curves, np.float64), np.finfo(np.float64).tiny)
  return np.log10(c[:, 0]) - np.log10(c[:, at])


def main_table(result: dict[int, dict[str, np.ndarray]], d_updates: np.ndarray,
               table_steps: Sequence[int]) -> str:
  """Markdown: per budget and D step, each G loss's norm, D's accuracy and mean D(G(z)).

  `result[budget][metric]` is (seeds, probes); `d_updates` the D updates of each probe.
  """
  header = ('| G budget (steps) | D updates | ' +
            ' | '.join(f'‖∇G‖ {name}' for name in G_LOSS_NAMES) +
            ' | D accuracy | mean D(G(z)) |')
  lines = [header, '|' + '---|' * (4 + len(G_LOSS_NAMES))]
  for budget, metrics in result.items():
    for t in table_steps:
      i = int(np.searchsorted(d_updates, t))
      cells = []
      for name in G_LOSS_NAMES:
        m, s = log_stats(metrics[f'grad/{name}'][:, i:i + 1])
        cells.append(_fmt_log(m[0], s[0]))
      acc, acc_s = mean_std(metrics['d_accuracy'][:, i])
      fake, fake_s = mean_std(metrics['d_fake'][:, i])
      lines.append(f'| {budget} | {t} | ' + ' | '.join(cells) +
                   f' | {_fmt(float(acc), float(acc_s))} | {float(fake):.2e} ± {float(fake_s):.1e} |')
  return '\n'.join(lines)


def drop_table(result: dict[int, dict[str, np.ndarray]]) -> str:
  """Markdown: per budget and G loss, decades fallen from D's start to its end, and
  the lowest point of the mean curve relative to its start (min_t mean(log10 norm_t / norm_0))."""
  lines = ['| G budget (steps) | ' + ' | '.join(
      f'{name}: decades fallen (end) / lowest ratio' for name in G_LOSS_NAMES) + ' |',
           '|' + '---|' * (1 + len(G_LOSS_NAMES))]
  for budget, metrics in result.items():
    cells = []
    for name in G_LOSS_NAMES:
      curves = metrics[f'grad/{name}']
      fallen = decades_fallen(curves, -1)
      m, s = mean_std(fallen[:, None])
      mean_log, _ = log_stats(curves)
      lowest = 10.0 ** float(np.min(mean_log - mean_log[0]))
      cells.append(f'{float(m[0]):+.2f} ± {float(s[0]):.2f} / {lowest:.2g}')
    lines.append(f'| {budget} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def remedy_table(results: dict[str, dict[int, dict[str, np.ndarray]]], d_steps: int) -> str:
  """Markdown: per remedy and budget, minimax and non-saturating ‖∇G‖ after `d_steps`
  D updates (and decades fallen from D's start), D's accuracy and mean D(G(z))."""
  lines = [f'| D option | G budget | minimax ‖∇G‖ after {d_steps} | minimax decades fallen | '
           f'non-saturating ‖∇G‖ after {d_steps} | non-saturating decades fallen | '
           'D accuracy | mean D(G(z)) |', '|' + '---|' * 8]
  for variant, by_budget in results.items():
    for budget, metrics in by_budget.items():
      cells = []
      for name in ('minimax', 'non_saturating'):
        curves = metrics[f'grad/{name}']
        m, s = log_stats(curves[:, -1:])
        fm, fs = mean_std(decades_fallen(curves, -1)[:, None])
        cells += [_fmt_log(m[0], s[0]), f'{float(fm[0]):+.2f} ± {float(fs[0]):.2f}']
      acc, acc_s = mean_std(metrics['d_accuracy'][:, -1])
      fake, fake_s = mean_std(metrics['d_fake'][:, -1])
      lines.append(f'| {variant} | {budget} | ' + ' | '.join(cells) +
                   f' | {_fmt(float(acc), float(acc_s))} | {float(fake):.2e} ± {float(fake_s):.1e} |')
  return '\n'.join(lines)


def targets(result: dict[int, dict[str, np.ndarray]]) -> list[str]:
  """Issue 12's targets, checked on the plain-D result: one line per budget."""
  lines = []
  for budget, metrics in result.items():
    fallen = float(np.mean(decades_fallen(metrics['grad/minimax'], -1)))
    mean_log, _ = log_stats(metrics['grad/non_saturating'])
    lowest = 10.0 ** float(np.min(mean_log - mean_log[0]))
    acc = float(np.mean(metrics['d_accuracy'][:, -1]))
    lines.append(
        f'budget {budget}: minimax fell {fallen:.2f} decades (target >= 3: '
        f'{"met" if fallen >= 3 else "NOT met"}); non-saturating lowest / start = '
        f'{lowest:.3g} (target >= 0.1: {"met" if lowest >= 0.1 else "NOT met"}); '
        f'final D accuracy {acc:.4f}.')
  return lines


# ---------------------------------------------------------------------------
# The protocol's config (checked before anything is written).
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Protocol:
  budgets: tuple[int, ...]
  num_seeds: int
  d_steps: int
  log_every: int
  probe_batch: int
  table_steps: tuple[int, ...]
  remedy_log_every: int


def _positive_int(value, field: str) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
    raise ValueError(f'config.vanishing.{field}={value!r} must be a positive integer.')
  return int(value)


def protocol(config: ml_collections.ConfigDict) -> Protocol:
  """`config.vanishing` checked; a ValueError names the field."""
  v = config.get('vanishing')
  if v is None:
    raise ValueError('the config has no `vanishing` block; see '
                     'experiments/vanishing_gradients.py.')
  budgets = v.get('budgets')
  if not isinstance(budgets, (tuple, list)) or not budgets:
    raise ValueError(f'config.vanishing.budgets={budgets!r} must be a non-empty tuple of '
                     'G training steps, e.g. (250, 1000, 4000).')
  budgets = tuple(_positive_int(b, 'budgets') for b in budgets)
  if list(budgets) != sorted(set(budgets)):
    raise ValueError(f'config.vanishing.budgets={budgets!r} must be strictly increasing.')
  d_steps = _positive_int(v.get('d_steps'), 'd_steps')
  log_every = _positive_int(v.get('log_every'), 'log_every')
  if d_steps % log_every:
    raise ValueError(f'config.vanishing.d_steps={d_steps} must be a multiple of '
                     f'config.vanishing.log_every={log_every}.')
  table_steps = tuple(int(t) for t in v.get('table_steps', (0, d_steps)))
  for t in table_steps:
    if t % log_every or not 0 <= t <= d_steps:
      raise ValueError(f'config.vanishing.table_steps={table_steps!r}: every entry must be a '
                       f'multiple of log_every={log_every} in [0, d_steps={d_steps}].')
  remedy_log_every = _positive_int(v.get('remedy_log_every', log_every), 'remedy_log_every')
  if d_steps % remedy_log_every:
    raise ValueError(f'config.vanishing.d_steps={d_steps} must be a multiple of '
                     f'config.vanishing.remedy_log_every={remedy_log_every}.')
  if int(config.get('d_steps', 1)) != 1:
    raise ValueError(f'config.d_steps={config.d_steps}: the protocol counts D updates as '
                     'train steps and needs config.d_steps=1.')
  if bool(config.model.get('conditional', False)):
    raise ValueError('config.model.conditional=True: the vanishing-gradient protocol '
                     'measures an unconditional G.')
  return Protocol(budgets, _positive_int(v.get('num_seeds'), 'num_seeds'), d_steps,
                  log_every, _positive_int(v.get('probe_batch'), 'probe_batch'), table_steps,
                  remedy_log_every)


# ---------------------------------------------------------------------------
# The runner and the CLI (all I/O is below).
# ---------------------------------------------------------------------------


def _stack(states: Sequence[Any]) -> Any:
  return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *states)


def variants_of(config_path: str, config: ml_collections.ConfigDict
                ) -> list[tuple[str, dict[str, Any]]]:
  """[(name, overrides)]: the plain D first, then the config file's remedies(add)."""
  from gan_jax import config_base  # pylint: disable=g-import-not-at-top
  from gan_jax import sweep  # pylint: disable=g-import-not-at-top
  module, _ = config_base.load_config_file(config_path)
  variants = [('plain D', {})]
  if hasattr(module, 'remedies'):
    variants += [(v.name, v.overrides) for v in sweep.expand(module.remedies, config)]
  return variants


def run(config: ml_collections.ConfigDict, workdir: str, *,
        variants: Sequence[tuple[str, dict[str, Any]]],
        log: Callable[[str], None] = print) -> dict[str, Any]:
  """Runs the protocol in `workdir` for the D `variants` (`variants_of`; the first is
  the figure's plain D); returns {'markdown', 'targets', 'results', 'd_updates', ...}."""
  from gan_jax import checkpointing  # pylint: disable=g-import-not-at-top
  from gan_jax import factory  # pylint: disable=g-import-not-at-top
  from gan_jax import input_pipeline  # pylint: disable=g-import-not-at-top
  from gan_jax import plotting  # pylint: disable=g-import-not-at-top
  from gan_jax import seeds as seeds_lib  # pylint: disable=g-import-not-at-top
  from gan_jax import sweep  # pylint: disable=g-import-not-at-top
  from gan_jax import workdir as workdir_lib  # pylint: disable=g-import-not-at-top

  start = time.perf_counter()
  p = protocol(config)
  if bool(config.train.get('freeze_g', False)):
    raise ValueError('config.train.freeze_g=True would train no G in phase 1; the '
                     'protocol sets it for the D runs itself.')
  info = input_pipeline.get_info(config.data)
  spec = factory.build_spec(config, info)
  if not variants or variants[0][1]:
    raise ValueError('the first D variant must be the plain D (no overrides).')
  d_specs = []
  for name, overrides in variants:
    d_config = sweep.apply_overrides(config, {**overrides, 'train.freeze_g': True})
    d_spec = factory.build_spec(d_config, info)
    if d_spec.generator != spec.generator or d_spec.latent_dim != spec.latent_dim:
      raise ValueError(f'remedy {name!r} changes G; a remedy may change D-side options only.')
    d_specs.append(d_spec)
  seed0 = int(config.seed)
  seeds = list(range(seed0, seed0 + p.num_seeds))
  batch_size = int(config.train.batch_size)
  images, _ = input_pipeline.load_arrays(config.data, 'train')
  sampler = image_sampler(jnp.asarray(images))
  os.makedirs(workdir, exist_ok=True)
  workdir_lib.write_config(config, workdir)

  # Phase 1: G (and its D) trained to every budget, all seeds in one program.
  states = seeds_lib.init_states(spec, seeds, info.shape)
  keys = seeds_lib.data_keys(seeds)
  chunk = functools.reduce(math.gcd, p.budgets)
  train = seeds_lib.make_train_n_steps(spec, sampler, batch_size=batch_size, num_steps=chunk)
  checkpoints: dict[int, steps.GANState] = {}
  done = 0
  t0 = time.perf_counter()
  for budget in p.budgets:
    ckpt = checkpointing.Checkpointer(os.path.join(workdir, 'checkpoints', f'budget_{budget}'),
                                      keep=1)
    try:
      restored, step = ckpt.restore(states)
      if step is not None:
        states, done = restored, budget
        log(f'budget {budget}: restored from {ckpt.directory}')
      else:
        while done < budget:
          states, _ = train(states, keys)
          done += chunk
        jax.block_until_ready(states)
        ckpt.save(budget, states)
        log(f'budget {budget}: trained ({time.perf_counter() - t0:.0f} s so far)')
    finally:
      ckpt.close()
    checkpoints[budget] = jax.tree_util.tree_map(np.asarray, states)
  g_train_s = time.perf_counter() - t0

  # Phase 2: a fresh D against each frozen G, for every variant; (budget, seed) vmapped.
  d_keys = [jax.random.fold_in(jax.random.PRNGKey(s), 12) for s in seeds]
  data_keys = [jax.random.fold_in(k, 1) for k in keys]
  probe_keys = [jax.random.fold_in(jax.random.PRNGKey(s), 13) for s in seeds]
  results: dict[str, dict[int, dict[str, np.ndarray]]] = {}
  d_updates = np.arange(0, p.d_steps + 1, p.log_every)
  timings = {}
  arrays = {'d_updates': d_updates, 'budgets': np.asarray(p.budgets), 'seeds': np.asarray(seeds)}
  for (name, _), d_spec in zip(variants, d_specs):
    t1 = time.perf_counter()
    # The plain D is probed every log_every updates (the figure); a remedy's
    # table needs its start and end only, so it is probed more sparsely.
    log_every = p.log_every if not results else p.remedy_log_every
    arrays[f'{name}/d_updates'] = np.arange(0, p.d_steps + 1, log_every)
    initial = []
    for budget in p.budgets:
      for i in range(p.num_seeds):
        state = seeds_lib.unstack(checkpoints[budget], i)
        initial.append(fresh_discriminator(d_spec, state, d_keys[i], info.shape))
    fn = jax.jit(jax.vmap(functools.partial(
        train_d_and_probe, spec=d_spec, sampler=sampler, batch_size=batch_size,
        num_steps=p.d_steps, log_every=log_every, probe_batch=p.probe_batch)))
    n_b = len(p.budgets)
    _, probes = fn(_stack(initial), jnp.stack(data_keys * n_b), jnp.stack(probe_keys * n_b))
    probes = jax.device_get(probes)
    results[name] = {budget: {k: np.asarray(v).reshape(n_b, p.num_seeds, -1)[j]
                              for k, v in probes.items()}
                     for j, budget in enumerate(p.budgets)}
    timings[name] = time.perf_counter() - t1
    log(f'D runs of {name!r}: {timings[name]:.0f} s')

  # Outputs.
  plain = results[variants[0][0]]
  for name, by_budget in results.items():
    for budget, metrics in by_budget.items():
      for k, v in metrics.items():
        arrays[f'{name}/{budget}/{k}'] = v
  np.savez(os.path.join(workdir, 'curves.npz'), **arrays)
  curves = {label: {budget: (log_stats(plain[budget][f'grad/{name}'])) for budget in p.budgets}
            for name, label, _ in G_LOSSES}
  extra = {'D accuracy': {b: mean_std(plain[b]['d_accuracy']) for b in p.budgets},
           'mean D(G(z))': {b: mean_std(plain[b]['d_fake']) for b in p.budgets}}
  figure = os.path.join(workdir, 'vanishing_gradients.png')
  plotting.gradient_norm_curves(
      d_updates, curves, extra, figure,
      title=(f'G frozen after {", ".join(map(str, p.budgets))} steps; a fresh D trained '
             f'against it (mean ± std over {p.num_seeds} seeds)'))
  wall = time.perf_counter() - start
  target_lines = targets(plain)
  text = '\n'.join([
      '# Vanishing gradients (Arjovsky & Bottou 2017, Figs. 1-3)', '',
      f'{p.num_seeds} seeds ({seeds[0]}-{seeds[-1]}); G trained with config.loss='
      f'{config.loss!r}, batch {batch_size}, to budgets {", ".join(map(str, p.budgets))} '
      f'steps; then a fresh D (config.train.freeze_g=True) for {p.d_steps} updates. '
      f'Gradient norms: geometric mean over seeds (± std of log10, in decades), on a '
      f'fixed probe batch of {p.probe_batch}. Wall time {wall:.0f} s (G training '
      f'{g_train_s:.0f} s, D runs ' +
      ', '.join(f'{k} {v:.0f} s' for k, v in timings.items()) + ').', '',
      '## G gradient norm while D trains against a fixed G', '',
      main_table(plain, d_updates, p.table_steps), '',
      '## Decades fallen from D\'s start to its end, and the lowest point of the mean curve', '',
      drop_table(plain), '',
      '## Targets (issue 12)', '', *[f'- {line}' for line in target_lines], '',
      f'## Remedies on the same checkpoints (after {p.d_steps} D updates)', '',
      remedy_table(results, p.d_steps), ''])
  workdir_lib.write_atomically(os.path.join(workdir, 'vanishing_gradients.md'), text)
  return {'markdown': text, 'targets': target_lines, 'results': results,
          'd_updates': d_updates, 'wall_s': wall, 'figure': figure}


def _main(argv: Sequence[str]) -> None:
  from absl import flags  # pylint: disable=g-import-not-at-top
  from absl import logging  # pylint: disable=g-import-not-at-top
  logging.set_verbosity(logging.WARNING)  # orbax logs every checkpoint operation.
  if len(argv) > 1:
    raise SystemExit(f'gan_jax: error: unexpected arguments {argv[1:]!r}.')
  flag_values = flags.FLAGS
  config = flag_values.config
  workdir = flag_values.workdir or os.path.join('runs', 'vanishing')
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  config_path = config_flags.get_config_filename(flag_values['config'])
  try:
    out = run(config, workdir, variants=variants_of(config_path, config))
  except (ValueError, FileNotFoundError) as e:
    print(f'gan_jax: error: {" ".join(str(e).split())}', file=sys.stderr)
    raise SystemExit(2) from None
  print(out['markdown'])
  print(f'wrote {out["figure"]} and {os.path.join(workdir, "vanishing_gradients.md")}')


if __name__ == '__main__':
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  config_flags.DEFINE_config_file(
      'config', None, 'experiments/vanishing_gradients.py[:quick]', lock_config=True)
  flags.DEFINE_string('workdir', None, 'output directory (default runs/vanishing).')
  flags.mark_flag_as_required('config')
  app.run(_main)
