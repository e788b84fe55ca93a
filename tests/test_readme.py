"""Every ```python block of README.md runs, in order, in one namespace.

So the README's library and extension examples cannot drift from the code. The
blocks run from the repository root (they load experiments/*.py); the registries
they extend (losses, models, datasets) are restored afterwards.
"""

from __future__ import annotations

import os
import re

import pytest

from gan_jax import datasets
from gan_jax import losses
from gan_jax import models

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def python_blocks(text: str) -> list[str]:
  return re.findall(r'^```python\n(.*?)^```', text, flags=re.S | re.M)


def test_the_readme_has_the_library_and_extension_examples():
  with open(os.path.join(ROOT, 'README.md')) as f:
    text = f.read()
  for heading in ('## Use it as a library', '## Extend it'):
    assert heading in text
  assert len(python_blocks(text)) >= 5


@pytest.fixture
def restored_registries(monkeypatch):
  monkeypatch.setattr(losses, 'LOSSES', dict(losses.LOSSES))
  monkeypatch.setattr(models, 'MODELS', dict(models.MODELS))
  for name in ('REGISTRY', 'NAMES', 'MIXTURE_NAMES', 'IMAGE_NAMES', 'STACKABLE_NAMES',
               'SOURCES'):
    monkeypatch.setattr(datasets, name, getattr(datasets, name))
  monkeypatch.chdir(ROOT)


def test_every_python_block_of_the_readme_runs(restored_registries, capsys):
  with open(os.path.join(ROOT, 'README.md')) as f:
    blocks = python_blocks(f.read())
  namespace: dict = {}
  for i, block in enumerate(blocks):
    try:
      exec(compile(block, f'README.md block {i}', 'exec'), namespace)  # pylint: disable=exec-used
    except Exception as e:  # pylint: disable=broad-except
      pytest.fail(f'README.md python block {i} raised {type(e).__name__}: {e}\n{block}')
  out = capsys.readouterr().out
  assert "'d_loss'" in out                                  # the library loop printed metrics
  assert 'optim.d.lr=0.0003,unroll.steps=5' in out          # the sweep example expanded
  assert namespace['batch']['x'].shape == (8, 2)            # the spiral dataset sampled
  assert namespace['spec'].generator.__class__.__name__ == 'LinearG'
