"""Reliability of a run: exact resume, preemption, divergence, bad input.

The CLI is exercised in-process where it can be (`main.parse_flags`,
`main.check_flags`, `main.run` on a fresh FlagValues: the same code path as
`python -m gan_jax.main`, without paying JAX's start-up per case) and in a
subprocess where a real process is the point (SIGTERM, exit codes, resuming
from what another process left behind). All runs are tiny 2-D GANs.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

from absl import flags
import jax
import numpy as np
import pytest

from gan_jax import checkpointing
from gan_jax import factory
from gan_jax import input_pipeline
from gan_jax import main
from gan_jax import steps
from gan_jax import train
from gan_jax import workdir as workdir_lib
from gan_jax.datasets import mixtures
from conftest import config_fields
from conftest import state_arrays

# One worker under pytest-xdist (--dist loadgroup): the module's fixtures are built once.
pytestmark = pytest.mark.xdist_group('test_reliability')

ROOT = pathlib.Path(__file__).resolve().parents[1]
RING = str(ROOT / 'experiments' / 'ring8.py') + ':quick'
FASHION = str(ROOT / 'experiments' / 'gan_fashion_mnist.py') + ':quick'
# A small model with every kind of state: BatchNorm statistics in G, an EMA of
# G, dropout in D (its RNG must resume too), two D steps per G step.
TINY = ['--config.model.latent_dim=8', '--config.model.g_widths=(16,)',
        '--config.model.d_widths=(16,)', '--config.model.batch_norm=True',
        '--config.model.d_dropout=0.3', '--config.ema_decay=0.9', '--config.d_steps=2',
        '--config.train.batch_size=8', '--config.eval.num_samples=40']


def snapshot(path: pathlib.Path) -> dict[str, str]:
  """Every file under `path` -> sha256 of its bytes."""
  return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
          for p in sorted(path.rglob('*')) if p.is_file()}


def parsed(args: list[str]) -> flags.FlagValues:
  argv = ['gan_jax'] + args
  fv = flags.FlagValues()
  main.define_flags(fv, argv)
  main.parse_flags(argv, fv)
  return fv


def cli(args: list[str], capsys) -> tuple[int, str]:
  """(exit code, stderr) of `python -m gan_jax.main ARGS`, in-process."""
  argv = ['gan_jax'] + args
  fv = flags.FlagValues()
  main.define_flags(fv, argv)
  capsys.readouterr()
  try:
    main.parse_flags(argv, fv)
    main.check_flags(fv)
  except main.CommandLineError as e:
    return main.EXIT_ERROR, f'gan_jax: error: {e}'
  code = main.run(fv.config, fv.workdir)
  err = capsys.readouterr().err
  # The progress bar shares stderr; the message is what follows it.
  return code, err[err.rfind('gan_jax: '):] if 'gan_jax: ' in err else err


def assert_clean_error(code: int, err: str, *names: str) -> None:
  assert code == main.EXIT_ERROR, err
  assert err.startswith('gan_jax: error: '), err
  message = err.strip()
  assert '\n' not in message and 'Traceback' not in message, err
  for name in names:
    assert name in message, (name, err)


def restore(workdir: pathlib.Path, extra: list[str]):
  """The latest checkpoint of `workdir` as {path: array}, and its step."""
  fv = parsed(['--config', RING, '--workdir', str(workdir)] + extra)
  info = input_pipeline.get_info(fv.config.data)
  spec = factory.build_spec(fv.config, info)
  template = steps.init_state(spec, jax.random.PRNGKey(0), info.shape)
  state, step = checkpointing.restore_latest(str(workdir), template)
  return state_arrays(state), step


def metric_rows(workdir: pathlib.Path) -> list[dict[str, float]]:
  rows = [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]
  return [{k: v for k, v in r.items() if k != 'train/steps_per_sec'} for r in rows]


# ---------------------------------------------------------------------------
# Exact resume and preemption, through real processes.
# ---------------------------------------------------------------------------


def _command(workdir, cache, *extra):
  return [sys.executable, '-m', 'gan_jax.main', '--config', RING, '--workdir', str(workdir),
          f'--compilation_cache={cache}', *TINY, '--config.train.log_every=3', *extra]


def _run(cmd) -> subprocess.CompletedProcess:
  return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT,
                        check=False)


@pytest.fixture(scope='module')
def preempted_and_resumed(tmp_path_factory):
  """A run stopped by SIGTERM, resumed to N steps, and an uninterrupted N-step run."""
  root = tmp_path_factory.mktemp('resume')
  cache, resumed, fresh = root / 'xla_cache', root / 'resumed', root / 'fresh'
  long_run = ['--config.train.num_steps=100000', '--config.train.checkpoint_every=100000',
              '--config.train.eval_every=100000']
  proc = subprocess.Popen(_command(resumed, cache, *long_run), cwd=ROOT, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
  deadline = time.time() + 300
  metrics = resumed / 'metrics.jsonl'
  while time.time() < deadline and proc.poll() is None:
    if metrics.exists() and len(metrics.read_text().splitlines()) >= 2:
      break
    time.sleep(0.2)
  proc.send_signal(signal.SIGTERM)
  _, stderr = proc.communicate(timeout=120)
  stopped = {'code': proc.returncode, 'stderr': stderr,
             'steps': sorted(int(p.name) for p in (resumed / 'checkpoints').iterdir()
                             if p.name.isdigit())}
  assert stopped['steps'], stderr[-3000:]
  stop_step = stopped['steps'][-1]
  num_steps = stop_step + 3
  finish = [f'--config.train.num_steps={num_steps}', '--config.train.checkpoint_every=1000',
            '--config.train.eval_every=1000']
  # Independent: run side by side.
  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    second, uninterrupted = pool.map(
        _run, [_command(resumed, cache, *finish), _command(fresh, cache, *finish)])
  return dict(stopped=stopped, stop_step=stop_step, num_steps=num_steps, second=second,
              uninterrupted=uninterrupted, resumed=resumed, fresh=fresh)


def test_log_every_is_honoured_whatever_checkpoint_every_is(tmp_path, capsys):
  # Checkpoints every 2 steps and evaluations every 3 cut into the 4-step log
  # periods; the train rows still come every 4 steps (and at the end).
  code, err = cli(['--config', RING, '--workdir', str(tmp_path), *TINY,
                   '--config.train.num_steps=10', '--config.train.log_every=4',
                   '--config.train.checkpoint_every=2', '--config.train.eval_every=3'],
                  capsys)
  assert code == 0, err
  rows = metric_rows(tmp_path)
  assert [r['step'] for r in rows if 'train/d_loss' in r] == [4, 8, 10]
  assert [r['step'] for r in rows if 'eval/modes' in r] == [3, 6, 9, 10]
  pending = workdir_lib.read_pending(str(tmp_path), 10)
  assert pending == (10, [])  # the last period was logged before its checkpoint


def test_pending_rows_round_trip_exactly(tmp_path):
  rows = [{'d_loss': np.float32(0.1), 'g_loss': np.float32(1 / 3)}]
  workdir_lib.write_pending(str(tmp_path), 12, 10, rows)
  start, back = workdir_lib.read_pending(str(tmp_path), 12)
  assert start == 10 and back == rows and back[0]['g_loss'].dtype == np.float32
  assert workdir_lib.read_pending(str(tmp_path), 11) is None  # another checkpoint's


def test_sigterm_checkpoints_the_current_step_and_says_so(preempted_and_resumed):
  r = preempted_and_resumed
  stopped = r['stopped']
  assert stopped['code'] == main.EXIT_PREEMPTED, stopped['stderr'][-3000:]
  assert stopped['steps'] == [r['stop_step']] and r['stop_step'] >= 2
  assert (f'received SIGTERM at step {r["stop_step"]}; saved a checkpoint of step '
          f'{r["stop_step"]}') in stopped['stderr']
  assert 'Run the same command to resume.' in stopped['stderr']
  assert 'Traceback' not in stopped['stderr']


def test_resumed_run_is_bitwise_the_uninterrupted_run(preempted_and_resumed):
  r = preempted_and_resumed
  for proc in (r['second'], r['uninterrupted']):
    assert proc.returncode == 0, proc.stderr[-3000:]
  assert f'Resumed from the checkpoint of step {r["stop_step"]}' in r['second'].stdout
  extra = TINY
  resumed, step_a = restore(r['resumed'], extra)
  fresh, step_b = restore(r['fresh'], extra)
  assert step_a == step_b == r['num_steps']
  assert resumed.keys() == fresh.keys()
  assert any('batch_stats' in k for k in resumed) and any('ema_params' in k for k in resumed)
  for key in resumed:  # both players, optimizer states, BatchNorm, EMA, RNG, step
    np.testing.assert_array_equal(resumed[key], fresh[key], err_msg=key)
  # Every logged metric, step by step (the resumed log continues the stopped one).
  rows_a, rows_b = metric_rows(r['resumed']), metric_rows(r['fresh'])
  assert [row['step'] for row in rows_a] == [row['step'] for row in rows_b]
  assert rows_a == rows_b
  # The config is saved as a loadable file: the workdir alone reproduces the run.
  assert (r['resumed'] / 'config.prev-1.py').exists()  # the 100000-step config
  assert 'num_steps = 100000' in (r['resumed'] / 'config.prev-1.py').read_text()
  assert f'num_steps = {r["num_steps"]}' in (r['resumed'] / 'config.py').read_text()


def test_config_py_in_the_workdir_reproduces_the_config(preempted_and_resumed, capsys):
  workdir = preempted_and_resumed['fresh']
  original = json.loads((workdir / 'config.json').read_text())
  fv = parsed(['--config', str(workdir / 'config.py'), '--workdir', str(workdir),
               '--config.penalty.gradient=1.0'])
  reloaded = json.loads(fv.config.to_json_best_effort())
  assert reloaded['penalty']['gradient'] == 1.0  # typed placeholders stay overridable
  reloaded['penalty']['gradient'] = original['penalty']['gradient']
  assert reloaded == original
  # Still locked: a misspelt field is an error.
  code, err = cli(['--config', str(workdir / 'config.py'), '--workdir', str(workdir),
                   '--config.train.num_step=5'], capsys)
  assert_clean_error(code, err, 'num_step')


def test_divergence_stops_with_the_quantity_and_step_and_keeps_the_checkpoint(
    preempted_and_resumed, tmp_path, capsys):
  r = preempted_and_resumed
  workdir = tmp_path / 'diverged'
  shutil.copytree(r['fresh'], workdir)
  before = snapshot(workdir / 'checkpoints')
  code, err = cli(['--config', RING, '--workdir', str(workdir), *TINY,
                   '--config.optim.d.lr=1e30', '--config.optim.g.lr=1e30',
                   f'--config.train.num_steps={r["num_steps"] + 50}',
                   '--config.train.log_every=5', '--config.train.checkpoint_every=1',
                   '--config.train.keep_checkpoints=100'], capsys)
  assert_clean_error(code, err, 'train/', 'at step', 'training diverged',
                     'last good checkpoint is kept')
  bad_step = int(err.split('at step ')[1].split(':')[0])
  assert r['num_steps'] < bad_step <= r['num_steps'] + 50
  assert any(f'={v}' in err for v in ('nan', 'inf', '-inf'))
  # Steps before the divergence may have been checkpointed (checkpoint_every=1),
  # each of them finite; the one we started from is untouched; nothing at or
  # after the bad step.
  after = snapshot(workdir / 'checkpoints')
  start = f'{r["num_steps"]}/'
  assert {k: v for k, v in after.items() if k.startswith(start)} == {
      k: v for k, v in before.items() if k.startswith(start)}
  saved = sorted({int(k.split('/')[0]) for k in after if k.split('/')[0].isdigit()})
  assert saved and saved[-1] < bad_step
  state, _ = restore(workdir, TINY)
  assert all(np.isfinite(v).all() for v in state.values() if v.dtype.kind == 'f')


def test_checkpointer_refuses_a_non_finite_state(tmp_path):
  ckpt = checkpointing.Checkpointer(str(tmp_path / 'ckpt'))
  ckpt.save(1, {'w': np.ones(3, np.float32)})
  with pytest.raises(checkpointing.NonFiniteStateError, match=r"\['w'\]"):
    ckpt.save(2, {'w': np.array([1.0, np.nan, 0.0], np.float32)})
  assert ckpt.latest_step() == 1
  ckpt.close()


# ---------------------------------------------------------------------------
# SIGINT, in-process.
# ---------------------------------------------------------------------------


def test_sigint_checkpoints_and_raises_preempted(tmp_path, capsys):
  workdir = tmp_path / 'interrupted'
  metrics = workdir / 'metrics.jsonl'

  def interrupt_after_first_log():
    deadline = time.time() + 300
    while time.time() < deadline and not (metrics.exists() and metrics.read_text()):
      time.sleep(0.05)
    os.kill(os.getpid(), signal.SIGINT)

  threading.Thread(target=interrupt_after_first_log, daemon=True).start()
  code, err = cli(['--config', RING, '--workdir', str(workdir), *TINY,
                   '--config.train.num_steps=100000', '--config.train.log_every=1',
                   '--config.train.checkpoint_every=100000'], capsys)
  assert code == main.EXIT_PREEMPTED, err
  step = int(err.split('received SIGINT at step ')[1].split(';')[0])
  assert sorted(p.name for p in (workdir / 'checkpoints').iterdir()) == [str(step)]
  assert 'Run the same command to resume.' in err
  # The log was flushed up to the checkpointed step.
  assert metric_rows(workdir)[-1]['step'] == step


# ---------------------------------------------------------------------------
# Bad input: a clean one-paragraph error, and the workdir left as it was.
# ---------------------------------------------------------------------------


@pytest.fixture(scope='module')
def populated_workdir(tmp_path_factory):
  """A workdir with a checkpoint of the ring8:quick model, a config and a log."""
  workdir = tmp_path_factory.mktemp('populated')
  fv = parsed(['--config', RING, '--workdir', str(workdir)])
  info = input_pipeline.get_info(fv.config.data)
  spec = factory.build_spec(fv.config, info)
  ckpt = checkpointing.Checkpointer(str(workdir / 'checkpoints'))
  ckpt.save(10, steps.init_state(spec, jax.random.PRNGKey(0), info.shape))
  ckpt.close()
  workdir_lib.write_config(fv.config, str(workdir))
  (workdir / 'metrics.jsonl').write_text('{"step": 10, "train/d_loss": 1.0}\n')
  return workdir


@pytest.fixture
def no_training(monkeypatch):
  """Fails the test if a bad config gets as far as compiling a step."""
  def refuse(*args, **kwargs):
    raise AssertionError('a bad config reached training')
  monkeypatch.setattr(train, 'make_step_fn', refuse)


BAD_INPUT = [
    # (overrides, words the message must contain)
    (['--config.loss=wassersten'], ['config.loss', 'wasserstein']),
    (['--config.model.name=resnet'], ['resnet', 'dcgan']),
    (['--config.data.name=cifar'], ['data.name', 'cifar', 'ring']),
    (['--config.train.batch_size=sixteen'], ['batch_size', 'sixteen']),
    (['--config.train.batch_size=1.5'], ['batch_size']),
    (['--config.trian.batch_size=4'], ['trian', 'train']),
    (['--config.unroll.step=3'], ['step', 'steps']),
    (['--config.model.pack=3'], ['config.model.pack=3', 'batch']),
    (['--config.model.conditional=True', '--config.data.num_modes=1'],
     ['conditional', 'labels']),
    (['--config.train.log_every=0'], ['config.train.log_every']),
    (['--config.model.g_widths=(64,0)'], ['config.model.g_widths']),
    (['--config.model.g_widths=(64,128)'], ['checkpoint', 'shape', 'another']),
    (['--config.loss=hinge', '--config.label_smoothing=0.1'], ['label_smoothing', 'hinge']),
    # Issue 11: reaching into a leaf, seeds out of range, sizes that cannot fit.
    (['--config.loss.name=hinge'], ['--config.loss.name', 'config.loss is a value']),
    (['--config.train.batch_size.value=16'], ['config.train.batch_size is a value']),
    (['--config.seed=18446744073709551616'], ['config.seed=', '[0, 2^31)']),
    (['--config.seed=-1'], ['config.seed=-1']),
    (['--config.train.batch_size=100000000'], ['GiB', 'config.train.batch_size']),
    (['--config.unroll.steps=10000000'], ['GiB', 'config.unroll.steps']),
    (['--config.eval.num_samples=100000000'], ['GiB', 'config.eval.num_samples']),
    (['--config.data.num_modes=100000000'], ['GiB', 'config.data']),
    (['--config.optim.g.final_lr_fraction=nan'], ['config.optim.g.final_lr_fraction=nan']),
    (['--config.optim.g.final_lr_fraction=2.0'], ['final_lr_fraction=2.0', '[0.0, 1.0]']),
    (['--config.optim.d.momentum=2'], ['config.optim.d.momentum=2.0', '[0.0, 1.0)']),
    (['--config.instance_noise.decay_steps=-3'], ['config.instance_noise.decay_steps=-3']),
    (['--config.optim.g.lr=inf'], ['config.optim.g.lr=inf', 'finite']),
]


@pytest.mark.parametrize('overrides,words', [
    (['--config.model.g_activation=mish'], ['mish', 'relu']),
    (['--config.seed=-1'], ['config.seed=-1']),
    (['--config.train.batch_size=100000000'], ['GiB']),
], ids=['activation', 'seed', 'memory'])
def test_bad_input_into_a_new_workdir_creates_nothing(overrides, words, tmp_path, capsys):
  # The models and the data are checked before checkpoints/ is created.
  code, err = cli(['--config', RING, '--workdir', str(tmp_path / 'new'), *overrides],
                  capsys)
  assert_clean_error(code, err, *words)
  assert not (tmp_path / 'new').exists()


@pytest.mark.parametrize('overrides,words', BAD_INPUT, ids=[' '.join(b[0]) for b in BAD_INPUT])
def test_bad_input_is_one_named_paragraph_and_touches_nothing(
    overrides, words, populated_workdir, no_training, capsys):
  before = snapshot(populated_workdir)
  code, err = cli(['--config', RING, '--workdir', str(populated_workdir), *overrides],
                  capsys)
  assert_clean_error(code, err, *words)
  assert snapshot(populated_workdir) == before


def test_a_mixture_too_big_to_evaluate_is_rejected_before_its_modes_are_built(
    populated_workdir, no_training, monkeypatch, capsys):
  # 10^9 modes x 2,500 samples of distances: 9 TiB. Building the 10^9 centres
  # first took 15 s and 28 GB before the message (10^8: 2.8 GB).
  monkeypatch.setattr(mixtures, 'modes', lambda *a: pytest.fail('built the modes'))
  code, err = cli(['--config', RING, '--workdir', str(populated_workdir),
                   '--config.data.num_modes=1000000000'], capsys)
  assert_clean_error(code, err, 'the evaluation', 'GiB', 'config.eval.num_samples',
                     'config.data.num_modes=1000000000')


def test_batch_not_divisible_by_the_device_count(populated_workdir, no_training,
                                                 monkeypatch, capsys):
  monkeypatch.setattr(jax, 'device_count', lambda: 3)
  monkeypatch.setattr(train, 'make_mesh', lambda: None)
  code, err = cli(['--config', RING, '--workdir', str(populated_workdir)], capsys)
  assert_clean_error(code, err, 'config.train.batch_size=16', '3 devices')


def test_missing_dataset_says_how_to_get_it(tmp_path, no_training, capsys):
  code, err = cli(['--config', FASHION, '--workdir', str(tmp_path / 'w'),
                   f'--config.data.dir={tmp_path / "nowhere"}'], capsys)
  assert_clean_error(code, err, str(tmp_path / 'nowhere'))
  assert not (tmp_path / 'w' / 'config.json').exists()


def test_missing_classifier_is_an_error_before_anything_is_written(tmp_path, no_training,
                                                                   capsys):
  code, err = cli(['--config', FASHION, '--workdir', str(tmp_path / 'w'),
                   f'--config.eval.classifier={tmp_path / "no_classifiers"}'], capsys)
  assert_clean_error(code, err, 'no_classifiers', 'gan_jax.classifier')
  assert not (tmp_path / 'w').exists() or not any((tmp_path / 'w').iterdir())


def test_missing_config_file_and_flags(tmp_path, capsys):
  code, err = cli(['--config', str(tmp_path / 'nope.py'), '--workdir', str(tmp_path)], capsys)
  assert_clean_error(code, err, 'nope.py', 'No such file')
  code, err = cli(['--workdir', str(tmp_path)], capsys)
  assert_clean_error(code, err, '--config is required')


def test_workdir_defaults_to_runs_config_name(tmp_path, monkeypatch, no_training, capsys):
  assert main.default_workdir('experiments/ring8.py') == 'runs/ring8'
  assert main.default_workdir('experiments/stacked_mnist.py:half,quick') == (
      'runs/stacked_mnist_half_quick')
  monkeypatch.chdir(tmp_path)
  with pytest.raises(AssertionError, match='a bad config reached training'):
    cli(['--config', RING], capsys)  # gets past the flags, into the loop
  assert 'writing to --workdir=runs/ring8_quick' in capsys.readouterr().err


@pytest.mark.parametrize('make_workdir,words', [
    (lambda d: '', ['--workdir is empty']),
    (lambda d: str(d / 'a_file'), ['is a file, not a directory']),
    (lambda d: str(d / 'a_file' / 'below'), ['lies under', 'a_file', 'which is a file']),
    (lambda d: str(d / ('x' * 300)), ['300 bytes', 'the filesystem allows']),
])
def test_bad_workdir_is_a_named_error_before_anything_is_written(
    make_workdir, words, tmp_path, no_training, capsys):
  (tmp_path / 'a_file').write_text('keep me')
  before = snapshot(tmp_path)
  code, err = cli(['--config', RING, f'--workdir={make_workdir(tmp_path)}'], capsys)
  assert_clean_error(code, err, *words)
  assert snapshot(tmp_path) == before


@pytest.mark.parametrize('spec,words', [
    ('ring8.py:quik', ["variant 'quik' does not exist; valid variants: 'quick'"]),
    ('grid25.py:quick,extra', ["variant 'extra' does not exist"]),
    ('mode_collapse_ring.py:veegan', ["variant 'veegan'", '25-mode grid only'])])
def test_unknown_config_variant_lists_the_valid_ones(spec, words, tmp_path, capsys):
  path = os.path.join(os.path.dirname(RING.split(':')[0]), spec)
  code, err = cli(['--config', path, '--workdir', str(tmp_path / 'w')], capsys)
  assert_clean_error(code, err, *words)
  assert not (tmp_path / 'w').exists()


@pytest.mark.parametrize('damage', ['truncate', 'delete', 'interrupted_save'])
def test_corrupted_checkpoint_is_named_and_kept(damage, populated_workdir, tmp_path,
                                                no_training, capsys):
  workdir = tmp_path / 'w'
  shutil.copytree(populated_workdir, workdir)
  step_dir = workdir / 'checkpoints' / '10'
  files = sorted(p for p in step_dir.rglob('*') if p.is_file() and p.stat().st_size > 0)
  if damage == 'truncate':
    for p in files:
      p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
  elif damage == 'delete':
    for p in files:
      if 'metadata' not in p.name:
        p.unlink()
  else:  # a save killed half-way leaves only orbax's temporary directory.
    step_dir.rename(workdir / 'checkpoints' / '10.orbax-checkpoint-tmp-1234')
  before = snapshot(workdir)
  code, err = cli(['--config', RING, '--workdir', str(workdir)], capsys)
  assert_clean_error(code, err, str(workdir / 'checkpoints'), 'nothing was overwritten')
  assert snapshot(workdir) == before


# ---------------------------------------------------------------------------
# Fuzz: many random bad overrides, each a clean error.
# ---------------------------------------------------------------------------

CHOICE_FIELDS = ['loss', 'model.name', 'data.name', 'update_order', 'model.latent_distribution',
                 'model.minibatch', 'optim.g.name', 'optim.d.name', 'model.out_activation',
                 'model.g_activation', 'model.d_activation']
OUT_OF_RANGE = {
    'train.batch_size': ['0', '-16'], 'train.num_steps': ['0', '-1'],
    'train.log_every': ['0'], 'train.eval_every': ['-5'], 'train.checkpoint_every': ['0'],
    'train.keep_checkpoints': ['0'], 'd_steps': ['0', '-2'], 'model.pack': ['0', '-1', '5'],
    'model.latent_dim': ['0', '-3'], 'optim.g.lr': ['0', '-0.001'], 'optim.d.lr': ['-1'],
    'optim.g.b1': ['1.5', '-0.1'], 'optim.d.b2': ['1.0'], 'unroll.steps': ['-1'],
    'seed': ['-7'], 'label_smoothing': ['1.0', '-0.2'], 'label_noise': ['-0.1'],
    'ema_decay': ['1.0', '2.0', '-0.5'], 'penalty.r1': ['-1.0'], 'penalty.gradient': ['-10.0'],
    'penalty.weight_clip': ['-0.01'], 'instance_noise.std': ['-1.0'],
    'data.num_modes': ['0', '-8'], 'data.std': ['-0.01'], 'data.radius': ['0.0', '-1.0'],
    'eval.num_samples': ['0'], 'model.g_widths': ['(0,)', '(-4, 8)', '("a",)'],
    'model.d_widths': ['(16, 0)'], 'model.d_dropout': ['1.0', '-0.5'],
}


def _misspell(name: str, rng: random.Random) -> str:
  i = rng.randrange(len(name))
  op = rng.choice(['drop', 'double', 'swap', 'replace'])
  if op == 'drop' and len(name) > 2:
    return name[:i] + name[i + 1:]
  if op == 'double':
    return name[:i] + name[i] + name[i:]
  if op == 'swap' and i + 1 < len(name) and name[i] != name[i + 1]:
    return name[:i] + name[i + 1] + name[i] + name[i + 2:]
  return name[:i] + rng.choice('xqzjk') + name[i + 1:]


def _bad_overrides(config, rng: random.Random, n: int):
  fields = {path: kind for path, kind, _ in config_fields(config)}
  cases = []
  while len(cases) < n:
    kind = rng.choice(['misspelt', 'type', 'choice', 'range'])
    if kind == 'misspelt':
      path = rng.choice(sorted(fields))
      parts = path.split('.')
      part = rng.randrange(len(parts))
      parts[part] = _misspell(parts[part], rng)
      bad = '.'.join(parts)
      if bad in fields or any(f.startswith(bad + '.') for f in fields):
        continue
      cases.append((f'--config.{bad}={rng.choice(["1", "x", "0.5"])}', parts[part]))
    elif kind == 'type':
      path = rng.choice(sorted(p for p, t in fields.items() if t in (int, float, bool)))
      value = rng.choice(['abc', '1e', '[1, 2]', '{}', 'None,']) if fields[path] is not bool \
          else rng.choice(['maybe', '2', 'yes please'])
      if fields[path] is int and rng.random() < 0.3:
        value = '2.5'
      cases.append((f'--config.{path}={value}', path.split('.')[-1]))
    elif kind == 'choice':
      path = rng.choice([p for p in CHOICE_FIELDS if p in fields])
      value = rng.choice(['bogus', 'GAN', 'minimax ', 'relu6', 'ADAM', ''])
      cases.append((f'--config.{path}={value}', None))
    else:
      path = rng.choice([p for p in OUT_OF_RANGE if p in fields])
      cases.append((f'--config.{path}={rng.choice(OUT_OF_RANGE[path])}', path.split('.')[-1]))
  return cases


def test_fuzzed_bad_overrides_always_give_a_clean_named_error(populated_workdir, no_training,
                                                               capsys):
  fv = parsed(['--config', RING, '--workdir', str(populated_workdir)])
  before = snapshot(populated_workdir)
  rng = random.Random(1234)
  cases = _bad_overrides(fv.config, rng, 60)
  assert len({c for c, _ in cases}) > 40
  for override, name in cases:
    code, err = cli(['--config', RING, '--workdir', str(populated_workdir), override], capsys)
    assert code == main.EXIT_ERROR, (override, err)
    message = err.strip()
    assert message.startswith('gan_jax: error: '), (override, err)
    assert '\n' not in message and 'Traceback' not in message, (override, err)
    if name is not None:
      assert name.strip() in message, (override, err)
  assert snapshot(populated_workdir) == before


def test_rerunning_a_finished_run_changes_nothing(preempted_and_resumed, no_training, capsys):
  r = preempted_and_resumed
  before = snapshot(r['fresh'])
  code, _ = cli(['--config', RING, '--workdir', str(r['fresh']), *TINY,
                 '--config.train.log_every=1', f'--config.train.num_steps={r["num_steps"]}',
                 '--config.train.checkpoint_every=1000', '--config.train.eval_every=1000'],
                capsys)
  assert code == 0
  assert snapshot(r['fresh']) == before
