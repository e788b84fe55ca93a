"""The sweep runner: expanding sweep(add), overrides, the table, NaN / failure rows, resume."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from gan_jax import config_base
from gan_jax import seeds
from gan_jax import sweep

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_experiment(name: str):
  module, _ = config_base.load_config_file(os.path.join(ROOT, 'experiments', name))
  return module


def test_expand_keeps_order_and_names_variants():
  def sweep_fn(add):
    for loss in ('minimax', 'wasserstein_gp'):
      for k in (0, 10):
        add(loss=loss, **{'unroll.steps': k})
  variants = sweep.expand(sweep_fn)
  assert [v.name for v in variants] == [
      'loss=minimax,unroll.steps=0', 'loss=minimax,unroll.steps=10',
      'loss=wasserstein_gp,unroll.steps=0', 'loss=wasserstein_gp,unroll.steps=10']
  assert variants[1].overrides == {'loss': 'minimax', 'unroll.steps': 10}


def test_expand_rejects_duplicates_and_empty_sweeps():
  with pytest.raises(ValueError, match='added twice'):
    sweep.expand(lambda add: (add(loss='minimax'), add(loss='minimax')))
  with pytest.raises(ValueError, match='no variant'):
    sweep.expand(lambda add: None)


@pytest.mark.parametrize('name,num_variants', [('mode_collapse_ring.py', 22),
                                               ('mode_collapse_grid.py', 17)])
def test_experiment_sweeps(name, num_variants):
  module = load_experiment(name)
  config = module.get_config()
  variants = sweep.expand(module.sweep, config)
  assert len(variants) == num_variants
  assert config.sweep.num_seeds == 10
  assert config.eval.num_samples == 2500
  assert config.train.num_steps % config.sweep.eval_every == 0
  for v in variants:  # every override names a real field
    sweep.apply_overrides(config, v.overrides)


def test_apply_overrides():
  config = load_experiment('mode_collapse_ring.py').get_config()
  new = sweep.apply_overrides(config, {'loss': 'minimax', 'unroll.steps': 5})
  assert (new.loss, new.unroll.steps) == ('minimax', 5)
  assert config.unroll.steps == 0  # the base config is untouched
  with pytest.raises(ValueError, match="'unroll.step' is not a config field"):
    sweep.apply_overrides(config, {'unroll.step': 5})


def test_summary_table_means_and_counts():
  variants = sweep.expand(lambda add: (add(loss='a'), add(loss='b')))
  row = lambda v, status, modes, hq, kl: dict(variant=v, status=status, modes=modes,
                                              high_quality=hq, kl=kl, steps_per_s='10.0')
  rows = [row('loss=a', 'ok', '8', '0.9', '0.0'), row('loss=a', 'ok', '6', '0.5', '0.2'),
          row('loss=a', 'nan', '0', '0.0', '2.0794'),
          row('loss=b', 'failed', '', '', '')]
  table = sweep.summary_table(rows, variants, num_modes=8)
  lines = table.strip().split('\n')
  # modes 8, 6, 0: mean 14/3, sample std (ddof 1) sqrt(52/3) = 4.16, s.e. 4.16 / sqrt(3)
  # = 2.40; HQ 90, 50, 0 %: std sqrt(6100/3) = 45.1, s.e. 26.0; KL 0, 0.2, 2.0794:
  # mean 0.760, std 1.147, s.e. 0.662.
  assert lines[2].startswith('| loss=a | 2 / 1 / 0 | 4.67 ± 4.16 (s.e. 2.40) | '
                             '46.7 ± 45.1 (s.e. 26.0) | 0.760 ± 1.147 (s.e. 0.662) |')
  assert lines[3] == '| loss=b | 0 / 0 / 1 | - | - | - | - | - |'
  assert lines[2].endswith('| - | 10.0 |')  # one program's rate


def test_speed_cell_gives_the_range_when_seeds_came_from_several_programs():
  # Seeds 0-4 vmapped in one program (2.4 steps/s for all five), seeds 5 and 6
  # as single-seed shards (13.8 and 12.9): not the first row's 2.4 alone.
  variants = sweep.expand(lambda add: add(loss='a'))
  rows = [dict(variant='loss=a', status='ok', modes='8', high_quality='0.9', kl='0.0',
               steps_per_s=speed) for speed in ('2.4',) * 5 + ('13.8', '12.9')]
  line = sweep.summary_table(rows, variants, num_modes=8).strip().split('\n')[2]
  assert line.endswith('| - | 2.4-13.8 |'), line


def test_seed_statistics_use_ddof_1_and_give_the_standard_error():
  mean, std, se = sweep.seed_statistics([1.0, 2.0, 3.0, 6.0])
  # mean 3, squared deviations 4 + 1 + 0 + 9 = 14, std sqrt(14 / 3), s.e. std / 2.
  assert mean == 3.0
  np.testing.assert_allclose(std, np.sqrt(14 / 3))
  np.testing.assert_allclose(se, np.sqrt(14 / 3) / 2)
  assert np.isnan(sweep.seed_statistics([5.0])[1])  # one seed: no spread


def test_published_rows_match_variants_by_their_overrides():
  published = [({'model.pack': 2}, 'PacGAN2', 7.9, 0.956, 0.07),
               ({'unroll.steps': 5, 'optim.d.lr': 1e-4}, 'Unrolled', 7.6, 0.356, None)]
  variants = sweep.expand(lambda add: (
      add(**{'model.pack': 2, 'train.batch_size': 256}), add(**{'model.pack': 3}),
      add(**{'unroll.steps': 5}), add(**{'unroll.steps': 5, 'optim.d.lr': 1e-4})))
  found = [sweep.published_rows(published, v) for v in variants]
  assert found == [[('PacGAN2', 7.9, 0.956, 0.07)], [], [],
                   [('Unrolled', 7.6, 0.356, None)]]
  table = sweep.summary_table(
      [dict(variant=variants[0].name, status='ok', modes='8', high_quality='0.5', kl='0.1',
            steps_per_s='1')], variants, num_modes=8, published=published)
  assert '| PacGAN2: 7.9 / 95.6 % / 0.07 |' in table


def test_only_that_matches_no_variant_is_an_error(tmp_path):
  config = load_experiment('mode_collapse_ring.py').get_config('quick')
  with pytest.raises(ValueError, match="--only='hinge' matches no variant"):
    sweep.run_sweep(config, lambda add: add(loss='minimax'), str(tmp_path / 'w'),
                    only='hinge')
  assert not os.path.exists(tmp_path / 'w')  # rejected before anything is written


def test_strip_pair_is_plain_and_deepest_unrolled():
  variants = sweep.expand(lambda add: [add(loss=l, **{'unroll.steps': k})
                                       for l in ('x', 'y') for k in (0, 5, 10)])
  assert sweep._strip_pair(variants) == ('loss=x,unroll.steps=0', 'loss=x,unroll.steps=10')  # pylint: disable=protected-access


def test_run_sweep_records_ok_nan_and_failed_runs_and_resumes(tmp_path):
  config = load_experiment('mode_collapse_ring.py').get_config('quick')
  config.model.g_widths = (4,)
  config.model.d_widths = (4,)
  config.model.latent_dim = 2
  config.train.batch_size = 8
  config.train.num_steps = 4
  config.sweep.eval_every = 2
  config.eval.num_samples = 50

  def sweep_fn(add):
    add(loss='non_saturating')
    add(**{'optim.g.lr': 1e38, 'optim.g.name': 'sgd'})   # blows up: recorded as 'nan'
    add(loss='no_such_loss')                             # raises: recorded as 'failed'

  workdir = str(tmp_path)
  table = sweep.run_sweep(config, sweep_fn, workdir)
  with open(os.path.join(workdir, 'results.csv')) as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 3 * config.sweep.num_seeds
  status = {r['variant']: r['status'] for r in rows}
  assert status == {'loss=non_saturating': 'ok', 'optim.g.lr=1e+38,optim.g.name=sgd': 'nan',
                    'loss=no_such_loss': 'failed'}
  failed = [r for r in rows if r['status'] == 'failed']
  assert "no_such_loss" in failed[0]['error']
  assert all(int(r['step']) == 4 for r in rows if r['status'] == 'ok')
  assert all(0 <= int(r['modes']) <= 8 for r in rows if r['status'] == 'ok')
  assert all(int(r['diverged_at']) in (2, 4) for r in rows if r['status'] == 'nan')
  for name in ('results.md', 'samples.png', 'modes_over_training.png',
               'modes_vs_quality.png'):
    assert os.path.getsize(os.path.join(workdir, name)) > 0
  assert '| loss=no_such_loss | 0 / 0 / 2 |' in table

  # Resuming runs nothing new and keeps every row.
  sweep.run_sweep(config, sweep_fn, workdir)
  with open(os.path.join(workdir, 'results.csv')) as f:
    assert len(list(csv.DictReader(f))) == len(rows)


def test_non_mixture_data_is_an_error():
  config = load_experiment('mode_collapse_ring.py').get_config('quick')
  config.data.name = 'fashion_mnist'
  with pytest.raises(ValueError, match="config.data.name='fashion_mnist'"):
    seeds.train_and_evaluate(config, [0])


def test_sweep_cli_errors_are_one_paragraph(tmp_path):
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  proc = subprocess.run(
      [sys.executable, '-m', 'gan_jax.sweep', '--config',
       os.path.join(ROOT, 'experiments', 'mode_collapse_ring.py:quick'),
       '--workdir', str(tmp_path / 'w'), '--config.sweep.num_seed=3'],
      capture_output=True, text=True, timeout=300, check=False)
  err = proc.stderr.strip().splitlines()[-1]
  assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr[-2000:]
  assert err.startswith('gan_jax.sweep: error: --config.sweep.num_seed') and 'num_seeds' in err
  assert not (tmp_path / 'w').exists()


def _tiny_ring():
  config = load_experiment('mode_collapse_ring.py').get_config('quick')
  config.model.g_widths = (8,)
  config.model.d_widths = (8,)
  config.train.batch_size = 16
  config.train.num_steps = 6
  config.sweep.eval_every = 3
  config.sweep.num_seeds = 3
  config.eval.num_samples = 60
  return config


def _tiny_sweep(add):
  add(loss='non_saturating')
  add(**{'model.pack': 2, 'train.batch_size': 32})


def _csv_rows(workdir):
  keep = ('variant', 'seed', 'status', 'step', 'modes', 'high_quality', 'kl', 'kl_all',
          'diverged_at')
  return sorted(tuple(r[k] for k in keep) for r in sweep.all_rows(workdir))


def test_shard_pairs_split_every_variant_round_robin():
  config = _tiny_ring()
  variants = sweep.expand(_tiny_sweep)
  configs = {v.name: sweep.apply_overrides(config, v.overrides) for v in variants}
  shards = [sweep.shard_pairs(variants, configs, 2, i) for i in range(2)]
  # Pairs (v0,0) (v0,1) (v0,2) (v1,0) (v1,1) (v1,2): evens to shard 0, odds to 1.
  assert shards[0] == {'loss=non_saturating': [0, 2], 'model.pack=2,train.batch_size=32': [1]}
  assert shards[1] == {'loss=non_saturating': [1], 'model.pack=2,train.batch_size=32': [0, 2]}
  with pytest.raises(ValueError, match='--shard_index=2 must lie in'):
    sweep.shard_pairs(variants, configs, 2, 2)


def _costed_sweep(add):
  # Costs in K = 0 seed-steps (3 seeds each, sweep.variant_cost): 90, 60,
  # 10 x 3 x (1 + 1 x 0.6) = 48 and 30.
  add(**{'train.num_steps': 30})
  add(**{'train.num_steps': 20})
  add(**{'train.num_steps': 10, 'unroll.steps': 1, 'unroll.exact': True})
  add(**{'train.num_steps': 10, 'loss': 'least_squares'})


def _costed():
  config = _tiny_ring()
  variants = sweep.expand(_costed_sweep)
  return variants, {v.name: sweep.apply_overrides(config, v.overrides) for v in variants}


def test_variant_cost_counts_the_lookahead():
  variants, configs = _costed()
  assert [sweep.variant_cost(configs[v.name]) for v in variants] == pytest.approx(
      [90.0, 60.0, 48.0, 30.0])
  first_order = sweep.apply_overrides(configs[variants[2].name], {'unroll.exact': False})
  assert sweep.variant_cost(first_order) == pytest.approx(10 * 3 * 1.26)


def test_shard_by_variant_gives_each_shard_whole_variants_balanced_by_cost():
  variants, configs = _costed()
  a, b, c, d = (v.name for v in variants)
  shards = [sweep.shard_pairs(variants, configs, 2, i, by='variant') for i in range(2)]
  # Costliest first onto the least loaded shard: 90 -> 0, 60 -> 1, 48 -> 1 (60 < 90),
  # 30 -> 0 (90 < 108): loads 120 and 108, 5 % above the equal 114.
  assert shards[0] == {a: [0, 1, 2], d: [0, 1, 2]}
  assert shards[1] == {b: [0, 1, 2], c: [0, 1, 2]}
  # Only the variants that --only selects are balanced: 90 -> 0, 60 -> 1, 30 -> 1.
  only = '^(' + '|'.join(re.escape(name) for name in (a, b, d)) + ')$'
  shards = [sweep.shard_pairs(variants, configs, 2, i, by='variant', only=only)
            for i in range(2)]
  assert shards == [{a: [0, 1, 2]}, {b: [0, 1, 2], d: [0, 1, 2]}]
  with pytest.raises(ValueError, match="--shard_by='seed' is not one of pair, variant"):
    sweep.shard_pairs(variants, configs, 2, 0, by='seed')


def test_shard_by_variant_splits_pairs_where_whole_variants_cannot_balance():
  variants, configs = _costed()
  pairs = lambda n, by, **kw: [sweep.shard_pairs(variants, configs, n, i, by=by, **kw)
                               for i in range(n)]
  # Five shards for four variants: one would be idle.
  assert pairs(5, 'variant') == pairs(5, 'pair')
  # 90 and 48 alone: loads 90 / 48 are 30 % above the equal 69.
  only = f'^({re.escape(variants[0].name)}|{re.escape(variants[2].name)})$'
  assert pairs(2, 'variant', only=only) == pairs(2, 'pair')
  # Either way every pair runs exactly once.
  for n, by in ((2, 'variant'), (3, 'variant'), (5, 'variant'), (2, 'pair')):
    got = sorted((name, s) for shard in pairs(n, by) for name, seeds in shard.items()
                 for s in seeds)
    assert got == sorted((v.name, s) for v in variants for s in range(3)), (n, by)


@pytest.fixture(scope='module')
def second_shard_only(tmp_path_factory) -> str:
  """A workdir where shard 1 of 2 of the tiny sweep has run; tests copy it."""
  workdir = str(tmp_path_factory.mktemp('shards') / 'w')
  sweep.run_sweep(_tiny_ring(), _tiny_sweep, workdir, num_shards=2, shard_index=1)
  return workdir


@pytest.mark.xdist_group('sweep_shards')  # one worker builds second_shard_only once
def test_two_shards_merged_equal_one_shard_row_for_row(tmp_path, monkeypatch,
                                                        second_shard_only):
  config = _tiny_ring()
  one, two = str(tmp_path / 'one'), str(tmp_path / 'two')
  sweep.run_sweep(config, _tiny_sweep, one)
  shutil.copytree(second_shard_only, two)
  _, missing = sweep.merge(two)
  # Shard 0 has not run: exactly its pairs are reported missing.
  assert missing == [('loss=non_saturating', 0), ('loss=non_saturating', 2),
                     ('model.pack=2,train.batch_size=32', 1)]
  sweep.run_sweep(config, _tiny_sweep, two, num_shards=2, shard_index=0)
  table, missing = sweep.merge(two)
  assert missing == []
  assert sorted(os.listdir(two)) == sorted(
      ['results.shard-000-of-002.csv', 'results.shard-001-of-002.csv', 'results.md',
       'sweep.json', 'variants', 'samples.png', 'modes_over_training.png',
       'modes_vs_quality.png'])
  assert _csv_rows(two) == _csv_rows(one)
  # The per-seed histories merge in seed order, equal to the unsharded run's.
  a = sweep._merged_result(one, 'loss=non_saturating')  # pylint: disable=protected-access
  b = sweep._merged_result(two, 'loss=non_saturating')  # pylint: disable=protected-access
  np.testing.assert_allclose(b.high_quality, a.high_quality, atol=1e-6)
  np.testing.assert_allclose(b.final_samples, a.final_samples, atol=1e-5)
  # The tables agree but for the last column (steps/s: each shard timed itself).
  with open(os.path.join(one, 'results.md')) as f:
    one_table = f.read().split('\n\n', 2)[2]
  without_speed = lambda t: [line.rsplit('|', 2)[0] for line in t.strip().splitlines()]
  assert without_speed(table) == without_speed(one_table)
  # A rerun under another layout resumes: every pair is measured, nothing runs.
  sweep.run_sweep(config, _tiny_sweep, two)
  assert not os.path.exists(os.path.join(two, 'results.csv'))
  # modes_vs_quality.png comes from the results files: a variant whose per-step
  # history (variants/*.npz) is gone is still drawn, with its seeds' final rows.
  for name in os.listdir(os.path.join(two, 'variants')):
    if name.startswith('model.pack=2'):
      os.remove(os.path.join(two, 'variants', name))
  drawn = {}
  monkeypatch.setattr(sweep.plotting, 'modes_vs_quality',
                      lambda points, path, **kw: drawn.update(points))
  sweep.merge(two)
  assert sorted(drawn) == ['loss=non_saturating', 'model.pack=2,train.batch_size=32']
  for variant, (modes, hq) in drawn.items():
    rows = sorted((int(r['seed']), r) for r in sweep.all_rows(one) if r['variant'] == variant)
    np.testing.assert_array_equal(sorted(modes), sorted(float(r['modes']) for _, r in rows))
    np.testing.assert_allclose(sorted(hq), sorted(float(r['high_quality']) for _, r in rows))


def test_merge_of_a_directory_that_is_no_sweep_is_a_named_error(tmp_path):
  with pytest.raises(FileNotFoundError, match='holds no sweep.json'):
    sweep.merge(str(tmp_path))


def test_shard_command_replaces_processes_by_a_shard():
  argv = ['sweep.py', '--config', 'c.py:quick', '--processes', '2', '--only=x',
          '--config.seed=3', '--processes=2']
  assert sweep.shard_command(argv, 2, 1)[1:] == [
      '-m', 'gan_jax.sweep', '--config', 'c.py:quick', '--only=x', '--config.seed=3',
      '--processes=1', '--num_shards=2', '--shard_index=1', '--shard_by=variant']
  # The user's own --shard_by is replaced by the one run_processes chose.
  assert sweep.shard_command(argv + ['--shard_by', 'pair', '--shard_by=pair'], 2, 0,
                             'pair')[-4:] == [
      '--processes=1', '--num_shards=2', '--shard_index=0', '--shard_by=pair']


@pytest.mark.xdist_group('sweep_shards')
def test_merge_cli_lists_the_missing_pairs(tmp_path, second_shard_only):
  workdir = str(tmp_path / 'w')
  shutil.copytree(second_shard_only, workdir)
  proc = subprocess.run([sys.executable, '-m', 'gan_jax.sweep', '--workdir', workdir,
                         '--merge'], capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr
  assert '| loss=non_saturating | 1 / 0 / 0 |' in proc.stdout
  assert ('3 (variant, seed) pairs are not measured yet: loss=non_saturating seed 0; '
          'loss=non_saturating seed 2; model.pack=2,train.batch_size=32 seed 1'
          in proc.stderr)


def test_default_processes_use_the_cores_only_for_long_sweeps(monkeypatch):
  monkeypatch.setattr(os, 'cpu_count', lambda: 2)
  module = load_experiment('mode_collapse_ring.py')
  quick = module.get_config('quick')
  assert sweep.default_processes(module.sweep, quick) == 1  # compilation-bound
  full = module.get_config()
  assert sweep.default_processes(module.sweep, full) == 2
  assert sweep.default_processes(module.sweep, full, sharded=True) == 1
  monkeypatch.setenv('SLURM_ARRAY_TASK_COUNT', '4')
  assert sweep.default_processes(module.sweep, full) == 1


@pytest.mark.parametrize('name', ['mode_collapse_ring.py', 'mode_collapse_grid.py'])
def test_tune_protocol_runs_every_remedy_at_a_third_of_the_lr(name):
  module = load_experiment(name)
  budget, tune = module.get_config(), module.get_config('tune')
  variants = sweep.expand(module.sweep, tune)
  assert len(variants) == 10 and tune.sweep.num_seeds == 3
  budget_names = {sweep.variant_name({k: x for k, x in v.overrides.items()
                                      if not k.startswith('sweep.')})
                  for v in sweep.expand(module.sweep, budget)}
  for v in variants:
    config = sweep.apply_overrides(tune, v.overrides)
    assert config.optim.g.lr == config.optim.d.lr == 3e-4
    # Apart from the lr (and seed count), each is a budget variant or its plain GAN.
    rest = {k: x for k, x in v.overrides.items() if not k.startswith('optim.')}
    assert not rest or sweep.variant_name(rest) in budget_names
