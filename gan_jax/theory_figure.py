"""Goodfellow et al. 2014, Figure 1, reproduced in 1-D with the project's D and losses.

    python -m gan_jax.theory_figure --out runs/figure1.png
    python -m gan_jax.theory_figure --dirac --out runs/dirac.png   # Dirac-GAN trajectories

With --dirac it draws instead one panel per row of the Dirac-GAN convergence
table (`theory.DIRAC_TABLE_ROWS`, Mescheder et al. 2018): the trajectory of
(theta, psi) from (1, 1) under each method, titled with the spectral radius of
its update at the equilibrium (0, 0).

Data is N(data_mean, data_std^2). The generator is affine, x = G(z) = shift + scale z
with z ~ N(0, 1), so p_g = N(shift, scale^2) is known in closed form and the optimal
discriminator D*(x) = p_data / (p_data + p_g) (`theory.optimal_discriminator`) can be
drawn exactly next to the trained D (`models.mlp.MLPDiscriminator`, trained with
`losses.minimax_discriminator_loss` by the project's `steps.train_step`). The four panels follow the paper's caption:

  (a) a pair near convergence: p_g close to p_data, D a partially accurate classifier
      (a few D steps from initialisation);
  (b) the inner loop trains D to convergence against the fixed G: D -> D*;
  (c) after updates to G against that fixed D, G(z) has flowed towards the region
      D classifies as data;
  (d) after further alternating training p_g = p_data and D = 1/2 everywhere.

Each panel shows p_data (black dots), p_g (green), D (blue dashes) and D* (thin
grey), with the mapping x = G(z) drawn below as in the paper: the lower line is the
z domain (quantiles of N(0, 1), evenly spaced in probability), the upper the x
domain. Titles give JSD(p_data || p_g) and max |D - D*| where both densities exceed
1% of their peak. It takes under a minute on 2 CPU cores.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import pathlib
import sys
import time
from typing import Any, NamedTuple, Sequence

from absl import flags

import flax.linen as nn
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from jax.scipy.stats import norm

from gan_jax import losses
from gan_jax import memory
from gan_jax import steps
from gan_jax import theory
from gan_jax.models import mlp

Params = Any


class Snapshot(NamedTuple):
  label: str
  g: dict[str, jax.Array]
  d: Params


PROGRAM = 'gan_jax.theory_figure'
EXIT_ERROR = 2
# The step counts are traced int32 loop bounds.
MAX_STEPS = 2**31 - 1
_STEP_FLAGS = ('d_steps_a', 'd_steps_b', 'g_steps_c', 'train_steps_d', 'd_per_g',
               'batch_size')


def _define_flags(fv: flags.FlagValues) -> None:
  """The flags, on a fresh FlagValues (the project's CLI convention, as classifier.py)."""
  flags.DEFINE_string('out', 'runs/figure1.png', 'PNG path to write.', flag_values=fv)
  flags.DEFINE_enum('g_loss', 'non_saturating', ['minimax', 'non_saturating'],
                    'generator loss; D always uses the minimax (cross-entropy) loss.',
                    flag_values=fv)
  flags.DEFINE_integer('seed', 0, 'Seed.', lower_bound=0, upper_bound=2**31 - 1,
                       flag_values=fv)
  flags.DEFINE_float('data_mean', 1.0, 'Mean of p_data.', flag_values=fv)
  flags.DEFINE_float('data_std', 0.5, 'Std of p_data (> 0).', flag_values=fv)
  flags.DEFINE_float('g_shift', -0.2, "G's initial mean.", flag_values=fv)
  flags.DEFINE_float('g_scale', 0.4, "G's initial std (> 0).", flag_values=fv)
  step = dict(lower_bound=1, upper_bound=MAX_STEPS, flag_values=fv)
  flags.DEFINE_integer('batch_size', 256, 'Real and fake points per step.', **step)
  flags.DEFINE_integer('d_steps_a', 25, 'D steps for panel (a).', **step)
  flags.DEFINE_integer('d_steps_b', 1500, 'further D steps, to convergence, for panel (b).',
                       **step)
  flags.DEFINE_integer('g_steps_c', 15, 'G steps against the fixed D of (b), for panel (c).',
                       **step)
  flags.DEFINE_integer('train_steps_d', 1500,
                       'alternating G steps (each after d_per_g D steps) for (d).', **step)
  flags.DEFINE_integer('d_per_g', 5, 'D steps per G step in (d).', **step)
  flags.DEFINE_float('d_lr', 3e-3, "D's Adam learning rate (> 0).", flag_values=fv)
  flags.DEFINE_float('g_lr', 1e-2, "G's Adam learning rate (> 0).", flag_values=fv)
  flags.DEFINE_bool('dirac', False, 'draw the Dirac-GAN trajectories of every method '
                    'instead.', flag_values=fv)
  flags.DEFINE_float('dirac_lr', 0.1, 'Dirac-GAN step size h (> 0).', flag_values=fv)
  flags.DEFINE_integer('dirac_steps', 1000, 'Dirac-GAN steps.', lower_bound=0,
                       upper_bound=MAX_STEPS, flag_values=fv)
  flags.DEFINE_float('dirac_gamma', 1.0, 'R1 / consensus weight (>= 0).', flag_values=fv)
  flags.DEFINE_float('dirac_noise', 1.0, 'instance noise std (> 0).', flag_values=fv)
  flags.DEFINE_integer('dirac_unroll', 5, 'unrolled D steps K.', lower_bound=1,
                       upper_bound=1000, flag_values=fv)


def _check_out(out: str) -> None:
  """--out must be a file path whose directory exists or can be made."""
  path = os.path.abspath(out or '.')
  if not out or os.path.isdir(path):
    raise ValueError(f'--out={out!r} must be a PNG file path, not a directory.')
  parent = os.path.dirname(path)
  while not os.path.exists(parent):
    parent = os.path.dirname(parent)
  if not os.path.isdir(parent):
    raise ValueError(f'--out={out!r} lies under {parent!r}, which is a file, not a '
                     'directory.')
  if not os.access(parent, os.W_OK | os.X_OK):
    raise ValueError(f'--out={out!r}: {parent!r} is not writable.')


def _parse_args(argv: Sequence[str] | None = None) -> flags.FlagValues:
  """The parsed flags of `argv` (without the program name); ValueError for bad values.

  absl's own errors (an unknown flag, a bad number, a bound) are flags.Error;
  the checks across flags raise ValueError naming the flag. Both exit 2 in `main`.
  """
  fv = flags.FlagValues()
  _define_flags(fv)
  fv([PROGRAM, *(sys.argv[1:] if argv is None else argv)])
  for name in ('data_mean', 'data_std', 'g_shift', 'g_scale', 'd_lr', 'g_lr', 'dirac_lr',
               'dirac_gamma', 'dirac_noise'):
    if not math.isfinite(fv[name].value):
      raise ValueError(f'--{name}={fv[name].value} must be finite.')
  for name in ('data_std', 'g_scale', 'd_lr', 'g_lr', 'dirac_lr', 'dirac_noise'):
    if not fv[name].value > 0:
      raise ValueError(f'--{name}={fv[name].value} must be > 0.')
  if fv.dirac_gamma < 0:
    raise ValueError(f'--dirac_gamma={fv.dirac_gamma} must be >= 0.')
  # One float32 of each of the 32 units of D's two layers per point, forward and
  # backward, for the d_per_g real batches and a fake one (a lower bound).
  need = 4 * 4 * 32 * fv.batch_size * (fv.d_per_g + 1)
  ram = memory.ram_bytes()
  if ram is not None and need > ram:
    raise ValueError(f'--batch_size={fv.batch_size} with --d_per_g={fv.d_per_g} needs at '
                     f"least {need / 2**30:.0f} GiB, more than this machine's "
                     f'{ram / 2**30:.0f} GiB; lower them.')
  _check_out(fv.out)
  return fv


class AffineGenerator(nn.Module):
  """x = G(z) = shift + scale z, so p_g = N(shift, scale^2) in closed form."""
  shift: float = 0.0
  scale: float = 1.0

  @nn.compact
  def __call__(self, z, labels=None, *, train):
    del labels, train
    shift = self.param('shift', lambda k: jnp.float32(self.shift))
    scale = self.param('scale', lambda k: jnp.float32(self.scale))
    return shift + scale * z


def _frozen(tx: optax.GradientTransformation) -> optax.GradientTransformation:
  """`tx` with its player held fixed: zero updates, the optimizer state untouched."""
  return optax.GradientTransformation(
      tx.init, lambda updates, state, params=None: (
          jax.tree_util.tree_map(jnp.zeros_like, updates), state))


def _discriminator() -> mlp.MLPDiscriminator:
  return mlp.MLPDiscriminator(widths=(32, 32), activation='relu', dropout=0.0)


def train(args: flags.FlagValues) -> list[Snapshot]:
  """Runs the four stages of Figure 1 through `steps.train_step`; (label, G, D) after each.

  Every stage is the project's step on one spec: D-only stages hold G fixed
  (its optimizer gives zero updates), the G-only stage holds D fixed, and the
  alternating stage takes `d_per_g` D updates (one fresh real batch each) per G
  update. The optimizer states carry over from stage to stage.
  """
  key = jax.random.PRNGKey(args.seed)
  d_tx = optax.adam(args.d_lr, b1=0.5)
  g_tx = optax.adam(args.g_lr, b1=0.5)
  base = steps.GANSpec(
      generator=AffineGenerator(shift=args.g_shift, scale=args.g_scale),
      discriminator=_discriminator(), g_tx=g_tx, d_tx=d_tx,
      # D's loss is the minimax cross-entropy for both choices; G's is the named one.
      loss=losses.get_loss(args.g_loss), latent_dim=1)
  state = steps.init_state(base, jax.random.fold_in(key, 0), (1,))

  def make_run(spec: steps.GANSpec):
    step = functools.partial(steps.train_step, spec=spec)
    n = spec.d_steps * args.batch_size

    # One compiled loop per spec; the number of steps is a traced value.
    @jax.jit
    def run(state, data_key, num_steps):
      def body(i, state):
        real = args.data_mean + args.data_std * jax.random.normal(
            jax.random.fold_in(data_key, i), (n, 1))
        return step(state, {'x': real})[0]
      return jax.lax.fori_loop(0, num_steps, body, state)
    return run

  d_only = make_run(dataclasses.replace(base, g_tx=_frozen(g_tx)))
  g_only = make_run(dataclasses.replace(base, d_tx=_frozen(d_tx)))
  alternating = make_run(dataclasses.replace(base, d_steps=args.d_per_g))
  stages = [
      ('(a) D partially trained', args.d_steps_a, d_only),
      ('(b) D trained to D*', args.d_steps_b, d_only),
      ('(c) G updated against that D', args.g_steps_c, g_only),
      (f'(d) after {args.train_steps_d} x ({args.d_per_g} D + 1 G) steps',
       args.train_steps_d, alternating),
  ]
  snapshots = []
  for i, (label, num_steps, run) in enumerate(stages):
    state = run(state, jax.random.fold_in(key, i + 1), num_steps)
    snapshots.append(Snapshot(label, jax.device_get(state.g_params), state.d_params))
  return snapshots


@jax.jit
def _panel_curves(d_params: Params, shift: jax.Array, scale: jax.Array, x: jax.Array,
                  p_data: jax.Array) -> tuple[jax.Array, ...]:
  """p_g, D, D*, JSD(p_data || p_g) and max |D - D*| where both densities exceed 1% of peak."""
  p_g = norm.pdf(x, shift, scale)
  d = jax.nn.sigmoid(_discriminator().apply({'params': d_params}, x[:, None], train=False))
  d_star = theory.optimal_discriminator(p_data, p_g)
  both = (p_data > 0.01 * jnp.max(p_data)) & (p_g > 0.01 * jnp.max(p_g))
  max_err = jnp.max(jnp.where(both, jnp.abs(d - d_star), 0.0))
  return p_g, d, d_star, theory.jensen_shannon_divergence(p_data, p_g, x), max_err


def plot(args: flags.FlagValues, snapshots: list[Snapshot]) -> plt.Figure:
  """Figure 1's four panels from the snapshots."""
  lo = min(args.data_mean - 4 * args.data_std, args.g_shift - 4 * args.g_scale)
  hi = max(args.data_mean + 4 * args.data_std, args.g_shift + 4 * args.g_scale)
  x = np.linspace(lo, hi, 801, dtype=np.float32)
  p_data = np.asarray(norm.pdf(x, args.data_mean, args.data_std))
  z_quantiles = np.asarray(norm.ppf(np.linspace(0.03, 0.97, 17)))
  # Where the z line's points are drawn: N(0, 1)'s quantiles spread over half the axis.
  z_positions = 0.5 * (lo + hi) + z_quantiles * (hi - lo) / 8
  # Densities share the axis with D in [0, 1]: one common scale, the tallest peak at 1.
  peaks = [float(p_data.max())] + [
      1.0 / (abs(float(snap.g['scale'])) * np.sqrt(2 * np.pi)) for snap in snapshots]
  scale = 1.0 / max(peaks)

  fig, axes = plt.subplots(1, 4, figsize=(16, 3.8), sharey=True)
  for ax, snap in zip(axes, snapshots):
    shift, g_scale = float(snap.g['shift']), abs(float(snap.g['scale']))
    p_g, d, d_star, jsd, max_err = jax.device_get(
        _panel_curves(snap.d, shift, g_scale, x, p_data))

    ax.plot(x[::12], scale * p_data[::12], 'k.', markersize=3, label='p_data')
    ax.plot(x, scale * p_g, 'g-', lw=1.5, label='p_g')
    ax.plot(x, d, 'b--', lw=1.5, label='D(x)')
    ax.plot(x, d_star, color='0.55', lw=0.8, label='D*(x)')
    # The mapping x = G(z): z on the lower line, G(z) on the upper one.
    x_level, z_level = -0.25, -0.6
    ax.axhline(x_level, color='k', lw=0.6)
    ax.axhline(z_level, color='k', lw=0.6)
    for z, z_pos in zip(z_quantiles, z_positions):
      ax.annotate('', xy=(shift + g_scale * z, x_level), xytext=(z_pos, z_level),
                  arrowprops=dict(arrowstyle='->', lw=0.5, color='0.3'))
    ax.text(lo, x_level + 0.03, 'x', fontsize=8)
    ax.text(lo, z_level + 0.03, 'z', fontsize=8)
    ax.set_title(f'{snap.label}\nJSD = {jsd:.3f}, max |D - D*| = {max_err:.3f}', fontsize=9)
    ax.set_xlim(lo, hi)
    ax.set_ylim(-0.7, 1.15)
    ax.set_yticks([0.0, 0.5, 1.0])
  axes[0].legend(loc='upper left', fontsize=7, frameon=False)
  fig.suptitle(f'Goodfellow et al. 2014, Fig. 1 in 1-D: p_data = N({args.data_mean}, '
               f'{args.data_std}^2), G(z) = shift + scale z, G loss {args.g_loss}',
               fontsize=10)
  fig.tight_layout()
  return fig


def plot_dirac(args: flags.FlagValues) -> plt.Figure:
  """One panel per Dirac-GAN table row: (theta, psi) from (1, 1), equilibrium at 0."""
  options = dict(learning_rate=args.dirac_lr, gamma=args.dirac_gamma,
                 noise_std=args.dirac_noise, unroll_steps=args.dirac_unroll)
  rows = theory.DIRAC_TABLE_ROWS
  cols = 4
  fig, axes = plt.subplots((len(rows) + cols - 1) // cols, cols, figsize=(14, 10))
  axes = np.asarray(axes).ravel()
  for ax, (label, method, loss) in zip(axes, rows):
    zs = np.asarray(theory.dirac_gan_iterates(method, loss, num_steps=args.dirac_steps,
                                              **options))
    rho = float(theory.spectral_radius(theory.dirac_gan_update_jacobian(method, loss,
                                                                        **options)))
    ax.plot(zs[:, 0], zs[:, 1], lw=0.8)
    ax.plot(*zs[0], 'go', ms=4)
    ax.plot(*zs[-1], 'rs', ms=4)
    ax.plot(0, 0, 'k*', ms=8)
    ax.set_title(f'{label}: rho = {rho:.4f}', fontsize=9)
    ax.set_xlabel('theta', fontsize=8)
    ax.set_ylabel('psi', fontsize=8)
    ax.set_aspect('equal', adjustable='datalim')
  for ax in axes[len(rows):]:
    ax.axis('off')
  fig.suptitle(f'Dirac-GAN (Mescheder et al. 2018): {args.dirac_steps} steps of h = '
               f'{args.dirac_lr} from (1, 1) (green) to the red square; gamma = '
               f'{args.dirac_gamma}, sigma = {args.dirac_noise}, K = {args.dirac_unroll}',
               fontsize=10)
  fig.tight_layout()
  return fig


def main(argv: Sequence[str] | None = None) -> int:
  """`python -m gan_jax.theory_figure [--flags]`; argv without the program name.

  Returns the exit code: 0, 2 for a bad flag (one paragraph on stderr naming
  it), 1 for a bug (one paragraph; the traceback in a temporary file).
  """
  try:
    args = _parse_args(argv)
  except (flags.Error, ValueError) as e:
    print(f'{PROGRAM}: error: {" ".join(str(e).split())}', file=sys.stderr)
    return EXIT_ERROR
  start = time.time()
  try:
    out = pathlib.Path(args.out)
    if args.dirac:
      fig = plot_dirac(args)
      out.parent.mkdir(parents=True, exist_ok=True)
      fig.savefig(out, dpi=110)
      print(f'wrote {out} in {time.time() - start:.1f} s')
      return 0
    snapshots = train(args)
    fig = plot(args, snapshots)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
  except Exception as e:  # pylint: disable=broad-except
    from gan_jax import errors  # pylint: disable=g-import-not-at-top
    return errors.report_bug(e, program=PROGRAM)
  for snap in snapshots:
    print(f"{snap.label}: G shift {float(snap.g['shift']):+.3f}, scale "
          f"{abs(float(snap.g['scale'])):.3f}")
  print(f'wrote {out} in {time.time() - start:.1f} s')
  return 0


if __name__ == '__main__':
  sys.exit(main())
