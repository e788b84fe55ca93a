"""What every entry point does with an exception it did not expect: a bug, not bad input.

Bad input (a ValueError and its kin) is the user's to fix, and each CLI prints
it as one paragraph and exits with code 2. Anything else is a bug in gan_jax;
the user still gets one paragraph on stderr, never a traceback, saying what
the exception was and where its full traceback went:

    gan_jax: internal error (a bug in gan_jax, not in your input): ZeroDivisionError:
    division by zero. The full traceback is in runs/x/error.log; please include it
    in a bug report.

The traceback is appended to `<workdir>/error.log` when the workdir is an
existing, writable directory (so it stays with the run it belongs to), else
written to a fresh temporary file (`tempfile.mkstemp`, prefix gan_jax-error-).
The exit code is `EXIT_BUG` (1).

Usage, in an entry point's top-level handler (after the bad-input clauses):

    except Exception as e:  # pylint: disable=broad-except
      return errors.report_bug(e, program='gan_jax.sample', workdir=FLAGS.workdir)
"""

from __future__ import annotations

import datetime
import os
import sys
import tempfile
import traceback
from typing import Sequence, TextIO

EXIT_BUG = 1
LOG_NAME = 'error.log'
TEMP_PREFIX = 'gan_jax-error-'
# The exception's message is cut to this many characters in the paragraph (the
# whole message is in the log).
MAX_MESSAGE = 600


def _one_paragraph(text: str) -> str:
  return ' '.join(str(text).split())


def _log_text(error: BaseException, program: str, argv: Sequence[str] | None) -> str:
  stamp = datetime.datetime.now().isoformat(timespec='seconds')
  command = ' '.join(sys.argv if argv is None else argv)
  return (f'=== {stamp} {program}: {type(error).__name__}\n'
          f'command: {command}\n'
          + ''.join(traceback.format_exception(type(error), error, error.__traceback__))
          + '\n')


def write_traceback(error: BaseException, *, program: str = 'gan_jax',
                    workdir: str | None = None,
                    argv: Sequence[str] | None = None) -> str | None:
  """Writes `error`'s traceback; returns the file's path, or None if none could be written.

  `<workdir>/error.log` (appended) if `workdir` is an existing writable
  directory, else a new temporary file.
  """
  text = _log_text(error, program, argv)
  if workdir and os.path.isdir(workdir) and os.access(workdir, os.W_OK | os.X_OK):
    path = os.path.join(workdir, LOG_NAME)
    try:
      with open(path, 'a', encoding='utf-8') as f:
        f.write(text)
      return path
    except OSError:
      pass  # e.g. error.log is a directory, or the disk is full: try /tmp.
  try:
    fd, path = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix='.log', text=True)
    with os.fdopen(fd, 'w', encoding='utf-8') as f:
      f.write(text)
    return path
  except OSError:
    return None


def report_bug(error: BaseException, *, program: str = 'gan_jax',
               workdir: str | None = None, argv: Sequence[str] | None = None,
               stream: TextIO | None = None) -> int:
  """Reports an unexpected exception as one paragraph; returns EXIT_BUG.

  Args:
    error: the exception (with its __traceback__).
    program: the entry point's name, the paragraph's prefix ('gan_jax.sample').
    workdir: the run's directory, where error.log goes if it can.
    argv: the command line to record in the log (default sys.argv).
    stream: where the paragraph goes (default sys.stderr).
  """
  path = write_traceback(error, program=program, workdir=workdir, argv=argv)
  message = _one_paragraph(error) or '(no message)'
  if len(message) > MAX_MESSAGE:
    message = message[:MAX_MESSAGE] + '...'
  where = (f'The full traceback is in {path}; please include it in a bug report.'
           if path else 'No traceback file could be written (no writable workdir or '
           'temporary directory; set TMPDIR to one to keep it).')
  print(f'{program}: internal error (a bug in gan_jax, not in your input): '
        f'{type(error).__name__}: {message}. {where}', file=stream or sys.stderr)
  return EXIT_BUG
