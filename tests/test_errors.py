"""A bug in any entry point: one paragraph on stderr, the traceback in a file (gan_jax/errors.py)."""

from __future__ import annotations

import io
import os
import pathlib
import subprocess
import sys
import tempfile

import pytest

from gan_jax import errors

ROOT = pathlib.Path(__file__).resolve().parents[1]
RING = str(ROOT / 'experiments' / 'ring8.py') + ':quick'


def _raise_bug():
  def inner():
    return {}['missing key of a bug']
  try:
    inner()
  except KeyError as e:
    return e
  raise AssertionError('unreachable')


def _assert_one_paragraph(err: str, program: str, path: str | None) -> None:
  message = err.strip()
  assert message.startswith(f'{program}: internal error'), err
  assert '\n' not in message and 'Traceback' not in message, err
  if path is not None:
    assert path in message, err


def test_traceback_goes_to_the_workdir_error_log(tmp_path):
  stream = io.StringIO()
  code = errors.report_bug(_raise_bug(), program='gan_jax', workdir=str(tmp_path),
                           argv=['gan_jax', '--x'], stream=stream)
  assert code == errors.EXIT_BUG == 1
  log = tmp_path / 'error.log'
  _assert_one_paragraph(stream.getvalue(), 'gan_jax', str(log))
  assert "KeyError: 'missing key of a bug'" in stream.getvalue()
  text = log.read_text()
  assert 'Traceback (most recent call last)' in text and 'in inner' in text
  assert 'command: gan_jax --x' in text
  # A second bug is appended, the first kept.
  errors.report_bug(_raise_bug(), workdir=str(tmp_path), stream=io.StringIO())
  assert log.read_text().startswith(text) and log.read_text().count('=== ') == 2


@pytest.mark.parametrize('workdir', ['missing', 'unwritable', None])
def test_without_a_writable_workdir_it_is_a_temporary_file(workdir, tmp_path, monkeypatch):
  monkeypatch.setattr(tempfile, 'tempdir', str(tmp_path / 'tmp'))
  (tmp_path / 'tmp').mkdir()
  if workdir == 'missing':
    workdir = str(tmp_path / 'nowhere')
  elif workdir == 'unwritable':
    workdir = '/proc/1' if os.geteuid() == 0 else str(tmp_path / 'ro')
    if os.geteuid() != 0:
      os.mkdir(workdir, 0o500)
  stream = io.StringIO()
  errors.report_bug(_raise_bug(), program='gan_jax.sample', workdir=workdir, stream=stream)
  logs = list((tmp_path / 'tmp').iterdir())
  assert len(logs) == 1 and logs[0].name.startswith('gan_jax-error-')
  _assert_one_paragraph(stream.getvalue(), 'gan_jax.sample', str(logs[0]))
  assert 'Traceback' in logs[0].read_text()


def test_evaluation_classifier_and_figure_report_bugs(tmp_path, monkeypatch, capsys):
  from gan_jax import classifier, evaluation, theory_figure  # pylint: disable=g-import-not-at-top,g-multiple-import
  monkeypatch.setattr(tempfile, 'tempdir', str(tmp_path))

  def bug(*args, **kwargs):
    raise ZeroDivisionError('a planted bug')
  monkeypatch.setattr(evaluation, 'reference_metrics', bug)
  monkeypatch.setattr(classifier, 'data_config_for', bug)
  monkeypatch.setattr(theory_figure, 'plot_dirac', bug)
  workdir = tmp_path / 'w'
  workdir.mkdir()
  for program, call, log in [
      ('gan_jax.evaluation', lambda: evaluation.main(['--config', RING,
                                                      f'--workdir={workdir}']),
       workdir / 'error.log'),
      ('gan_jax.classifier', lambda: classifier.main([f'--workdir={workdir}']),
       workdir / 'error.log'),
      ('gan_jax.theory_figure', lambda: theory_figure.main(
          ['--dirac', f'--out={tmp_path / "d.png"}']), None)]:
    capsys.readouterr()
    assert call() == errors.EXIT_BUG, program
    err = capsys.readouterr().err
    _assert_one_paragraph(err, program, None if log is None else str(log))
    assert 'ZeroDivisionError: a planted bug' in err
  assert (workdir / 'error.log').read_text().count('ZeroDivisionError') >= 2
  assert any(p.name.startswith('gan_jax-error-') for p in tmp_path.iterdir())


@pytest.mark.parametrize('module,patch,args', [
    ('gan_jax.main', 'gan_jax.train.train_and_evaluate', ['--config', RING]),
    ('gan_jax.sample', 'gan_jax.config_base.load_config', []),
])
def test_main_and_sample_processes_report_bugs(module, patch, args, tmp_path):
  # The real __main__ block of the module, with one function replaced by a bug.
  workdir = tmp_path / 'w'
  workdir.mkdir()
  (workdir / 'config.py').write_text('# sample reads this file\n')
  target, name = patch.rsplit('.', 1)
  code = (f'import importlib, runpy, sys\n'
          f'm = importlib.import_module({target!r})\n'
          f'def bug(*a, **k): raise ZeroDivisionError("a planted bug")\n'
          f'setattr(m, {name!r}, bug)\n'
          f'sys.argv = [{module!r}] + {args + [f"--workdir={workdir}"]!r}\n'
          f'runpy.run_module({module!r}, run_name="__main__", alter_sys=True)\n')
  proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                        timeout=300, cwd=ROOT, check=False)
  assert proc.returncode == errors.EXIT_BUG, proc.stderr[-2000:]
  program = 'gan_jax' if module == 'gan_jax.main' else module
  _assert_one_paragraph(proc.stderr, program, str(workdir / 'error.log'))
  assert 'ZeroDivisionError: a planted bug' in proc.stderr
  assert 'Traceback' in (workdir / 'error.log').read_text()
