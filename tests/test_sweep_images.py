"""The sweep on image data: every (variant, seed) is a gan_jax.main run, tabulated.

A tiny stacked DCGAN (8 x 8 x 3 images of the synthetic IDX dataset, the tiny
evaluation classifier of conftest.py) runs 2 variants x 2 seeds through
`sweep.run_sweep` once per module; the tests read that sweep, rerun it, shard
it and train single seeds of it with `train.train_and_evaluate`.
"""

from __future__ import annotations

import csv
import json
import math
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from gan_jax import config_base
from gan_jax import factory
from gan_jax import image_seeds
from gan_jax import sweep
from gan_jax import train
from gan_jax.datasets import base as data_base

# One worker under pytest-xdist (--dist loadgroup): the session's tiny classifier is trained once.
pytestmark = pytest.mark.xdist_group('tiny_classifier')

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STACKED_FILE = os.path.join(ROOT, 'experiments', 'mode_collapse_stacked.py')
CONDITIONAL = 'model.conditional=True'
VARIANTS = ['model.d_base_width=1', CONDITIONAL]


def _tiny_stacked(tiny_classifier) -> ml_collections.ConfigDict:
  data, classifier_dir, _ = tiny_classifier
  c = config_base.get_base()
  c.data = ml_collections.ConfigDict(dict(name='stacked', base=data.to_dict(),
                                          value_range=(-1.0, 1.0)))
  c.model.update(dict(name='dcgan', conditional=False, latent_dim=8, base_width=4,
                      d_base_width=2, batch_norm=True, out_activation='tanh'))
  c.train.update(dict(batch_size=8, num_steps=4, log_every=2, eval_every=4,
                      checkpoint_every=4))
  c.eval.num_samples = 100
  c.eval.classifier = classifier_dir  # read only: the sweep never trains it
  c.sweep = ml_collections.ConfigDict(dict(protocol='test', num_seeds=2))
  return c


def _sweep(add):
  # The conditional variant has the label accuracy column (of the 1000 modes asked for).
  add(**{'model.d_base_width': 1})
  add(**{'model.conditional': True})


@pytest.fixture(scope='module')
def one_shard(tiny_classifier, tmp_path_factory):
  """(config, workdir, table) of the 2 x 2 sweep run unsharded, once per module."""
  config = _tiny_stacked(tiny_classifier)
  workdir = str(tmp_path_factory.mktemp('image_sweep') / 'one')
  table = sweep.run_sweep(config, _sweep, workdir)
  return config, workdir, table


def _results(workdir: str, row: dict) -> dict:
  with open(os.path.join(workdir, row['workdir'], 'results.json')) as f:
    return json.load(f)


def test_image_sweep_writes_a_row_of_image_metrics_per_seed_run(one_shard):
  _, workdir, table = one_shard
  with open(os.path.join(workdir, 'results.csv'), newline='') as f:
    assert tuple(next(csv.reader(f))) == sweep.IMAGE_CSV_FIELDS
  rows = sweep.all_rows(workdir)
  assert [(r['variant'], int(r['seed'])) for r in rows] == [
      (v, s) for v in VARIANTS for s in (0, 1)]
  for r in rows:
    assert (r['status'], r['step'], r['error']) == ('ok', '4', ''), r
    assert r['workdir'] == os.path.join('runs', sweep._file_name(r['variant']),  # pylint: disable=protected-access
                                        f'seed_{r["seed"]}')
    seed_dir = os.path.join(workdir, r['workdir'])
    for name in ('results.json', 'metrics.jsonl', 'curves.png', 'checkpoints',
                 os.path.join('samples', 'step_0000004.png')):
      assert os.path.exists(os.path.join(seed_dir, name)), (seed_dir, name)
    # The row is the seed run's final evaluation, as results.json has it.
    results = _results(workdir, r)
    for k in ('stacked_modes', 'stacked_kl', 'classifier_fd', 'classifier_score'):
      assert r[k] == f'{results["eval/" + k]:.6g}', (k, r[k])
    assert 1 <= float(r['stacked_modes']) <= 1000
    assert 0 <= float(r['stacked_kl']) <= math.log(1000) + 1e-4
    assert bool(r['label_accuracy']) == (r['variant'] == CONDITIONAL)
    assert r['class_coverage'] == r['class_kl'] == ''  # not for stacked data
  # The seeds are different runs.
  assert rows[0]['classifier_fd'] != rows[1]['classifier_fd']
  lines = table.strip().splitlines()
  assert lines[0] == ('| variant | runs (ok / nan / failed) | label accuracy % | classifier FD | '
                      'stacked modes (of 1000) | stacked KL(modes ‖ uniform) | '
                      'classifier score | steps/s (per seed) |')
  kl = [float(r['stacked_kl']) for r in rows[:2]]
  assert lines[2].startswith(f'| model.d_base_width=1 | 2 / 0 / 0 | - | ')
  assert f'| {np.mean(kl):.3f} ± {np.std(kl, ddof=1):.3f} ' in lines[2]
  with open(os.path.join(workdir, 'results.md')) as f:
    assert f.read().endswith(table)
  assert os.path.getsize(os.path.join(workdir, 'samples.png')) > 0


def test_rerun_resumes_and_runs_nothing(one_shard, monkeypatch):
  config, workdir, _ = one_shard
  before = sweep.all_rows(workdir)

  def no_run(*args, **kwargs):
    raise AssertionError(f'a measured pair ran again: {args[1:]}')
  monkeypatch.setattr(image_seeds, 'run_seed', no_run)
  sweep.run_sweep(config, _sweep, workdir)
  assert sweep.all_rows(workdir) == before


def test_each_seed_workdir_equals_a_plain_main_run(one_shard, tmp_path):
  config, workdir, _ = one_shard
  variants = sweep.expand(_sweep)
  rows = {(r['variant'], int(r['seed'])): r for r in sweep.all_rows(workdir)}
  # One pair (a run costs a compile); the shard test checks that every seed's
  # workdir is reproduced by an independent run.
  for variant, seed in ((variants[1], 1),):
    seed_config = sweep.apply_overrides(config, variant.overrides)
    seed_config.seed = seed
    plain = str(tmp_path / f'plain_{seed}')
    last = train.train_and_evaluate(seed_config, plain)
    swept = _results(workdir, rows[(variant.name, seed)])
    with open(os.path.join(plain, 'results.json')) as f:
      assert json.load(f).keys() == swept.keys()
    assert swept.pop('step') == 4
    assert swept.keys() == last.keys()
    for k, v in last.items():
      np.testing.assert_allclose(swept[k], v, rtol=1e-6, err_msg=k)
    row = rows[(variant.name, seed)]
    for k in image_seeds.METRICS:
      assert row[k] == (f'{last["eval/" + k]:.6g}' if f'eval/{k}' in last else ''), k


def _table_rows(workdir):
  keep = ('variant', 'seed', 'status', 'step') + image_seeds.METRICS + (
      'diverged_at', 'workdir')
  return sorted(tuple(r[k] for k in keep) for r in sweep.all_rows(workdir))


# Slow (~40 s): the shard / merge bookkeeping is the mixtures' one, which
# tests/test_sweep.py checks row for row in CI; this adds the image rows.
@pytest.mark.slow
def test_two_shards_merged_equal_one_shard_row_for_row(one_shard, tmp_path):
  config, one, one_table = one_shard
  two = str(tmp_path / 'two')
  sweep.run_sweep(config, _sweep, two, num_shards=2, shard_index=1)
  _, missing = sweep.merge(two)
  # Pairs (v0,0) (v0,1) (v1,0) (v1,1): shard 1 ran the odd ones.
  assert missing == [(VARIANTS[0], 0), (VARIANTS[1], 0)]
  sweep.run_sweep(config, _sweep, two, num_shards=2, shard_index=0)
  table, missing = sweep.merge(two)
  assert missing == []
  assert sorted(os.listdir(two)) == sorted(
      ['results.shard-000-of-002.csv', 'results.shard-001-of-002.csv', 'results.md',
       'sweep.json', 'runs', 'samples.png'])
  assert _table_rows(two) == _table_rows(one)
  for a, b in zip(sorted(sweep.all_rows(one), key=lambda r: r['workdir']),
                  sorted(sweep.all_rows(two), key=lambda r: r['workdir'])):
    assert _results(one, a) == pytest.approx(_results(two, b), rel=1e-6)
  without_speed = lambda t: [line.rsplit('|', 2)[0] for line in t.strip().splitlines()]
  assert without_speed(table) == without_speed(one_table)
  # A rerun under another layout resumes: every pair is measured, nothing runs.
  sweep.run_sweep(config, _sweep, two)
  assert not os.path.exists(os.path.join(two, 'results.csv'))


def test_failed_and_diverged_seeds_are_rows_too(tiny_classifier, tmp_path):
  config = _tiny_stacked(tiny_classifier)

  def sweep_fn(add):
    add(loss='no_such_loss')                                     # raises: 'failed'
    add(**{'optim.g.lr': 1e38, 'optim.g.name': 'sgd', 'sweep.num_seeds': 1})  # 'nan'
  table = sweep.run_sweep(config, sweep_fn, str(tmp_path))
  rows = sweep.all_rows(str(tmp_path))
  assert [(r['variant'], r['status']) for r in rows] == [
      ('loss=no_such_loss', 'failed'), ('loss=no_such_loss', 'failed'),
      ('optim.g.lr=1e+38,optim.g.name=sgd,sweep.num_seeds=1', 'nan')]
  assert 'no_such_loss' in rows[0]['error']
  assert 'FloatingPointError' in rows[2]['error'] and 1 <= int(rows[2]['diverged_at']) <= 4
  assert all(r[k] == '' for r in rows for k in image_seeds.METRICS)
  assert '| loss=no_such_loss | 0 / 0 / 2 | - |' in table
  assert '| optim.g.lr=1e+38,optim.g.name=sgd,sweep.num_seeds=1 | 0 / 1 / 0 | - |' in table


def test_a_mixture_results_file_is_not_appended_to(tiny_classifier, tmp_path):
  sweep.append_rows(str(tmp_path / 'results.csv'), [])
  with pytest.raises(ValueError, match='not those of an image sweep'):
    sweep.run_sweep(_tiny_stacked(tiny_classifier), _sweep, str(tmp_path))


STACKED_INFO = data_base.DataInfo(shape=(28, 28, 3), num_classes=1000,
                                  value_range=(-1.0, 1.0), kind=data_base.IMAGE)


def _widths(config):
  """(G's last hidden width, D's first conv width) of the built models' parameters."""
  spec = factory.build_spec(config, STACKED_INFO)
  key = jax.random.PRNGKey(0)
  g = jax.eval_shape(lambda: spec.generator.init(
      key, jnp.zeros((2, spec.latent_dim)), train=False))['params']
  d = jax.eval_shape(lambda: spec.discriminator.init(
      key, jnp.zeros((2,) + STACKED_INFO.shape), train=False))['params']
  return g['deconv_0']['kernel'].shape[-1], d['conv_0']['kernel'].shape[-1]


def test_mode_collapse_stacked_expands_to_d_size_by_unrolling():
  module, _ = config_base.load_config_file(STACKED_FILE)
  config = module.get_config()
  assert config.data.name == 'stacked' and config.data.base.name == 'fashion_mnist'
  assert config.eval.classifier and config.eval.train_classifier_epochs > 0
  variants = sweep.expand(module.sweep, config)
  assert [v.name for v in variants] == [
      f'model.base_width=32,model.d_base_width={d},unroll.steps={k}'
      for d in (8, 16) for k in (0, 1, 5, 10)]
  for v in variants:
    c = sweep.apply_overrides(config, v.overrides)
    g_width, d_width = _widths(c)
    assert g_width == 32 and d_width == v.overrides['model.d_base_width']
    assert c.unroll.steps == v.overrides['unroll.steps'] and c.unroll.exact
    # Every variant has exactly its own row of Metz et al.'s Table 2 beside it.
    [(source, _, _)] = sweep.published_rows(module.PUBLISHED, v)
    fraction = '1/4' if d_width * 4 == g_width else '1/2'
    assert d_width * {'1/4': 4, '1/2': 2}[fraction] == g_width
    assert source.endswith(f'{fraction} D, K = {c.unroll.steps}')
  assert len(sweep._seeds(config)) == config.sweep.num_seeds  # pylint: disable=protected-access


def test_mode_collapse_stacked_quick_and_mnist_variants():
  module, _ = config_base.load_config_file(STACKED_FILE)
  quick = module.get_config('quick')
  assert not quick.eval.classifier and quick.train.num_steps <= 10
  variants = sweep.expand(module.sweep, quick)
  assert [v.name for v in variants] == [
      f'model.base_width=8,model.d_base_width={d},unroll.steps={k}'
      for d in (2, 4) for k in (0, 1)]
  for v in variants:
    g_width, d_width = _widths(sweep.apply_overrides(quick, v.overrides))
    assert (g_width, d_width) == (8, v.overrides['model.d_base_width'])
    assert not sweep.published_rows(module.PUBLISHED, v)  # G width 8: no published row
  mnist = module.get_config('mnist,quick')
  assert (mnist.data.base.name, mnist.data.base.tfds_name) == ('mnist', 'mnist')
  assert mnist.train.num_steps == quick.train.num_steps
  with pytest.raises(ValueError, match="'pacgan' does not exist"):
    module.get_config('pacgan')


def test_a_missing_classifier_is_trained_once_before_the_seeds(tiny_classifier, tmp_path):
  from gan_jax import classifier  # pylint: disable=g-import-not-at-top
  config = _tiny_stacked(tiny_classifier)
  config.eval.classifier = str(tmp_path / 'cache')
  config.eval.train_classifier_epochs = 1
  assert not classifier.exists(config.eval.classifier, config.data)
  assert image_seeds.prepare_classifier(config)
  # For the stacked data, a classifier of its one-channel base, where a main run looks.
  assert classifier.load_for(config.eval.classifier, config.data).num_classes == 10
  assert not image_seeds.prepare_classifier(config)  # there now: not trained again
  config.eval.train_classifier_epochs = 0
  config.eval.classifier = str(tmp_path / 'other')
  assert not image_seeds.prepare_classifier(config)  # 0 epochs: never trained here
