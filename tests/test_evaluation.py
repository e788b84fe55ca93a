"""Tests of the classifier-based evaluation, on a tiny synthetic dataset and classifier."""

from __future__ import annotations

import json
import math
import os

import jax
import numpy as np
import pytest

from gan_jax import classifier
from gan_jax import config_base
from gan_jax import evaluation
from gan_jax import factory
from gan_jax import input_pipeline
from gan_jax import steps
from gan_jax import train

from conftest import ConstantG, ShiftG, linear_spec

# One worker under pytest-xdist (--dist loadgroup): the session's tiny classifier is trained once.
pytestmark = pytest.mark.xdist_group('tiny_classifier')

VR = (-1.0, 1.0)


@pytest.fixture(scope='module')
def tiny(tiny_classifier):
  """(data config, trained classifier, cache dir) of the 8x8 synthetic dataset."""
  data, workdir, _ = tiny_classifier
  return data, classifier.load(workdir), os.path.dirname(workdir)


@pytest.fixture(scope='module')
def test_split(tiny):
  data, _, _ = tiny
  return input_pipeline.load_arrays(data, 'test')


def test_perfect_generator_scores_the_classifier_accuracy_and_zero_distance(tiny, test_split):
  _, clf, _ = tiny
  images, labels = test_split
  real_stats = evaluation.reference_statistics(clf, images, VR)
  m = evaluation.classifier_metrics(clf, images, value_range=VR, requested_labels=labels,
                                    real_stats=real_stats)
  assert m['label_accuracy'] == pytest.approx(clf.test_accuracy)
  assert m['classifier_fd'] == pytest.approx(0.0, abs=1e-6)
  assert m['classifier_fd_samples'] == 100 and m['num_samples'] == 100
  # The test labels are 3 i mod 10 for i < 100: every class 10 times.
  assert m['class_coverage'] == 10 and m['class_kl'] == pytest.approx(0.0, abs=1e-6)


def test_collapsed_generator_covers_one_class(tiny, test_split):
  _, clf, _ = tiny
  images, labels = test_split
  collapsed = np.repeat(images[:1], 100, axis=0)  # test image 0 is class 0
  real_stats = evaluation.reference_statistics(clf, images, VR)
  m = evaluation.classifier_metrics(clf, collapsed, value_range=VR, requested_labels=labels,
                                    real_stats=real_stats)
  assert m['class_coverage'] == 1
  assert m['class_kl'] == pytest.approx(math.log(10), rel=1e-6)
  assert m['label_accuracy'] == pytest.approx(0.1)  # class 0 is asked for 10 times
  assert m['classifier_fd'] > 1.0


def test_stacked_modes_from_known_channels(tiny, test_split):
  _, clf, _ = tiny
  images, labels = test_split
  assert clf.test_accuracy == 1.0  # so the channel labels are the true ones
  # Test image i has class 3 i mod 10, so images 0..9 hold every class once.
  by_class = {int(labels[i]): images[i, ..., 0] for i in range(10)}
  triples = [(a, b, (a + b) % 10) for a in range(10) for b in range(5)]  # 50 modes
  stacked = np.stack([np.stack([by_class[k] for k in t], -1) for t in triples])
  m = evaluation.classifier_metrics(clf, stacked, value_range=VR, stacked=True,
                                    requested_labels=[100 * a + 10 * b + c for a, b, c in triples])
  assert m['stacked_modes'] == 50
  # 50 equally used modes out of 1000: KL = log(1000 / 50).
  assert m['stacked_kl'] == pytest.approx(math.log(20), rel=1e-5)
  assert m['label_accuracy'] == 1.0
  collapsed = evaluation.classifier_metrics(clf, np.repeat(stacked[:1], 20, axis=0),
                                            value_range=VR, stacked=True)
  assert collapsed['stacked_modes'] == 1
  assert collapsed['stacked_kl'] == pytest.approx(math.log(1000), rel=1e-6)


def test_frechet_distance_needs_enough_samples(tiny, test_split):
  _, clf, _ = tiny
  images, _ = test_split
  real_stats = evaluation.reference_statistics(clf, images, VR)
  with pytest.raises(ValueError, match='equal sample sizes'):
    evaluation.classifier_metrics(clf, images[:50], value_range=VR, real_stats=real_stats)


def _cgan_config(data, cache):
  c = config_base.get_base()
  c.data = data
  c.model.update(dict(name='mlp', conditional=True, latent_dim=8, g_widths=(16,),
                      d_widths=(16,), d_dropout=0.0, out_activation='tanh'))
  c.train.update(dict(batch_size=8, num_steps=2, log_every=1, eval_every=2,
                      checkpoint_every=2))
  c.eval.num_samples = 60
  c.eval.classifier = cache
  return c


def test_training_loop_logs_classifier_metrics_and_writes_results(tiny, tmp_path):
  data, clf, cache = tiny
  config = _cgan_config(data, cache)
  workdir = str(tmp_path / 'run')
  last = train.train_and_evaluate(config, workdir)
  expected = {'eval/label_accuracy', 'eval/class_coverage', 'eval/class_kl',
              'eval/classifier_fd', 'eval/classifier_fd_samples', 'eval/num_samples',
              'eval/classifier_test_accuracy'}
  assert expected <= set(last)
  assert last['eval/num_samples'] == 60 and last['eval/classifier_fd_samples'] == 60
  assert 0.0 <= last['eval/label_accuracy'] <= 1.0
  with open(os.path.join(workdir, 'results.json')) as f:
    results = json.load(f)
  assert results['step'] == 2 and results['eval/label_accuracy'] == last['eval/label_accuracy']
  assert os.path.exists(os.path.join(workdir, 'samples', 'step_0000002.png'))

  # The reference rows use the same code: the floor (real test images) has the
  # classifier's accuracy and distance 0; the trained G is the loop's last eval.
  rows = evaluation.reference_metrics(config, workdir)
  assert rows['real_test']['label_accuracy'] == pytest.approx(
      np.mean(clf.predict(input_pipeline.load_arrays(data, 'test')[0][:60], VR).labels
              == input_pipeline.load_arrays(data, 'test')[1][:60]))
  assert rows['real_test']['classifier_fd'] == pytest.approx(0.0, abs=1e-6)
  assert rows['trained_g']['step'] == 2
  assert rows['trained_g']['label_accuracy'] == last['eval/label_accuracy']
  assert rows['trained_g']['classifier_fd'] == pytest.approx(last['eval/classifier_fd'])
  assert rows['untrained_g']['classifier_fd'] > rows['real_train']['classifier_fd']


def test_missing_classifier_fails_before_training(tiny, tmp_path):
  data, _, _ = tiny
  config = _cgan_config(data, str(tmp_path / 'no_classifiers'))
  spec = factory.build_spec(config, input_pipeline.get_info(data))
  with pytest.raises(FileNotFoundError, match='python -m gan_jax.classifier'):
    evaluation.Evaluator(config, spec, input_pipeline.get_info(data))


def test_samples_use_the_ema_parameters_when_asked():
  # G(z) = a + z (conftest.ShiftG): a sample minus its fixed latent is the `a` used.
  config = config_base.get_base()
  config_base.ring(config)
  config.eval.num_samples = 16
  info = input_pipeline.get_info(config.data)
  spec = linear_spec(generator=ShiftG(), latent_dim=2)
  state = steps.init_state(spec, jax.random.PRNGKey(0), info.shape)
  state = state.replace(g_params={'a': np.array([1.0, -2.0], np.float32)},
                        ema_params={'a': np.array([0.25, 0.5], np.float32)})
  ev = evaluation.Evaluator(config, spec, info)
  z = np.asarray(ev.z)
  np.testing.assert_allclose(ev.samples(state) - z, np.tile([1.0, -2.0], (len(z), 1)),
                             atol=1e-6)
  np.testing.assert_allclose(ev.samples(state, use_ema=True) - z,
                             np.tile([0.25, 0.5], (len(z), 1)), atol=1e-6)


@pytest.mark.parametrize('ema_decay', [0.0, 0.9])
def test_evaluation_reports_the_ema_generator_too(tmp_path, ema_decay):
  # G(z) = a (conftest.ConstantG): raw G on ring mode 0 = (1, 0), every sample high
  # quality in one mode; its EMA at (5, 5), far from all modes: 0 modes, 0 % quality.
  config = config_base.get_base()
  config_base.ring(config)
  config.eval.num_samples = 32
  info = input_pipeline.get_info(config.data)
  spec = linear_spec(generator=ConstantG(), ema_decay=ema_decay)
  state = steps.init_state(spec, jax.random.PRNGKey(0), info.shape)
  state = state.replace(g_params={'a': np.array([1.0, 0.0], np.float32)},
                        ema_params={'a': np.array([5.0, 5.0], np.float32)})
  ev = evaluation.Evaluator(config, spec, info)
  results = ev(state, 7, str(tmp_path))
  assert results['eval/modes'] == 1 and results['eval/high_quality'] == 1.0
  assert os.path.exists(ev.sample_path(str(tmp_path), 7))
  ema_keys = {k for k in results if k.startswith('eval/ema/')}
  if ema_decay == 0:
    assert not ema_keys and not ev.ema
    assert not os.path.exists(ev.sample_path(str(tmp_path), 7, ema=True))
    return
  assert ema_keys == {'eval/ema/' + k[len('eval/'):] for k in results if k not in ema_keys}
  assert results['eval/ema/modes'] == 0 and results['eval/ema/high_quality'] == 0.0
  assert os.path.exists(ev.sample_path(str(tmp_path), 7, ema=True))


def test_feature_metrics_of_perfect_and_collapsed_generators(tiny, test_split):
  _, clf, _ = tiny
  images, labels = test_split
  real_stats = evaluation.reference_statistics(clf, images, VR)
  real_features = evaluation.reference_features(clf, images, VR)
  assert real_features.features.shape == (100, 32) and real_features.radii.shape == (100,)
  perfect = evaluation.classifier_metrics(clf, images, value_range=VR, real_stats=real_stats,
                                          real_features=real_features)
  # The real images against themselves: every point is in its own ball.
  assert perfect['precision'] == 1.0 and perfect['recall'] == 1.0
  assert perfect['coverage'] == 1.0 and perfect['kid_prdc_samples'] == 100
  # Confident predictions spread over all 10 classes score nearly K = 10.
  assert 5.0 < perfect['classifier_score'] <= 10.0 + 1e-6
  collapsed = evaluation.classifier_metrics(
      clf, np.repeat(images[:1], 100, axis=0), value_range=VR, real_stats=real_stats,
      real_features=real_features)
  # 100 copies of real image 0: inside the real manifold, but the fake radii
  # are 0, so at most image 0 itself is recalled; few reals are covered.
  assert collapsed['precision'] == 1.0 and collapsed['recall'] <= 0.01
  assert collapsed['coverage'] < 0.5
  assert collapsed['kid'] > 10 * abs(perfect['kid'])
  assert collapsed['classifier_score'] == pytest.approx(1.0, abs=1e-5)
  # Without real features: the classifier score only; with too few samples: an error.
  plain = evaluation.classifier_metrics(clf, images, value_range=VR)
  assert 'kid' not in plain and plain['classifier_score'] == pytest.approx(
      perfect['classifier_score'])
  with pytest.raises(ValueError, match='equal sample sizes'):
    evaluation.classifier_metrics(clf, images[:50], value_range=VR,
                                  real_features=real_features)


def test_stacked_classifier_score_is_over_digit_triples(tiny, test_split):
  _, clf, _ = tiny
  images, labels = test_split
  by_class = {int(labels[i]): images[i, ..., 0] for i in range(10)}
  triples = [(a, b, (a + b) % 10) for a in range(10) for b in range(5)]  # 50 modes
  stacked = np.stack([np.stack([by_class[k] for k in t], -1) for t in triples])
  m = evaluation.classifier_metrics(clf, stacked, value_range=VR, stacked=True)
  # 50 equally used triples, classified (nearly) with certainty: about 50 > K = 10.
  assert 25.0 < m['classifier_score'] <= 50.0 + 1e-3


def test_evaluator_reports_the_feature_metrics(tiny):
  data, _, cache = tiny
  config = _cgan_config(data, cache)
  info = input_pipeline.get_info(data)
  spec = factory.build_spec(config, info)
  ev = evaluation.Evaluator(config, spec, info)
  assert ev.real_features.features.shape[0] == 60 == ev.real_stats[2]
  state = steps.init_state(spec, jax.random.PRNGKey(0), info.shape)
  m = ev.classifier_metrics(state)
  for key in ('kid', 'precision', 'recall', 'density', 'coverage', 'classifier_score'):
    assert math.isfinite(m[f'eval/{key}']), key
  assert m['eval/kid_prdc_samples'] == 60
  for key in ('precision', 'recall', 'coverage'):
    assert 0.0 <= m[f'eval/{key}'] <= 1.0
  assert 1.0 - 1e-6 <= m['eval/classifier_score'] <= 10.0 + 1e-6


def test_evaluation_cli_takes_config_overrides(tmp_path, capsys):
  # The project's one CLI convention: --config.x overrides work here too, and an
  # error is one paragraph naming the field.
  from gan_jax import evaluation as evaluation_lib  # pylint: disable=g-import-not-at-top
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  config = os.path.join(root, 'experiments', 'cgan_fashion_mnist.py')
  rc = evaluation_lib.main(['--config', config,
                            f'--config.eval.classifier={tmp_path / "none"}',
                            '--config.eval.train_classifier_epochs=0'])
  err = capsys.readouterr().err.strip()
  assert rc == 2 and '\n' not in err
  assert err.startswith("gan_jax.evaluation: error: config.eval.classifier=") and 'none' in err
  assert evaluation_lib.main(['--config', config, '--config.eval.clasifier=x']) == 2
  assert 'clasifier' in capsys.readouterr().err


def test_a_missing_classifier_is_trained_when_first_needed_after_early_pictures(tiny, tmp_path):
  data, _, _ = tiny
  cache = str(tmp_path / 'cache')
  config = _cgan_config(data, cache)
  config.train.update(dict(num_steps=4, eval_every=4, checkpoint_every=4, sample_every=1))
  config.eval.train_classifier_epochs = 1
  workdir = str(tmp_path / 'run')
  last = train.train_and_evaluate(config, workdir)
  clf_meta = os.path.join(cache, classifier.dataset_key(data), 'classifier.json')
  assert os.path.exists(clf_meta)
  # Pictures (and the curves) of steps 1-3 came before the classifier existed.
  early = os.path.join(workdir, 'samples', 'step_0000001.png')
  assert os.path.getmtime(early) <= os.path.getmtime(clf_meta)
  for step in (1, 2, 3, 4):
    assert os.path.exists(os.path.join(workdir, 'samples', f'step_{step:07d}.png'))
  assert os.path.exists(os.path.join(workdir, 'curves.png'))
  assert 'eval/label_accuracy' in last and 'eval/ema/label_accuracy' not in last
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    eval_steps = [r['step'] for r in map(json.loads, f) if 'eval/label_accuracy' in r]
  assert eval_steps == [4]  # picture steps log no evaluation
