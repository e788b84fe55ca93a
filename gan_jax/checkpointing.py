"""Checkpoints of the GAN state in a workdir, with orbax's CheckpointManager.

Guarantees the loop relies on:
  * saves are atomic (orbax writes to a temporary directory and renames it);
  * a state with a non-finite parameter is never saved (`NonFiniteStateError`),
    so the last good checkpoint survives a divergence;
  * a checkpoint that cannot be read, or does not fit the model, is an error that
    names the directory; it is never replaced by a silent restart from scratch.
"""

from __future__ import annotations

import os
import re
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp


class CheckpointError(RuntimeError):
  """A checkpoint in the workdir is unreadable or belongs to another model."""


class NonFiniteStateError(FloatingPointError):
  """Refused to checkpoint a state that holds NaN or Inf."""


def nonfinite_leaves(tree: Any) -> list[str]:
  """Paths of the floating-point leaves of `tree` that hold a NaN or Inf."""
  bad = []
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
      leaf = leaf.addressable_data(0)  # replicated over processes: any copy will do.
    value = np.asarray(leaf)
    if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
      bad.append(jax.tree_util.keystr(path))
  return bad


def restore_latest(workdir: str, template: Any) -> tuple[Any, int]:
  """(state, step) of the latest checkpoint in `workdir`/checkpoints, shaped like `template`.

  For reading a finished or running workdir (evaluation, analysis, tests); a
  workdir without a checkpoint is a FileNotFoundError.
  """
  checkpointer = Checkpointer(os.path.join(workdir, 'checkpoints'))
  try:
    state, step = checkpointer.restore(template)
  finally:
    checkpointer.close()
  if step is None:
    raise FileNotFoundError(f'no checkpoint in {checkpointer.directory}.')
  return state, step


class Checkpointer:
  """Saves every `save_every` steps (and on request), keeps the last `keep`."""

  def __init__(self, directory: str, *, keep: int = 3):
    self.directory = os.path.abspath(directory)
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                             enable_async_checkpointing=False))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state: Any) -> None:
    """Saves `state` as `step`, refusing a non-finite state."""
    bad = nonfinite_leaves(state)
    if bad:
      raise NonFiniteStateError(
          f'refusing to checkpoint step {step}: non-finite values in {", ".join(bad[:5])}'
          f'{" ..." if len(bad) > 5 else ""}; the last good checkpoint in '
          f'{self.directory} is kept.')
    if self._manager.latest_step() == step:
      return
    self._manager.save(step, args=ocp.args.StandardSave(state), force=True)
    self._manager.wait_until_finished()

  def restore(self, template: Any) -> tuple[Any, int | None]:
    """(state, step) of the latest checkpoint, or (template, None) if there is none.

    `template` is a freshly initialised state; its shapes and dtypes define what
    is expected, so a checkpoint of another model is reported, not half-loaded.
    """
    step = self._manager.latest_step()
    if step is None:
      if _has_step_dirs(self.directory):
        raise CheckpointError(
            f'{self.directory} holds checkpoint directories but none could be read as a '
            'complete checkpoint (truncated or corrupted?). Move them away to start '
            'from scratch, or point --workdir elsewhere; nothing was overwritten.')
      return template, None
    abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, template)
    try:
      restored = self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
    except Exception as e:  # orbax raises many types for unreadable files.
      shapes = re.search(r'Requested shape: (\(.*?\)) is not compatible with the stored '
                         r'shape: (\(.*?\))', str(e))
      if shapes:
        raise CheckpointError(
            f'the checkpoint of step {step} in {self.directory} holds an array of shape '
            f'{shapes.group(2)} where the configured model has {shapes.group(1)}: it '
            'belongs to another model shape (compare config.json in the workdir with '
            '--config). Use another --workdir, or move the checkpoint away; nothing was '
            'overwritten.') from e
      raise CheckpointError(
          f'could not restore the checkpoint of step {step} in {self.directory}: '
          f'{type(e).__name__}: {_first_line(e)}. It is either truncated/corrupted or '
          'written by a different model or config (compare config.json in the workdir '
          'with --config). Use another --workdir, or move the checkpoint away; nothing '
          'was overwritten.') from e
    _check_shapes(template, restored, self.directory, step)
    return restored, step

  def close(self) -> None:
    self._manager.close()


def _first_line(e: Exception) -> str:
  text = str(e).strip().splitlines()
  return text[0][:300] if text else ''


def _has_step_dirs(directory: str) -> bool:
  if not os.path.isdir(directory):
    return False
  return any(name.isdigit() or '.orbax-checkpoint-tmp' in name
             for name in os.listdir(directory))


def _check_shapes(template: Any, restored: Any, directory: str, step: int) -> None:
  t_leaves, t_def = jax.tree_util.tree_flatten(template)
  r_leaves, r_def = jax.tree_util.tree_flatten(restored)
  if t_def != r_def:
    raise CheckpointError(
        f'the checkpoint of step {step} in {directory} has a different structure than '
        'the configured model; it belongs to another config. Use another --workdir.')
  for t, r in zip(t_leaves, r_leaves):
    if np.shape(t) != np.shape(r):
      raise CheckpointError(
          f'the checkpoint of step {step} in {directory} holds an array of shape '
          f'{np.shape(r)} where the configured model has {np.shape(t)}; it belongs to '
          'another model shape. Use another --workdir.')
