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

import argparse
import dataclasses
import functools
import pathlib
import time
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from jax.scipy.stats import norm

from gan_jax import losses
from gan_jax import steps
from gan_jax import theory
from gan_jax.models import mlp

Params = Any


class Snapshot(NamedTuple):
  label: str
  g: dict[str, jax.Array]
  d: Params


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--out', default='runs/figure1.png', help='PNG path to write.')
  parser.add_argument('--g_loss', default='non_saturating',
                      choices=['minimax', 'non_saturating'],
                      help="generator loss; D always uses the minimax (cross-entropy) loss.")
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--data_mean', type=float, default=1.0)
  parser.add_argument('--data_std', type=float, default=0.5)
  parser.add_argument('--g_shift', type=float, default=-0.2, help="G's initial mean.")
  parser.add_argument('--g_scale', type=float, default=0.4, help="G's initial std.")
  parser.add_argument('--batch_size', type=int, default=256)
  parser.add_argument('--d_steps_a', type=int, default=25, help='D steps for panel (a).')
  parser.add_argument('--d_steps_b', type=int, default=1500,
                      help='further D steps, to convergence, for panel (b).')
  parser.add_argument('--g_steps_c', type=int, default=15,
                      help='G steps against the fixed D of (b), for panel (c).')
  parser.add_argument('--train_steps_d', type=int, default=1500,
                      help='alternating G steps (each after d_per_g D steps) for (d).')
  parser.add_argument('--d_per_g', type=int, default=5)
  parser.add_argument('--d_lr', type=float, default=3e-3)
  parser.add_argument('--g_lr', type=float, default=1e-2)
  parser.add_argument('--dirac', action='store_true',
                      help='draw the Dirac-GAN trajectories of every method instead.')
  parser.add_argument('--dirac_lr', type=float, default=0.1, help='Dirac-GAN step size h.')
  parser.add_argument('--dirac_steps', type=int, default=1000)
  parser.add_argument('--dirac_gamma', type=float, default=1.0, help='R1 / consensus weight.')
  parser.add_argument('--dirac_noise', type=float, default=1.0, help='instance noise std.')
  parser.add_argument('--dirac_unroll', type=int, default=5, help='unrolled D steps K.')
  args = parser.parse_args(argv)
  for name in ('d_steps_a', 'd_steps_b', 'g_steps_c', 'train_steps_d', 'd_per_g',
               'batch_size'):
    if getattr(args, name) < 1:
      parser.error(f'--{name} must be >= 1, got {getattr(args, name)}.')
  if args.data_std <= 0 or args.g_scale <= 0:
    parser.error('--data_std and --g_scale must be > 0.')
  return args


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


def train(args: argparse.Namespace) -> list[Snapshot]:
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


def plot(args: argparse.Namespace, snapshots: list[Snapshot]) -> plt.Figure:
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


def plot_dirac(args: argparse.Namespace) -> plt.Figure:
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


def main(argv: list[str] | None = None) -> None:
  args = _parse_args(argv)
  start = time.time()
  if args.dirac:
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    plot_dirac(args).savefig(out, dpi=110)
    print(f'wrote {out} in {time.time() - start:.1f} s')
    return
  snapshots = train(args)
  fig = plot(args, snapshots)
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(out, dpi=120)
  for snap in snapshots:
    print(f"{snap.label}: G shift {float(snap.g['shift']):+.3f}, scale "
          f"{abs(float(snap.g['scale'])):.3f}")
  print(f'wrote {out} in {time.time() - start:.1f} s')


if __name__ == '__main__':
  main()
