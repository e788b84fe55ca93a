"""Mutation check: named one-line bugs, each of which some test must catch.

    python tools/mutation_check.py             # every mutant (a few minutes on 2 cores)
    python tools/mutation_check.py --list      # names, files and tests only
    python tools/mutation_check.py per_step_noise ema_of_old_params   # some of them

The working tree (tracked and untracked, non-ignored files) is copied to a
temporary folder once; each mutant edits one file there (one or two one-line
textual replacements), runs its tests with `pytest -x` against the copy
(PYTHONPATH points at it, so subprocesses import the mutated package too) and
restores the file, whatever happens. The working tree is never touched.

A mutant is *killed* when a test fails; the table names the first failing test.
A mutant whose pattern is not found exactly once in its file is an error, not a
pass: a reorganised source must update this table. Before the mutants, the
union of their tests runs once on the unmutated copy (skip with
--skip-baseline), so a kill means the test fails because of the mutant.

Exits 1 if any mutant survives or cannot be applied. Not part of CI.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass(frozen=True)
class Mutant:
  name: str
  path: str
  edits: tuple[tuple[str, str], ...]  # (exact old text, new text), each unique in the file
  tests: tuple[str, ...]              # pytest arguments: files, node ids, -k expressions


def m(name, path, old, new, *tests, also=()):
  return Mutant(name, path, ((old, new),) + tuple(also), tuple(tests))


STEPS = 'gan_jax/steps.py'
LOSSES = 'gan_jax/losses.py'
METRICS = 'gan_jax/metrics.py'
THEORY = 'gan_jax/theory.py'
IMAGES = 'gan_jax/datasets/images.py'  # input_pipeline dispatches to gan_jax/datasets/
MIXTURES = 'gan_jax/datasets/mixtures.py'
T_STEPS = 'tests/test_steps.py'
# The data tests are being split per source; the files that exist are run.
DATA_TESTS = ('tests/test_input_pipeline.py', 'tests/test_datasets.py', 'tests/test_idx.py',
              'tests/test_mixtures.py', 'tests/test_stacked.py')

MUTANTS = [
    # --- the five of issue 13 -------------------------------------------------
    m('per_step_noise', STEPS,
      'key = jax.random.fold_in(state.rng, state.step)', 'key = state.rng', T_STEPS),
    m('ema_of_old_params', STEPS,
      '  key = jax.random.fold_in(state.rng, state.step)\n',
      '  key = jax.random.fold_in(state.rng, state.step); g_before = state.g_params\n',
      T_STEPS,
      also=(('        state.ema_params, state.g_params)', '        g_before, state.g_params)'),)),
    m('gp_at_real_points_only', LOSSES,
      'eps = uniform(key, (real.shape[0],)).astype(real.dtype)',
      'eps = jnp.ones((real.shape[0],), real.dtype)', T_STEPS),
    m('gp_stop_gradient', STEPS,
      'loss = loss + spec.gradient_penalty * gp',
      'loss = loss + spec.gradient_penalty * jax.lax.stop_gradient(gp)', T_STEPS),
    m('matching_aware_wrong_labels_are_real', STEPS,
      'wrong_labels = (real_labels + shift) % spec.num_classes',
      'wrong_labels = real_labels', T_STEPS),
    # --- the step's other options ---------------------------------------------
    m('instance_noise_no_decay', STEPS,
      'frac = jnp.clip(1.0 - step / spec.instance_noise_decay_steps, 0.0, 1.0)',
      'frac = 1.0', T_STEPS),
    m('instance_noise_not_on_d_fakes', STEPS,
      'fake = losses_lib.add_instance_noise(k_noise_f, fake, std, normal=normal)',
      'fake = fake', T_STEPS),
    m('instance_noise_std_squared', LOSSES,
      'return x + std * normal(key, x.shape).astype(x.dtype)',
      'return x + std * std * normal(key, x.shape).astype(x.dtype)', T_STEPS),
    m('label_noise_not_on_fake_targets', STEPS,
      'smoothing=spec.label_smoothing_fake,\n                                      noise_std=spec.label_noise)',
      'smoothing=spec.label_smoothing_fake,\n                                      noise_std=0.0)', T_STEPS),
    m('two_sided_smoothing_ignored', STEPS,
      'smoothing=spec.label_smoothing_fake,', 'smoothing=0.0,',
      'tests/test_vanishing.py::test_two_sided_smoothing_d_loss_and_update_by_hand'),
    m('label_smoothing_ignored', STEPS,
      'smoothing=spec.label_smoothing,', 'smoothing=0.0,', T_STEPS),
    m('r1_at_the_fakes', STEPS,
      'r1 = losses_lib.r1_penalty(lambda x: score_fn(x, real_labels), real)',
      'r1 = losses_lib.r1_penalty(lambda x: score_fn(x, real_labels), fake)', T_STEPS),
    m('uniform_latent_in_0_1', STEPS,
      'jax.random.uniform(k, s, minval=-1.0, maxval=1.0)',
      'jax.random.uniform(k, s, minval=0.0, maxval=1.0)', T_STEPS),
    m('no_weight_clip_after_d_update', STEPS,
      'd_params = _clip(spec, optax.apply_updates(state.d_params, updates))',
      'd_params = optax.apply_updates(state.d_params, updates)', T_STEPS),
    m('simultaneous_runs_d_first', STEPS,
      "if spec.update_order == 'd_first':", "if spec.update_order != 'g_first':",
      'tests/test_remedies.py', '-k', 'update_order'),
    m('d_steps_reuse_first_micro_batch', STEPS,
      's, aux = _d_update(spec, s, xs[i], labels[i], d_keys[i], axis_name)',
      's, aux = _d_update(spec, s, xs[0], labels[0], d_keys[i], axis_name)',
      'tests/test_remedies.py', '-k', 'd_steps'),
    # --- the unrolled lookahead ----------------------------------------------
    m('unroll_exact_flag_inverted', STEPS,
      'if not spec.unroll_exact:\n      d_params = jax.lax.stop_gradient(d_params)',
      'if spec.unroll_exact:\n      d_params = jax.lax.stop_gradient(d_params)',
      'tests/test_unroll.py'),
    # (Dropping the first-order stop_gradient on the lookahead's fakes would be an
    # equivalent mutant: the stop_gradient on the looked-ahead D params already cuts
    # that path; it survived, as it must.)
    m('unroll_one_lookahead_step', STEPS,
      'keys = jax.random.split(key, spec.unroll_steps)', 'keys = jax.random.split(key, 1)',
      'tests/test_unroll.py'),
    m('lookahead_without_clip', STEPS,
      'return (_clip(spec, optax.apply_updates(params, updates)), opt_state), None',
      'return (optax.apply_updates(params, updates), opt_state), None', T_STEPS,
      '-k', 'clipping'),
    # --- data parallelism ---------------------------------------------------
    m('psum_for_pmean', STEPS,
      'return tree if axis_name is None else jax.lax.pmean(tree, axis_name)',
      'return tree if axis_name is None else jax.lax.psum(tree, axis_name)',
      'tests/test_multidevice.py'),
    m('psum_for_pmean_on_d_grads', STEPS,
      '  grads = _pmean(grads, axis_name)\n  updates, d_opt_state',
      '  grads = grads if axis_name is None else jax.lax.psum(grads, axis_name)\n'
      '  updates, d_opt_state',
      'tests/test_multihost.py'),
    # --- losses -------------------------------------------------------------
    m('minimax_g_loss_non_saturating', LOSSES,
      'return _mean(jax.nn.log_sigmoid(-fake_logits))',
      'return _mean(-jax.nn.log_sigmoid(fake_logits))', 'tests/test_losses.py'),
    m('hinge_d_fake_sign', LOSSES,
      '_mean(jax.nn.relu(1.0 + fake_scores)))', '_mean(jax.nn.relu(1.0 - fake_scores)))',
      'tests/test_losses.py'),
    m('r1_without_half', LOSSES,
      'return 0.5 * _mean(jnp.sum(jnp.square(grads), axis=-1))',
      'return _mean(jnp.sum(jnp.square(grads), axis=-1))', 'tests/test_losses.py'),
    m('noisy_fake_targets_negative', LOSSES,
      'targets = targets + jnp.abs(noise_std * jax.random.normal(key, shape))',
      'targets = targets - jnp.abs(noise_std * jax.random.normal(key, shape))',
      'tests/test_losses.py'),
    # --- metrics ------------------------------------------------------------
    m('kl_of_empty_histogram_zero', METRICS,
      'return jnp.where(total[..., 0] > 0, kl, math.log(num_bins))',
      'return jnp.where(total[..., 0] > 0, kl, 0.0)', 'tests/test_metrics.py'),
    m('modes_count_low_quality_samples', METRICS,
      "'modes': jnp.sum(mode_counts > 0).astype(jnp.int32),",
      "'modes': jnp.sum(all_counts > 0).astype(jnp.int32),", 'tests/test_metrics.py'),
    m('frechet_trace_term_halved', METRICS,
      '- 2.0 * trace_sqrt', '- 1.0 * trace_sqrt', 'tests/test_metrics.py'),
    # --- theory -------------------------------------------------------------
    m('optimal_discriminator_inverted', THEORY,
      'return jnp.where(positive, p_data / jnp.where(positive, total, 1.0), 0.5)',
      'return jnp.where(positive, p_g / jnp.where(positive, total, 1.0), 0.5)',
      'tests/test_theory.py'),
    m('jsd_mixture_wrong', THEORY,
      'jnp.logaddexp(log_p, log_q)', 'jnp.logaddexp(log_p, log_p)', 'tests/test_theory.py'),
    # (R1 at the fake instead of the real point would be an equivalent mutant: the
    # Dirac-GAN's linear D has the same input gradient psi everywhere.)
    m('dirac_r1_weight_halved', THEORY,
      'd_loss = d_loss + gamma * losses_lib.r1_penalty(score_fn, real)',
      'd_loss = d_loss + 0.5 * gamma * losses_lib.r1_penalty(score_fn, real)',
      'tests/test_theory.py'),
    m('eigenvalue_discriminant_sign', THEORY,
      'root = jnp.sqrt((half_trace**2 - det).astype(complex_dtype))',
      'root = jnp.sqrt((half_trace**2 + det).astype(complex_dtype))',
      'tests/test_theory.py'),
    # --- the dynamics toolbox of issue 10 -----------------------------------
    m('ragan_g_drops_real_term', LOSSES,
      'return _mean(jax.nn.softplus(-fake_rel)) + _mean(jax.nn.softplus(real_rel))',
      'return _mean(jax.nn.softplus(-fake_rel))', 'tests/test_losses.py'),
    m('rahinge_d_real_sign', LOSSES,
      'return _mean(jax.nn.relu(1.0 - real_rel)) + _mean(jax.nn.relu(1.0 + fake_rel))',
      'return _mean(jax.nn.relu(1.0 + real_rel)) + _mean(jax.nn.relu(1.0 + fake_rel))',
      'tests/test_losses.py'),
    m('dragan_without_std', LOSSES,
      'perturbed = real + scale * jnp.std(real) * uniform',
      'perturbed = real + scale * uniform', 'tests/test_game.py'),
    m('extragradient_grads_at_current_point', STEPS,
      '    grads_d, d_batch_stats, d_aux = _d_grads(spec, half, real, real_labels, d_key, axis_name)',
      '    grads_d, d_batch_stats, d_aux = _d_grads(spec, state, real, real_labels, d_key, axis_name)',
      'tests/test_game.py'),
    m('consensus_ascends_the_penalty', STEPS,
      'grads_d = jax.tree_util.tree_map(lambda a, b: a + gamma * b, grads_d, pen_d)',
      'grads_d = jax.tree_util.tree_map(lambda a, b: a - gamma * b, grads_d, pen_d)',
      'tests/test_game.py'),
    m('consensus_blind_to_g_through_d', STEPS,
      '      gd, d_stats, d_aux = _d_grads(spec, at, real, real_labels, d_key, axis_name,\n'
      '                                    through_g=True)',
      '      gd, d_stats, d_aux = _d_grads(spec, at, real, real_labels, d_key, axis_name,\n'
      '                                    through_g=False)',
      'tests/test_game.py'),
    m('dirac_unrolled_one_step_short', THEORY,
      'for _ in range(unroll_steps):', 'for _ in range(unroll_steps - 1):',
      'tests/test_game.py'),
    m('spectral_norm_off', 'gan_jax/models/layers.py',
      'wrapped = nn.SpectralNorm(layer, n_steps=1,', 'wrapped = nn.SpectralNorm(layer, n_steps=0,',
      'tests/test_spectral_norm.py'),
    m('ema_evaluated_with_raw_params', 'gan_jax/evaluation.py',
      'samples = self.samples(state, use_ema=use_ema)', 'samples = self.samples(state)',
      'tests/test_evaluation.py'),
    # --- data pipeline ------------------------------------------------------
    m('pixel_scale_256', IMAGES,
      'np.float32((hi - lo) / 255.0)', 'np.float32((hi - lo) / 256.0)',
      *DATA_TESTS),
    m('every_process_reads_shard_0', IMAGES,
      'shard = slice(process_index * per_process, (process_index + 1) * per_process)',
      'shard = slice(0, per_process)', *DATA_TESTS),
    m('skip_counts_batches_as_examples', IMAGES,
      'epoch, pos = divmod(skip * batch_size, n)', 'epoch, pos = divmod(skip, n)',
      *DATA_TESTS),
    m('ring_centres_on_a_line', MIXTURES,
      'np.stack([np.cos(angles), np.sin(angles)], axis=-1)',
      'np.stack([np.cos(angles), np.cos(angles)], axis=-1)',
      *DATA_TESTS),
]


class PatternError(Exception):
  pass


def apply(text: str, mutant: Mutant) -> str:
  for old, new in mutant.edits:
    count = text.count(old)
    if count != 1:
      raise PatternError(f'mutant pattern not found exactly once ({count} times) in '
                         f'{mutant.path}: {old!r}')
    text = text.replace(old, new)
  return text


def copy_tree(dst: str) -> None:
  files = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard', '-z'], cwd=REPO,
                         check=True, capture_output=True, text=True).stdout.split('\0')
  for rel in filter(None, files):
    src = os.path.join(REPO, rel)
    if not os.path.isfile(src):
      continue  # deleted in the working tree
    os.makedirs(os.path.dirname(os.path.join(dst, rel)), exist_ok=True)
    shutil.copy2(src, os.path.join(dst, rel))


def existing(root: str, args: tuple[str, ...]) -> tuple[str, ...]:
  """`args` without test files that the tree does not have (the data tests move)."""
  keep = tuple(a for a in args if not a.startswith('tests/')
               or os.path.exists(os.path.join(root, a.split('::')[0])))
  if not any(a.startswith('tests/') for a in keep):
    raise PatternError(f'none of the test files {args} exists')
  return keep


def run_pytest(root: str, args: tuple[str, ...], timeout: int) -> tuple[int, str]:
  env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get('PYTHONPATH', ''),
             JAX_PLATFORMS='cpu')
  cmd = [sys.executable, '-m', 'pytest', '-x', '-q', '-p', 'no:cacheprovider',
         *args]
  try:
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True,
                          timeout=timeout)
  except subprocess.TimeoutExpired:
    return -1, 'timeout'
  return proc.returncode, proc.stdout + proc.stderr


def first_failure(output: str) -> str:
  match = re.search(r'^(?:FAILED|ERROR) (\S+)', output, re.MULTILINE)
  return match.group(1) if match else '(pytest failed: ' + output.strip()[-200:] + ')'


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('names', nargs='*', help='mutants to run (default: all).')
  parser.add_argument('--list', action='store_true')
  parser.add_argument('--skip-baseline', action='store_true')
  parser.add_argument('--timeout', type=int, default=600, help='seconds per pytest run.')
  parser.add_argument('--verbose', action='store_true',
                      help="print the end of each killing test's failure report.")
  args = parser.parse_args(argv)
  by_name = {mu.name: mu for mu in MUTANTS}
  assert len(by_name) == len(MUTANTS), 'duplicate mutant names'
  unknown = [n for n in args.names if n not in by_name]
  if unknown:
    parser.error(f'unknown mutants {unknown}; --list shows them.')
  mutants = [by_name[n] for n in args.names] if args.names else MUTANTS
  if args.list:
    for mu in mutants:
      print(f'{mu.name:40s} {mu.path:30s} {" ".join(mu.tests)}')
    return 0

  rows, failed = [], False
  with tempfile.TemporaryDirectory(prefix='mutation_check_') as root:
    copy_tree(root)
    # Every pattern must apply before anything runs.
    for mu in mutants:
      try:
        with open(os.path.join(root, mu.path)) as f:
          apply(f.read(), mu)
        existing(root, mu.tests)
      except (PatternError, FileNotFoundError) as e:
        print(f'ERROR {mu.name}: {e}', file=sys.stderr)
        failed = True
    if failed:
      return 1
    if not args.skip_baseline:
      files = sorted({t.split('::')[0] for mu in mutants for t in existing(root, mu.tests)
                      if t.startswith('tests/')})
      start = time.time()
      rc, out = run_pytest(root, tuple(files), args.timeout * 2)
      print(f'baseline: {" ".join(files)}: rc={rc} ({time.time() - start:.0f} s)')
      if rc != 0:
        print(out[-3000:], file=sys.stderr)
        print('ERROR: the tests fail without any mutant.', file=sys.stderr)
        return 1
    for mu in mutants:
      path = os.path.join(root, mu.path)
      with open(path) as f:
        original = f.read()
      start = time.time()
      try:
        with open(path, 'w') as f:
          f.write(apply(original, mu))
        rc, out = run_pytest(root, existing(root, mu.tests), args.timeout)
      finally:
        with open(path, 'w') as f:
          f.write(original)
      seconds = time.time() - start
      if rc == 0:
        verdict, killer = 'SURVIVED', '-'
        failed = True
      elif rc == 1:  # pytest: some test failed
        verdict, killer = 'killed', first_failure(out)
      else:  # timeout, collection error, no tests, usage error: not a kill
        verdict, killer = 'ERROR', 'timeout' if rc == -1 else f'pytest rc={rc}'
        failed = True
        print(out[-2000:], file=sys.stderr)
        if args.verbose:
          print(out[-1500:])
      rows.append((mu.name, mu.path, verdict, killer, seconds))
      print(f'{mu.name}: {verdict} by {killer} ({seconds:.0f} s)', flush=True)

  print()
  print('| mutant | file | result | killing test | s |')
  print('|---|---|---|---|---|')
  for name, path, verdict, killer, seconds in rows:
    print(f'| {name} | {path} | {verdict} | `{killer}` | {seconds:.0f} |')
  survived = [r[0] for r in rows if r[2] != 'killed']
  print(f'\n{len(rows) - len(survived)} of {len(rows)} mutants killed'
        + (f'; survived: {", ".join(survived)}' if survived else '.'))
  return 1 if failed else 0


if __name__ == '__main__':
  sys.exit(main())
