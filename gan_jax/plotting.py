"""Figures written by the loop: sample grids, training curves, 2-D scatters.

Each function takes numpy arrays and a path and writes one PNG; nothing here
touches the model or the training state.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np


def save(fig, path: str) -> None:
  """Saves under a temporary name, then renames: a reader (or a second sweep shard
  merging at the same time) never sees a half-written picture."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  root, ext = os.path.splitext(path)
  tmp = f'{root}.tmp{os.getpid()}{ext}'
  fig.savefig(tmp, dpi=100, bbox_inches='tight')
  plt.close(fig)
  os.replace(tmp, path)


def image_grid(images: np.ndarray, path: str, *, rows: int,
               value_range: tuple[float, float] = (-1.0, 1.0),
               row_labels: Sequence[str] | None = None, title: str = '') -> None:
  """Tiles (rows * cols, H, W, C) images into one PNG, row by row.

  For a conditional GAN the caller orders the samples so that row i holds label
  i (seeds 000 and 002 show their CGAN results this way).
  """
  n, h, w, c = images.shape
  cols = n // rows
  lo, hi = value_range
  images = np.clip((images[:rows * cols] - lo) / (hi - lo), 0.0, 1.0)
  grid = images.reshape(rows, cols, h, w, c).transpose(0, 2, 1, 3, 4)
  grid = grid.reshape(rows * h, cols * w, c)
  fig, ax = plt.subplots(figsize=(cols * 0.6 + 0.6, rows * 0.6 + 0.3))
  if c == 1:
    ax.imshow(grid[..., 0], cmap='gray', vmin=0.0, vmax=1.0)
  else:
    ax.imshow(grid)
  ax.set_xticks([])
  if row_labels is not None:
    ax.set_yticks(np.arange(rows) * h + h / 2)
    ax.set_yticklabels(row_labels)
  else:
    ax.set_yticks([])
  if title:
    ax.set_title(title)
  save(fig, path)


def training_curves(history: dict[str, np.ndarray], path: str, *,
                    probabilistic: bool = True) -> None:
  """Loss curves of both players and mean D(x) / D(G(z)) over training (seed 004)."""
  steps = history['step']
  fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
  ax1.plot(steps, history['train/d_loss'], label='discriminator loss', alpha=0.7)
  ax1.plot(steps, history['train/g_loss'], label='generator loss', alpha=0.7)
  ax1.set_ylabel('loss')
  ax1.legend()
  what = 'mean D' if probabilistic else 'mean critic score'
  ax2.plot(steps, history['train/d_real'], label=f'{what} on real x', alpha=0.7)
  ax2.plot(steps, history['train/d_fake'], label=f'{what} on G(z)', alpha=0.7)
  if probabilistic:
    ax2.axhline(0.5, color='gray', lw=0.8, ls='--')
    ax2.set_ylim(-0.02, 1.02)
  ax2.set_xlabel('step')
  ax2.set_ylabel(what)
  ax2.legend()
  save(fig, path)


def mixture_scatter(samples: np.ndarray, centers: np.ndarray, path: str, *,
                    title: str = '', ax=None) -> None:
  """G's 2-D samples (points) over the true mode centers (red crosses)."""
  own = ax is None
  if own:
    fig, ax = plt.subplots(figsize=(4, 4))
  _scatter(ax, samples, centers, title)
  if own:
    save(fig, path)


def outside_share(samples: np.ndarray, span: float) -> float:
  """The fraction of samples outside the square [-span, span]^2 (non-finite ones count)."""
  samples = np.asarray(samples, float)
  inside = np.all(np.abs(samples) <= span, axis=-1)  # False for nan and inf
  return float(1.0 - inside.mean()) if len(samples) else 0.0


def _scatter(ax, samples: np.ndarray, centers: np.ndarray, title: str) -> None:
  ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.3, color='tab:blue')
  ax.scatter(centers[:, 0], centers[:, 1], s=40, marker='x', color='tab:red')
  # The window is the modes' (so panels compare across steps and variants); what
  # falls outside it is said, never hidden.
  span = np.abs(centers).max() * 1.5 + 0.1
  ax.set_xlim(-span, span)
  ax.set_ylim(-span, span)
  outside = outside_share(samples, span)
  if outside > 0:
    ax.text(0.02, 0.02, f'{100 * outside:.1f}% of samples outside', fontsize=6,
            color='tab:red', transform=ax.transAxes)
  ax.set_aspect('equal')
  ax.set_xticks([])
  ax.set_yticks([])
  if title:
    ax.set_title(title, fontsize=8)


def mixture_strip(rows: dict[str, list[tuple[int, np.ndarray]]], centers: np.ndarray,
                  path: str) -> None:
  """One row of 2-D scatters over training per variant (Metz et al. 2016, Fig. 1).

  `rows` maps a row title to [(step, samples), ...].
  """
  names = list(rows)
  cols = max(len(v) for v in rows.values())
  fig, axes = plt.subplots(len(names), cols, figsize=(2.0 * cols, 2.1 * len(names)),
                           squeeze=False)
  for r, name in enumerate(names):
    for c in range(cols):
      ax = axes[r, c]
      if c < len(rows[name]):
        step, samples = rows[name][c]
        _scatter(ax, samples, centers, f'step {step}')
      else:
        ax.axis('off')
    axes[r, 0].set_ylabel(name)
  save(fig, path)


def mixture_sample_grid(panels: dict[str, list[np.ndarray]], centers: np.ndarray,
                        path: str, *, subtitles: dict[str, list[str]] | None = None
                        ) -> None:
  """One row of 2-D scatters per variant, one column per seed (a sweep's final samples).

  `panels` maps a row title to a list of (N, 2) sample arrays; `subtitles`, if
  given, holds one short title per panel (e.g. "7 modes, 93% HQ").
  """
  names = list(panels)
  cols = max(1, max(len(v) for v in panels.values()))
  fig, axes = plt.subplots(len(names), cols, figsize=(1.8 * cols, 1.9 * len(names)),
                           squeeze=False)
  for r, name in enumerate(names):
    for c in range(cols):
      ax = axes[r, c]
      if c < len(panels[name]) and np.all(np.isfinite(panels[name][c])):
        title = subtitles[name][c] if subtitles else ''
        _scatter(ax, panels[name][c], centers, title)
      elif c < len(panels[name]):
        ax.set_xticks([])
        ax.set_yticks([])
        ax.text(0.5, 0.5, 'not finite', ha='center', va='center', transform=ax.transAxes)
      else:
        ax.axis('off')
    axes[r, 0].set_ylabel(name, fontsize=7)
  save(fig, path)


def mode_curves(curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], path: str,
                *, num_modes: int) -> None:
  """Modes covered and high-quality fraction over training, mean +- std over seeds.

  `curves` maps a variant name to (steps (T,), modes (S, T), high_quality (S, T)).
  """
  fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
  for i, (name, (steps, modes, hq)) in enumerate(curves.items()):
    color, style = line_style(i)
    for ax, values in ((ax1, np.asarray(modes, float)), (ax2, 100 * np.asarray(hq, float))):
      mean, std = values.mean(axis=0), values.std(axis=0)
      ax.plot(steps, mean, label=name, lw=1.2, color=color, ls=style)
      ax.fill_between(steps, mean - std, mean + std, color=color, alpha=0.12)
  ax1.axhline(num_modes, color='gray', lw=0.8, ls='--')
  ax1.set_ylim(-0.3, num_modes + 0.5)
  ax1.set_ylabel('modes covered (mean over seeds)')
  ax2.set_ylim(-2, 102)
  ax2.set_ylabel('high-quality samples, %')
  for ax in (ax1, ax2):
    ax.set_xlabel('step')
  ax2.legend(fontsize=6, loc='center left', bbox_to_anchor=(1.0, 0.5))
  save(fig, path)


_LINE_STYLES = ('-', '--', ':', '-.')


_MARKERS = ('o', 's', 'D', '^')  # one per entry of _LINE_STYLES


def line_style(i: int) -> tuple[Any, str]:
  """The i-th (colour, line style): 10 colours x 4 styles, so 40 curves stay distinct."""
  colors = plt.rcParams['axes.prop_cycle'].by_key()['color']
  return colors[i % len(colors)], _LINE_STYLES[(i // len(colors)) % len(_LINE_STYLES)]


def modes_vs_quality(points: dict[str, tuple[np.ndarray, np.ndarray]], path: str, *,
                     num_modes: int,
                     published: dict[str, list] | None = None) -> None:
  """Final modes against high-quality %, one marker per variant (mean +- s.e. over seeds).

  `points` maps a variant to (modes (S,), high_quality (S,)); `published` maps a
  variant to its published rows (source, modes, high quality, KL), drawn as
  open stars in the variant's colour and labelled with their source.
  """
  published = published or {}
  fig, ax = plt.subplots(figsize=(9, 6))
  for i, (name, (modes, hq)) in enumerate(points.items()):
    color, style = line_style(i)
    modes, hq = np.asarray(modes, float), 100 * np.asarray(hq, float)
    n = max(len(modes), 1)
    se = lambda v: v.std(ddof=1) / np.sqrt(n) if n > 1 else 0.0
    # Past 10 variants the colours repeat: a marker per line style keeps them apart.
    ax.errorbar(hq.mean(), modes.mean(), xerr=se(hq), yerr=se(modes),
                fmt=_MARKERS[_LINE_STYLES.index(style)],
                color=color, ms=6, capsize=2, label=name)
    for source, p_modes, p_hq, _ in published.get(name, ()):
      ax.plot(100 * p_hq, p_modes, marker='*', ms=13, mfc='none', mec=color, ls='none')
      ax.annotate(source, (100 * p_hq, p_modes), fontsize=6, color=color,
                  xytext=(4, 4), textcoords='offset points')
  ax.axhline(num_modes, color='gray', lw=0.8, ls='--')
  ax.set_xlim(-2, 102)
  ax.set_ylim(-0.3, num_modes + 0.8)
  ax.set_xlabel('high-quality samples, % (mean ± s.e. over seeds)')
  ax.set_ylabel(f'modes covered of {num_modes}')
  ax.set_title('dots: measured; open stars: published (same colour = same variant)')
  ax.legend(fontsize=6, loc='center left', bbox_to_anchor=(1.0, 0.5))
  save(fig, path)


def gradient_norm_curves(d_updates: np.ndarray,
                         log_curves: dict[str, dict[Any, tuple[np.ndarray, np.ndarray]]],
                         linear_curves: dict[str, dict[Any, tuple[np.ndarray, np.ndarray]]],
                         path: str, *, title: str = '') -> None:
  """Arjovsky & Bottou (2017), Figs. 1-3: G's gradient norm while D trains against a fixed G.

  `log_curves` maps a panel (a G loss) to {budget: (mean, std) of log10 ||grad||
  over seeds, each (T,)}, drawn as 10^mean with a 10^(mean +- std) band on a log
  axis; `linear_curves` maps further panels (D's accuracy, mean D(G(z))) to
  {budget: (mean, std)} on a linear axis. One curve per budget in every panel.
  """
  panels = list(log_curves.items()) + list(linear_curves.items())
  cols = 3
  rows = -(-len(panels) // cols)
  fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
  for k, (label, by_budget) in enumerate(panels):
    ax = axes[k // cols][k % cols]
    for i, (budget, (mean, std)) in enumerate(by_budget.items()):
      color, style = line_style(i)
      if k < len(log_curves):
        ax.plot(d_updates, 10.0 ** mean, color=color, ls=style, lw=1.2,
                label=f'G after {budget} steps')
        ax.fill_between(d_updates, 10.0 ** (mean - std), 10.0 ** (mean + std), color=color,
                        alpha=0.15)
        ax.set_yscale('log')
      else:
        ax.plot(d_updates, mean, color=color, ls=style, lw=1.2, label=f'G after {budget} steps')
        ax.fill_between(d_updates, mean - std, mean + std, color=color, alpha=0.15)
    ax.set_title(label if k >= len(log_curves) else f'‖∇G‖: {label}', fontsize=9)
    ax.set_xlabel('D training steps')
    ax.grid(True, which='both', alpha=0.2)
  axes[0][0].legend(fontsize=7)
  for k in range(len(panels), rows * cols):
    axes[k // cols][k % cols].axis('off')
  if title:
    fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  save(fig, path)
