"""Fuzz of every entry point's bad input: a clean named error, and nothing written.

The bad command lines come from a grammar over the fields of the real configs
(every experiments/*.py is loaded and walked), with a fixed seed. Classes:

  typo        a misspelt field name at every level of the path (drop, double,
              swap or replace a letter), and a Unicode homoglyph in the name;
  leaf        an override that reaches into a value (--config.loss.name=x);
  type        a value of the wrong type for int, float, bool and tuple fields;
  range       numbers just outside each field's interval (factory._RANGES, the
              loop's positive fields, the data's and the models' own bounds);
  huge        10**11..10**20 for every size (batch, samples, widths, modes,
              steps, seeds): must fail up front, not in XLA;
  nonfinite   nan, inf and -inf for every float field;
  choice      empty, unknown, Unicode, mis-cased and padded values of every
              field with a fixed set of choices (loss, model, data, optimizer,
              activations, init, minibatch, update order, game, ...);
  string      empty and non-existent paths for data directories, TFDS names
              and the evaluation classifier;
  variant     unknown config variants of every experiment file;
  workdir     --workdir empty, a file, under a file, too long a name, in an
              unwritable directory;
  flags       unknown flags, a missing or absent config file, bad
              --num_processes / --process_id.

In-process (>= 500 cases, `main.parse_flags`, `main.check_flags` and `main.run`
with training refused, the path of `python -m gan_jax.main` up to compiling a
step) each case must raise `main.CommandLineError` or make `main.run` return
exit code 2, with one paragraph naming the field, flag or file, and leave a
populated workdir byte-identical (a new workdir must not come into being).
As real subprocesses (>= 18: gan_jax.main, gan_jax.sample, gan_jax.evaluation,
gan_jax.classifier; two at a time) the same, with exit code 2, and no
'Traceback' anywhere in stdout or stderr.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import glob
import hashlib
import io
import os
import pathlib
import random
import subprocess
import sys

from absl import flags
import jax
import ml_collections
import pytest

from gan_jax import checkpointing
from gan_jax import config_base
from gan_jax import factory
from gan_jax import input_pipeline
from gan_jax import losses
from gan_jax import main
from gan_jax import steps
from gan_jax import train
from gan_jax import workdir as workdir_lib
from gan_jax.models import layers
from conftest import config_fields

# One worker under pytest-xdist (--dist loadgroup): the module's fixtures are built once.
pytestmark = pytest.mark.xdist_group('test_fuzz')

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted(glob.glob(str(ROOT / 'experiments' / '*.py')))
RING = str(ROOT / 'experiments' / 'ring8.py') + ':quick'
SEED = 20240611
NUM_IN_PROCESS = 1200

# Fields gan_jax.main never reads (the sweep and the vanishing study's own).
NOT_READ_BY_MAIN = ('sweep.', 'vanishing.')

# Every field with a fixed set of choices, and the set (from the code).
CHOICES = {
    'loss': tuple(losses.LOSSES),
    'model.name': ('mlp', 'cgan_mlp', 'dcgan'),
    'data.name': tuple(input_pipeline.NAMES),
    'data.base.name': tuple(input_pipeline.NAMES),
    'update_order': steps.UPDATE_ORDERS,
    'game.method': steps.GAMES,
    'model.latent_distribution': steps.LATENT_DISTRIBUTIONS,
    'model.minibatch': layers.MINIBATCH_KINDS,
    'model.init': layers.INITS,
    'model.out_activation': layers.OUT_ACTIVATIONS,
    'model.g_activation': tuple(layers.ACTIVATIONS),
    'model.d_activation': tuple(layers.ACTIVATIONS),
    'optim.g.name': factory.OPTIMIZERS,
    'optim.d.name': factory.OPTIMIZERS,
}
BOGUS_CHOICES = ['', 'bogus', ' ', 'ρing', 'адам', '🙂', 'none_', 'x' * 300]

# Out-of-range values of fields outside factory._RANGES, by path.
OUT_OF_RANGE = {
    'train.batch_size': ['0', '-16'], 'train.num_steps': ['0', '-1'],
    'train.log_every': ['0', '-3'], 'train.eval_every': ['0', '-5'],
    'train.checkpoint_every': ['0'], 'train.keep_checkpoints': ['0', '-1'],
    'd_steps': ['0', '-2'], 'model.pack': ['0', '-1'], 'unroll.steps': ['-1'],
    'seed': ['-7', '-1'], 'data.num_modes': ['0', '-8'], 'data.std': ['-0.01'],
    'data.radius': ['0.0', '-1.0'], 'data.grid_size': ['0', '-5'],
    'data.spacing': ['0.0', '-2.0'], 'data.train_size': ['-1'],
    'model.g_widths': ['(0,)', '(-4, 8)'], 'model.d_widths': ['(16, 0)', '(-1,)'],
    'model.d_dropout': ['1.0', '-0.5', '(1.5,)'], 'model.g_dropout': ['1.0', '-0.1'],
    'model.init_scale': ['0.0', '-1.0'], 'model.d_maxout_pieces': ['-1'],
    'model.base_width': ['0', '-64'], 'model.d_base_width': ['0'],
    'data.value_range': ['(1.0, -1.0)', '(0.5, 0.5)'],
}
# Sizes: a huge value cannot fit anywhere (10**11 float32 = 400 GB and up).
SIZES = ['train.batch_size', 'eval.num_samples', 'model.latent_dim', 'data.num_modes',
         'data.grid_size', 'd_steps', 'unroll.steps', 'model.base_width',
         'model.d_base_width', 'data.train_size', 'model.d_maxout_pieces', 'seed',
         'train.num_steps', 'optim.g.decay_steps', 'optim.d.decay_steps',
         'instance_noise.decay_steps', 'model.g_widths', 'model.d_widths', 'model.pack']
# A huge size may be named as a group in the memory check's message.
SIZE_GROUP = {'model.g_widths': 'model widths', 'model.d_widths': 'model widths',
              'model.base_width': 'model widths', 'model.d_base_width': 'model widths'}
PATH_FIELDS = {'data.dir': ['', '/nonexistent/ρ/idx'], 'data.base.dir': ['', '/nonexistent'],
               'data.tfds_name': ['', 'no_such_dataset_ρ'],
               'data.base.tfds_name': ['no_such_dataset']}


def snapshot(path: pathlib.Path) -> dict[str, str]:
  """Every file under `path` -> sha256 of its bytes (directories by name)."""
  out = {}
  for p in sorted(path.rglob('*')):
    key = str(p.relative_to(path))
    out[key] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else 'dir'
  return out


def _references(config, prefix=''):
  """(path, FieldReference) of every field that is a reference (get_ref)."""
  for key in config.keys():
    field = config._fields[key]  # pylint: disable=protected-access
    if hasattr(field, 'items'):
      yield from _references(field, f'{prefix}{key}.')
    elif isinstance(field, ml_collections.FieldReference):
      yield f'{prefix}{key}', field


def _misspell(name: str, rng: random.Random) -> str:
  i = rng.randrange(len(name))
  op = rng.choice(['drop', 'double', 'swap', 'replace', 'homoglyph'])
  if op == 'drop' and len(name) > 2:
    return name[:i] + name[i + 1:]
  if op == 'double':
    return name[:i] + name[i] + name[i:]
  if op == 'swap' and i + 1 < len(name) and name[i] != name[i + 1]:
    return name[:i] + name[i + 1] + name[i] + name[i + 2:]
  if op == 'homoglyph':  # Cyrillic look-alikes of a, e, o, p, c.
    table = {'a': 'а', 'e': 'е', 'o': 'о', 'p': 'р', 'c': 'с'}
    spots = [j for j, ch in enumerate(name) if ch in table]
    if spots:
      j = rng.choice(spots)
      return name[:j] + table[name[j]] + name[j + 1:]
  return name[:i] + rng.choice('xqzjk') + name[i + 1:]


class Case:
  """One bad command line: its class, argv after the program, the words to name."""

  def __init__(self, kind: str, args: list[str], names: list[str] | tuple, *,
               spec: str = RING, workdir: str = 'populated'):
    self.kind, self.args, self.names, self.spec, self.workdir = (
        kind, args, list(names), spec, workdir)

  def argv(self, populated: pathlib.Path, root: pathlib.Path) -> list[str]:
    wd = {'populated': str(populated), 'new': str(root / 'never_created')}.get(
        self.workdir, self.workdir)
    out = ['--config', self.spec] if self.spec else []
    if self.workdir != 'none':
      out.append(f'--workdir={wd}')
    return out + self.args

  def __repr__(self):
    return f'{self.kind}: {self.spec} {" ".join(self.args)} (workdir {self.workdir})'


class Experiment:
  """A config file, its config, and whether its data are here (for the deep cases)."""

  def __init__(self, path: str):
    self.path = path
    self.name = os.path.basename(path)
    self.config = config_base.load_config(path)
    try:
      input_pipeline.get_info(self.config.data)
      self.data_here = True
    except (FileNotFoundError, ValueError):
      self.data_here = False
    self.fields = {p: (t, v) for p, t, v in config_fields(self.config)}
    # Fields that share one FieldReference (decay_steps = num_steps): setting
    # one sets all, and the error may name any of them.
    self.linked = {}
    for path, ref in _references(self.config):
      self.linked.setdefault(id(ref), []).append(path.split('.')[-1])
    self.aliases = {path: tuple(self.linked[id(ref)]) for path, ref in
                    _references(self.config)}
    # A classifier off: image configs would otherwise need runs/classifiers.
    self.base = [] if self.config.data.name in input_pipeline.MIXTURE_NAMES else [
        '--config.eval.classifier=']


def _leaf_cases(exp: Experiment, rng: random.Random) -> list[Case]:
  """Cases that reach the loop's validation: type, range, huge, nonfinite, choice, string."""
  cases = []
  for path, (kind, value) in sorted(exp.fields.items()):
    if path.startswith(NOT_READ_BY_MAIN):
      continue
    leaf = path.split('.')[-1]
    opt = f'--config.{path}'
    # Wrong types.
    if kind is bool:
      for v in ('maybe', '2', 'Ture'):
        cases.append(Case('type', [f'{opt}={v}'], [leaf], spec=exp.path))
    elif kind is int:
      for v in ('abc', '2.5', '[1, 2]', '{}'):
        cases.append(Case('type', [f'{opt}={v}'], [leaf], spec=exp.path))
    elif kind is float:
      for v in ('abc', '1e', '[0.5]', '0.1.2'):
        cases.append(Case('type', [f'{opt}={v}'], [leaf], spec=exp.path))
    # The rest is checked after the data's info is read: only for data that is here.
    if not exp.data_here:
      continue
    if kind is float:
      for v in ('nan', 'inf', '-inf'):
        cases.append(Case('nonfinite', [f'{opt}={v}'], [leaf], spec=exp.path))
    if kind is tuple and path in ('model.g_widths', 'model.d_widths'):
      for v in ('("a",)', '(1.5, 2)', '(nan,)'):
        cases.append(Case('type', [f'{opt}={v}'], [leaf], spec=exp.path))
    if path in CHOICES:
      mangled = [value.upper(), ' ' + value, value + '_'] if value else []
      for v in BOGUS_CHOICES + mangled:
        if v not in CHOICES[path]:
          cases.append(Case('choice', [f'{opt}={v}'], [], spec=exp.path))
    for v in PATH_FIELDS.get(path, ()):
      cases.append(Case('string', [f'{opt}={v}'], [] if v == '' else [v], spec=exp.path))
    # Ranges: the factory's own table, then the rest.
    for rpath, low, high, low_open, high_open in factory._RANGES:  # pylint: disable=protected-access
      if rpath != path:
        continue
      bad = []
      if low is not None:
        bad.append(low if low_open else low - (1 if kind is int else 0.5))
      if high is not None:
        bad.append(high if high_open else high + (1 if kind is int else 0.5))
      for v in bad:
        cases.append(Case('range', [f'{opt}={v}'], [leaf], spec=exp.path))
    for v in OUT_OF_RANGE.get(path, ()):
      cases.append(Case('range', [f'{opt}={v}'], [leaf], spec=exp.path))
    if path in SIZES:
      for k in rng.sample(range(11, 21), 3):
        v = f'({10**k},)' if kind is tuple else str(10**k)
        cases.append(Case('huge', [f'{opt}={v}'], [(leaf, SIZE_GROUP.get(path, leaf))],
                          spec=exp.path))
  if exp.data_here and exp.base:  # an image config: a classifier that is not there
    # (With eval.train_classifier_epochs > 0 a missing classifier is trained, not an error.)
    cases.append(Case('string', ['--config.eval.classifier=/nonexistent_clf',
                                 '--config.eval.train_classifier_epochs=0'],
                      ['/nonexistent_clf'], spec=exp.path))
  for case in cases:
    path = case.args[0].split('=', 1)[0][len('--config.'):]
    if path in exp.aliases and len(exp.aliases[path]) > 1:
      leaf = path.split('.')[-1]
      case.names = [tuple(n if isinstance(n, tuple) else (n,)) + exp.aliases[path]
                    if leaf in (n if isinstance(n, tuple) else (n,)) else n
                    for n in case.names]
    if 'eval.classifier' not in case.args[0]:
      case.args = exp.base + case.args
  return cases


def _parse_cases(exp: Experiment, rng: random.Random, n: int) -> list[Case]:
  """Typos at every level and overrides into leaves: errors of the parser itself."""
  cases = []
  paths = sorted(exp.fields)
  fields = set(paths)
  groups = {p.rsplit('.', 1)[0] for p in paths if '.' in p}
  tries = 0
  while len(cases) < n and tries < 50 * n:
    tries += 1
    path = rng.choice(paths)
    parts = path.split('.')
    level = rng.randrange(len(parts))
    parts[level] = _misspell(parts[level], rng)
    bad = '.'.join(parts)
    if bad in fields or bad in groups or any(f.startswith(bad + '.') for f in fields):
      continue
    cases.append(Case('typo', [f'--config.{bad}={rng.choice(["1", "x", "0.5"])}'],
                      [parts[level]], spec=exp.path))
  for path in rng.sample(paths, 3):
    cases.append(Case('leaf', [f'--config.{path}.value=1'], [f'config.{path}'],
                      spec=exp.path))
  return cases


def _global_cases(root: pathlib.Path) -> list[Case]:
  """Variants, workdirs and flags."""
  cases = []
  for path in EXPERIMENTS:
    for variant in ('quik', 'ρ', 'quick,nonexistent', 'QUICK'):
      cases.append(Case('variant', [], [variant.split(',')[-1]], spec=f'{path}:{variant}',
                        workdir='new'))
  a_file = root / 'a_file'
  unwritable = '/proc/1' if os.geteuid() == 0 else str(root / 'read_only')
  for wd, names in [('', ['--workdir is empty']), (str(a_file), ['is a file']),
                    (str(a_file / 'below'), ['lies under', 'a_file']),
                    (str(root / ('x' * 300)), ['300 bytes']),
                    (str(root / 'ok' / ('y' * 256) / 'z'), ['256 bytes']),
                    (os.path.join(unwritable, 'run'), ['not writable']),
                    (os.path.join(unwritable, 'a', 'b'), ['not writable'])]:
    cases.append(Case('workdir', [], names, workdir=wd))
  for args, names in [(['--bogus_flag=1'], ['bogus_flag']),
                      (['--num_processes=0'], ['--process_id']),
                      (['--process_id=3'], ['--process_id=3']),
                      (['--num_processes=2', '--process_id=1'], ['--coordinator_address']),
                      (['--num_processes=abc'], ['num_processes'])]:
    cases.append(Case('flags', args, names))
  cases.append(Case('flags', [], ['--config is required'], spec=None))
  cases.append(Case('flags', [], ['nope.py'], spec=str(ROOT / 'experiments' / 'nope.py')))
  return cases


@pytest.fixture(scope='module')
def experiments():
  return [Experiment(path) for path in EXPERIMENTS]


@pytest.fixture(scope='module')
def fuzz_root(tmp_path_factory):
  """A workdir with a ring8:quick checkpoint, config and log; a file; a read-only dir."""
  root = tmp_path_factory.mktemp('fuzz')
  workdir = root / 'populated'
  fv = _parsed(['--config', RING, '--workdir', str(workdir)])
  info = input_pipeline.get_info(fv.config.data)
  spec = factory.build_spec(fv.config, info)
  ckpt = checkpointing.Checkpointer(str(workdir / 'checkpoints'))
  ckpt.save(10, steps.init_state(spec, jax.random.PRNGKey(0), info.shape))
  ckpt.close()
  workdir_lib.write_config(fv.config, str(workdir))
  (workdir / 'metrics.jsonl').write_text('{"step": 10, "train/d_loss": 1.0}\n')
  (root / 'a_file').write_text('keep me')
  (root / 'read_only').mkdir()
  (root / 'read_only').chmod(0o500)
  yield root
  (root / 'read_only').chmod(0o700)


@pytest.fixture(scope='module')
def cases(experiments, fuzz_root):
  rng = random.Random(SEED)
  out = _global_cases(fuzz_root)
  for exp in experiments:
    out += _leaf_cases(exp, rng)
    out += _parse_cases(exp, rng, 12)
  return out


def _stratified(cases: list[Case], n: int, rng: random.Random) -> list[Case]:
  """About n cases: every case of the small classes, an equal share of the large ones."""
  by_kind = {}
  for case in cases:
    by_kind.setdefault(case.kind, []).append(case)
  small = [k for k, v in by_kind.items() if len(v) <= 60]
  chosen = [c for k in small for c in by_kind[k]]
  large = sorted(k for k in by_kind if k not in small)
  share = max(1, (n - len(chosen)) // max(1, len(large)))
  for kind in large:
    chosen += rng.sample(by_kind[kind], min(share, len(by_kind[kind])))
  return chosen


def _parsed(args: list[str]) -> flags.FlagValues:
  argv = ['gan_jax'] + args
  fv = flags.FlagValues()
  main.define_flags(fv, argv)
  main.parse_flags(argv, fv)
  return fv


def _in_process(argv_tail: list[str]) -> tuple[int | None, str]:
  """(exit code, stderr) of gan_jax.main's path up to compiling a step; None = no error."""
  argv = ['gan_jax'] + argv_tail
  err, out = io.StringIO(), io.StringIO()
  with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
    try:
      fv = flags.FlagValues()
      main.define_flags(fv, argv)
      main.parse_flags(argv, fv)
      main.check_flags(fv)
    except main.CommandLineError as e:
      return main.EXIT_ERROR, f'gan_jax: error: {e}'
    code = main.run(fv.config, fv.workdir)
  text = err.getvalue()
  return code, text[text.rfind('gan_jax: '):] if 'gan_jax: ' in text else text


def _problems(case: Case, code, err: str, out: str = '') -> list[str]:
  message = err.strip()
  found = []
  if code != main.EXIT_ERROR:
    found.append(f'exit code {code}')
  if 'Traceback' in err or 'Traceback' in out:
    found.append('a traceback')
  if '\n' in message:
    found.append(f'{message.count(chr(10)) + 1} lines')
  if not message.startswith(('gan_jax: error: ', 'gan_jax.sample: error: ',
                             'gan_jax.evaluation: error: ', 'gan_jax.classifier: error: ')):
    found.append('no "error:" prefix')
  for name in case.names:
    alternatives = name if isinstance(name, tuple) else (name,)
    if not any(a.strip() in message for a in alternatives):
      found.append(f'does not name {alternatives}')
  return found


def test_fuzzed_command_lines_in_process(cases, fuzz_root, monkeypatch):
  def refuse(*args, **kwargs):
    raise AssertionError('a bad config reached training')
  monkeypatch.setattr(train, 'make_step_fn', refuse)
  populated = fuzz_root / 'populated'
  before, before_root = snapshot(populated), sorted(os.listdir(fuzz_root))
  chosen = _stratified(cases, NUM_IN_PROCESS, random.Random(SEED + 1))
  assert len(chosen) >= 500
  kinds = {c.kind for c in chosen}
  assert kinds >= {'typo', 'leaf', 'type', 'range', 'huge', 'nonfinite', 'choice', 'string',
                   'variant', 'workdir', 'flags'}, kinds
  failures = []
  for case in chosen:
    try:
      code, err = _in_process(case.argv(populated, fuzz_root))
    except Exception as e:  # pylint: disable=broad-except
      failures.append(f'{case}: raised {type(e).__name__}: {" ".join(str(e).split())[:300]}')
      continue
    problems = _problems(case, code, err)
    after = snapshot(populated)
    if after != before:
      problems.append('changed the populated workdir')
      before = after
    if os.path.exists(fuzz_root / 'never_created') or sorted(os.listdir(fuzz_root)) != \
        before_root:
      problems.append('created a workdir')
    if problems:
      failures.append(f'{case}: {", ".join(problems)}: {err.strip()[:300]}')
  assert not failures, f'{len(failures)} of {len(chosen)} cases:\n' + '\n'.join(failures[:40])


# ---------------------------------------------------------------------------
# Real processes.
# ---------------------------------------------------------------------------


def _subprocess_cases(cases: list[Case], fuzz_root: pathlib.Path) -> list[tuple]:
  """(module, argv tail, case) for the real processes: gan_jax.main and the other CLIs."""
  rng = random.Random(SEED + 2)
  populated = str(fuzz_root / 'populated')
  # The in-process test runs gan_jax.main's own code path on 1,200 cases; these
  # few check what only a real process shows (exit code, no traceback from
  # absl or an import). Failures before JAX starts (the parser, the workdir)
  # cost 0.5 s a process, the deeper ones 5-10 s.
  shallow = [c for c in cases if c.kind in ('typo', 'leaf', 'type', 'variant', 'workdir',
                                            'flags')]
  deep = [c for c in cases if c.kind in ('range', 'huge', 'nonfinite', 'choice')
          and c.spec == RING.split(':')[0]]
  picked = rng.sample(shallow, 4) + rng.sample(deep, 2)
  out = [('gan_jax.main', c.argv(fuzz_root / 'populated', fuzz_root), c) for c in picked]
  other = [
      ('gan_jax.sample', ['--workdir', str(fuzz_root / 'nowhere')], ['nowhere']),
      ('gan_jax.sample', [f'--workdir={populated}', '--num_samples=0'], ['--num_samples=0']),
      ('gan_jax.sample', [f'--workdir={populated}', '--num_samples=abc'], ['num_samples']),
      ('gan_jax.sample', [f'--workdir={populated}', '--ema'], ['--ema']),
      ('gan_jax.sample', [f'--workdir={populated}', '--labels=a,b'], ['--labels']),
      ('gan_jax.sample', [f'--workdir={populated}', f'--out={fuzz_root / "a_file" / "x"}'],
       ['--out', 'a_file']),
      ('gan_jax.evaluation', ['--config', RING, '--config.trian=1'], ['trian']),
      ('gan_jax.evaluation', ['--config', RING, f'--workdir={fuzz_root / "nowhere"}'],
       ['nowhere']),
      ('gan_jax.evaluation', ['--config', RING, f'--output={fuzz_root / "a_file" / "o.json"}'],
       ['--output']),
      ('gan_jax.classifier', ['--dataset=bogus'], ['dataset']),
      ('gan_jax.classifier', ['--learning_rate=abc'], ['learning_rate']),
      ('gan_jax.classifier', ['--dataset=idx', f'--data_dir={fuzz_root / "nowhere"}',
                              f'--workdir={fuzz_root / "never_created"}'], ['nowhere']),
  ]
  out += [(module, args, Case('cli', args, names, spec=None, workdir='none'))
          for module, args, names in other]
  return out


def _run(module: str, args: list[str]) -> subprocess.CompletedProcess:
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  return subprocess.run([sys.executable, '-m', module, *args], capture_output=True,
                        text=True, timeout=300, cwd=ROOT, env=env, check=False)


def test_fuzzed_command_lines_as_processes(cases, fuzz_root):
  populated = fuzz_root / 'populated'
  before, before_root = snapshot(populated), sorted(os.listdir(fuzz_root))
  runs = _subprocess_cases(cases, fuzz_root)
  assert len(runs) >= 18
  assert {m for m, _, _ in runs} == {'gan_jax.main', 'gan_jax.sample', 'gan_jax.evaluation',
                                     'gan_jax.classifier'}
  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    results = list(pool.map(lambda r: _run(r[0], r[1]), runs))
  failures = []
  for (module, args, case), proc in zip(runs, results):
    problems = _problems(case, proc.returncode, proc.stderr, proc.stdout)
    if problems:
      failures.append(f'{module} {case}: {", ".join(problems)}: {proc.stderr.strip()[-400:]}')
  assert not failures, f'{len(failures)} of {len(runs)} processes:\n' + '\n'.join(failures)
  assert snapshot(populated) == before
  assert sorted(os.listdir(fuzz_root)) == before_root
