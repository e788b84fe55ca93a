"""The CLI end to end on ring8: outputs written, and a second run resumes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.join(os.path.dirname(__file__), '..')


def run_cli(workdir, *overrides: str) -> subprocess.CompletedProcess:
  cmd = [sys.executable, '-m', 'gan_jax.main',
         '--config', os.path.join(REPO, 'experiments', 'ring8.py'),
         '--workdir', str(workdir), '--compilation_cache=',
         '--config.train.batch_size=64', '--config.train.log_every=50',
         '--config.train.eval_every=100', '--config.train.checkpoint_every=100',
         '--config.eval.num_samples=500', *overrides]
  return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)


def read_jsonl(path) -> list[dict]:
  with open(path) as f:
    return [json.loads(line) for line in f]


@pytest.fixture(scope='module')
def first_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('ring8')
  result = run_cli(workdir, '--config.train.num_steps=200')
  assert result.returncode == 0, result.stderr[-3000:]
  return workdir, result


# The two CLI runs (200 + 100 steps with evals, ~40 s on 2 cores) are `slow`:
# test_reliability.py runs the same CLI in CI, resume included (bitwise).
@pytest.mark.slow
def test_cli_writes_checkpoints_metrics_and_pictures(first_run):
  workdir, _ = first_run
  assert sorted(os.listdir(workdir / 'checkpoints')) == ['100', '200']
  rows = read_jsonl(workdir / 'metrics.jsonl')
  train_steps = [r['step'] for r in rows if 'train/d_loss' in r]
  assert train_steps == [50, 100, 150, 200]
  evals = [r for r in rows if 'eval/modes' in r]
  assert [r['step'] for r in evals] == [100, 200]
  assert all(0 <= r['eval/modes'] <= 8 and 0 <= r['eval/high_quality'] <= 1 for r in evals)
  for name in ('samples/step_0000100.png', 'samples/step_0000200.png', 'curves.png',
               'config.json', 'results.json'):
    assert os.path.getsize(workdir / name) > 0, name
  with open(workdir / 'config.json') as f:
    assert json.load(f)['train']['num_steps'] == 200
  results = json.loads((workdir / 'results.json').read_text())
  assert results['step'] == 200 and 'eval/modes' in results


@pytest.mark.slow
def test_second_run_resumes_instead_of_restarting(first_run):
  workdir, _ = first_run
  result = run_cli(workdir, '--config.train.num_steps=300')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'Resumed from the checkpoint of step 200' in result.stdout + result.stderr
  rows = read_jsonl(workdir / 'metrics.jsonl')
  train_steps = [r['step'] for r in rows if 'train/d_loss' in r]
  assert train_steps == [50, 100, 150, 200, 250, 300]
  assert '300' in os.listdir(workdir / 'checkpoints')
  # The changed num_steps is recorded; the first run's config is kept beside it.
  assert os.path.exists(workdir / 'config.prev-1.json')


def test_misspelt_override_is_a_clean_error(tmp_path):
  result = run_cli(tmp_path, '--config.train.num_stesp=10')
  assert result.returncode != 0
  assert 'num_stesp' in result.stderr


def test_truncate_metrics_drops_rows_after_the_restored_step(tmp_path):
  from gan_jax import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  rows = [{'step': 50, 'train/d_loss': 1.0}, {'step': 100, 'train/d_loss': 0.5},
          {'step': 100, 'eval/modes': 3}, {'step': 150, 'train/d_loss': 0.25},
          {'step': 200, 'eval/modes': 5}]
  path = tmp_path / 'metrics.jsonl'
  path.write_text(''.join(json.dumps(r) + '\n' for r in rows))
  workdir_lib.truncate_metrics(str(tmp_path), 100)
  assert read_jsonl(path) == rows[:3]
  # Nothing after the step: the file is left as it is, byte for byte.
  before = path.read_bytes()
  workdir_lib.truncate_metrics(str(tmp_path), 100)
  workdir_lib.truncate_metrics(str(tmp_path), 10_000)
  assert path.read_bytes() == before
  workdir_lib.truncate_metrics(str(tmp_path), 0)
  assert read_jsonl(path) == []


@pytest.mark.slow
def test_cli_evaluates_the_ema_generator(tmp_path):
  # config.ema_decay > 0: every evaluation has eval/ema/... beside eval/..., and a picture.
  result = run_cli(tmp_path, '--config.train.num_steps=20', '--config.train.eval_every=10',
                   '--config.train.checkpoint_every=20', '--config.train.log_every=10',
                   '--config.ema_decay=0.9')
  assert result.returncode == 0, result.stderr[-3000:]
  evals = [r for r in read_jsonl(tmp_path / 'metrics.jsonl') if 'eval/modes' in r]
  assert [r['step'] for r in evals] == [10, 20]
  for r in evals:
    assert 0 <= r['eval/ema/modes'] <= 8 and 0 <= r['eval/ema/high_quality'] <= 1
  for step in (10, 20):
    assert (tmp_path / 'samples' / 'ema' / f'step_{step:07d}.png').exists()
