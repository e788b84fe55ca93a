"""Periodic evaluation: samples from a fixed z, pictures and sample-based metrics.

The `Evaluator` is built once per run (it fixes z and labels, so pictures are
comparable across steps, and jit-compiles the sampler once); calling it on a
state returns a flat dict of `eval/...` metrics and writes the PNGs.

Image datasets get classifier-based metrics when `config.eval.classifier`
names a trained evaluation classifier (`gan_jax/classifier.py`): G draws
`config.eval.num_samples` samples from a fixed z (labels 0, 1, ..., K-1, 0, ...
for a CGAN), the classifier labels them, and `classifier_metrics` turns the
labels and penultimate features into numbers (`gan_jax/metrics.py`).

The same code measures the reference rows of a results table, the floor (real
images as "samples") and the ceiling (an untrained G), next to a trained G:

  python -m gan_jax.evaluation --config experiments/cgan_fashion_mnist.py \
      --workdir runs/cgan_fashion_mnist --output runs/cgan_reference.json \
      --config.eval.num_samples=10000
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan_jax import classifier as classifier_lib
from gan_jax import input_pipeline
from gan_jax import metrics as metrics_lib
from gan_jax import plotting
from gan_jax import steps

# Evaluation noise is keyed apart from training (PRNGKey(seed) starts training).
EVAL_KEY_OFFSET = 1_000_003


def eval_key(config: ml_collections.ConfigDict) -> jax.Array:
  """The fixed key of a run's evaluation z: every evaluation, main or sweep, uses it."""
  return jax.random.PRNGKey(int(config.seed) + EVAL_KEY_OFFSET)

GRID_COLUMNS = 10
# G is sampled in chunks of this many so one compiled shape serves any num_samples.
SAMPLE_CHUNK = 500

FeatureStats = tuple[np.ndarray, np.ndarray, int]  # mean, covariance, sample count
# KID, precision / recall and density / coverage use the first
# min(n, FEATURE_METRICS_MAX_SAMPLES) of the Frechet distance's n samples (and
# real images): their pairwise terms cost O(n^2 d) where the Frechet distance is
# O(n d^2). Measured at 5,000 x 128 on 2 cores under load average 6: 1.2 s once
# (real radii and the real KID term) and 2.0 s per evaluation; 10,000 would be
# about 4x that.
FEATURE_METRICS_MAX_SAMPLES = 5000


class RealFeatures(NamedTuple):
  """What KID and the k-NN metrics need of the real images' classifier features.

  features: (n, d) float64, the first min(N, FEATURE_METRICS_MAX_SAMPLES) rows.
  radii: (n,) their k = 5 nearest-neighbour radii (`metrics.knn_radii`).
  kid_real_term: the real-real sum of KID, sum_{i != j} k(x_i, x_j) / (n (n-1)).
  """
  features: np.ndarray
  radii: np.ndarray
  kid_real_term: float


def real_feature_reference(features: np.ndarray,
                           max_samples: int = FEATURE_METRICS_MAX_SAMPLES) -> RealFeatures:
  """`RealFeatures` of the first `max_samples` rows of (N, d) real features."""
  x = np.asarray(features, np.float64)[:max_samples]
  n = x.shape[0]
  return RealFeatures(x, metrics_lib.knn_radii(x, metrics_lib.KNN_K),
                      metrics_lib.polynomial_kernel_sum(x) / (n * (n - 1)))


def mixture_summary(samples, centers, std) -> dict[str, jax.Array]:
  """The mixture metrics every evaluation reports: modes, high_quality, kl, kl_all.

  `metrics.mixture_metrics` without the histogram; pure, so the sweep vmaps it
  over seeds and the Evaluator calls it on one.
  """
  m = metrics_lib.mixture_metrics(samples, centers, std)
  return {k: m[k] for k in ('modes', 'high_quality', 'kl', 'kl_all')}


# One compiled program per sample shape: op by op, each evaluation of a short
# run spent 0.3 s dispatching (and, the first time, compiling) 30 small ops.
mixture_summary_compiled = jax.jit(mixture_summary)
# The classifier metrics likewise (op by op, their first call took 3.5 s, compiled 1.5 s).
_stacked_mode_metrics = jax.jit(metrics_lib.stacked_mode_metrics)
_stacked_mode_ids = jax.jit(metrics_lib.stacked_mode_ids)
_class_histogram_metrics = jax.jit(metrics_lib.class_histogram_metrics, static_argnums=1)
_label_accuracy = jax.jit(metrics_lib.label_accuracy)


def reference_statistics(clf: classifier_lib.TrainedClassifier, images: np.ndarray,
                         value_range) -> FeatureStats:
  """Mean, covariance and count of the classifier features of real images."""
  features = clf.predict(images, value_range).features
  mu, sigma = metrics_lib.feature_statistics(features)
  return mu, sigma, features.shape[0]


def reference_features(clf: classifier_lib.TrainedClassifier, images: np.ndarray,
                       value_range) -> RealFeatures:
  """`RealFeatures` of the classifier features of real images."""
  return real_feature_reference(clf.predict(images, value_range).features)


def classifier_metrics(clf: classifier_lib.TrainedClassifier, samples: np.ndarray, *,
                       value_range, requested_labels: np.ndarray | None = None,
                       stacked: bool = False,
                       real_stats: FeatureStats | None = None,
                       real_features: RealFeatures | None = None) -> dict[str, float]:
  """Classifier-based metrics of N image samples (no `eval/` prefix).

  Returns:
    num_samples: N.
    label_accuracy: with `requested_labels` (a CGAN's y, or for stacked data
      the requested mode id), the fraction classified as asked.
    class_coverage, class_kl: classes predicted at least once and
      KL(class histogram || uniform); not for stacked data.
    stacked_modes, stacked_kl: for stacked data (each channel classified), the
      modes among the 1000 digit triples that occur and KL(mode histogram ||
      uniform) (VEEGAN / PacGAN protocol; they use N = 26,000).
    classifier_fd, classifier_fd_samples: with `real_stats` (from
      `reference_statistics` on n real images), the Frechet distance between
      Gaussians fitted to the classifier's penultimate features of the first
      n samples and of the real images. A Frechet distance in this project's
      classifier's feature space, *not* Inception FID; it is biased upward at
      finite n, so compare values at equal n only.
    kid, precision, recall, density, coverage, kid_prdc_samples: with
      `real_features` (from `reference_features` on real images, n' =
      min(n, FEATURE_METRICS_MAX_SAMPLES) rows), in the same penultimate
      feature space and on the first n' samples (the first n' of the Frechet
      distance's): KID, the unbiased MMD^2 with the cubic polynomial kernel
      (Binkowski et al. 2018; 0 in expectation for a perfect G, can be
      negative), improved precision and recall (Kynkaanniemi et al. 2019) and
      density and coverage (Naeem et al. 2020), all with k = 5 nearest
      neighbours (`metrics.kid`, `metrics.prdc`); kid_prdc_samples is n'.
      In this classifier's features, not Inception's.
    classifier_score: always; exp(E_x KL(p(y|x) || p(y))) of the classifier's
      class probabilities, the Inception Score formula on this classifier (in
      [1, K]; for stacked data over the 1000 digit triples, in [1, 1000]).
  """
  pred = clf.predict(samples, value_range)
  n = int(pred.labels.shape[0])
  out: dict[str, float] = {'num_samples': float(n)}
  if stacked:
    if pred.labels.ndim != 2 or pred.labels.shape[1] != metrics_lib.STACKED_NUM_CHANNELS:
      raise ValueError(f'stacked samples must have {metrics_lib.STACKED_NUM_CHANNELS} '
                       f'channels; got labels of shape {pred.labels.shape}.')
    m = _stacked_mode_metrics(pred.labels)
    out['stacked_modes'] = float(m['modes'])
    out['stacked_kl'] = float(m['kl'])
    predicted = np.asarray(_stacked_mode_ids(pred.labels))
  else:
    if pred.labels.ndim != 1:
      raise ValueError(f'samples must have one channel (or set stacked=True); got '
                       f'labels of shape {pred.labels.shape}.')
    m = _class_histogram_metrics(pred.labels, int(clf.num_classes))
    out['class_coverage'] = float(m['coverage'])
    out['class_kl'] = float(m['kl'])
    predicted = pred.labels
  if requested_labels is not None:
    out['label_accuracy'] = float(_label_accuracy(
        predicted, np.asarray(requested_labels, np.int32)))
  if real_stats is not None:
    mu_real, sigma_real, n_real = real_stats
    if n < n_real:
      raise ValueError(f'the Frechet distance compares equal sample sizes: got {n} '
                       f'samples for {n_real} real images.')
    mu, sigma = metrics_lib.feature_statistics(pred.features[:n_real])
    out['classifier_fd'] = metrics_lib.frechet_distance(mu, sigma, mu_real, sigma_real)
    out['classifier_fd_samples'] = float(n_real)
  if real_features is not None:
    n_feat = int(real_features.features.shape[0])
    if n < n_feat:
      raise ValueError(f'KID and the k-NN metrics compare equal sample sizes: got {n} '
                       f'samples for {n_feat} real feature rows.')
    fake = pred.features[:n_feat]
    out['kid'] = metrics_lib.kid(real_features.features, fake,
                                 real_term=real_features.kid_real_term)['kid']
    out.update(metrics_lib.prdc(real_features.features, fake, metrics_lib.KNN_K,
                                real_radii=real_features.radii))
    out['kid_prdc_samples'] = float(n_feat)
  out['classifier_score'] = metrics_lib.classifier_score(pred.probabilities)
  return out


def _sample_many(sample_fn, g_params, g_batch_stats, z: jax.Array,
                 labels: jax.Array | None) -> np.ndarray:
  """G(z, labels) for all rows of z, in padded chunks of SAMPLE_CHUNK."""
  n = z.shape[0]
  pad = -n % SAMPLE_CHUNK
  if pad:
    z = jnp.concatenate([z, jnp.zeros((pad,) + z.shape[1:], z.dtype)])
    if labels is not None:
      labels = jnp.concatenate([labels, jnp.zeros((pad,), labels.dtype)])
  chunks = []
  for start in range(0, n + pad, SAMPLE_CHUNK):
    y = None if labels is None else labels[start:start + SAMPLE_CHUNK]
    chunks.append(np.asarray(sample_fn(g_params, g_batch_stats,
                                       z[start:start + SAMPLE_CHUNK], y)))
  return np.concatenate(chunks)[:n]


def _check_writable(directory: str, field: str) -> None:
  """ValueError naming `field` unless `directory` is or can be made a writable directory."""
  existing = os.path.abspath(directory)
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing) or not os.access(existing, os.W_OK | os.X_OK):
    raise ValueError(f'{field}: {directory!r} cannot be created ({existing!r} is not a '
                     'writable directory).')


class Evaluator:
  """Samples G at fixed noise and measures what the dataset allows."""

  def __init__(self, config: ml_collections.ConfigDict, spec: steps.GANSpec,
               data_info: input_pipeline.DataInfo):
    self.config = config
    self.spec = spec
    self.data_info = data_info
    self.is_mixture = data_info.is_mixture
    key = eval_key(config)
    if self.is_mixture:
      self.num_samples = int(config.eval.get('num_samples', 2500))
      self.centers, self.std = input_pipeline.mixture_modes(config.data)
      self.rows = 1
    elif spec.conditional:
      self.rows = min(spec.num_classes, 10)
      self.num_samples = self.rows * GRID_COLUMNS
    else:
      self.rows = 8
      self.num_samples = self.rows * GRID_COLUMNS
    self.z = steps.sample_latents(spec, key, self.num_samples)
    self.labels = None
    if spec.conditional:
      # Row i of the grid holds label i.
      self.labels = jnp.repeat(jnp.arange(self.rows), GRID_COLUMNS)
      if self.is_mixture:
        self.labels = jnp.arange(self.num_samples) % spec.num_classes
    self._sample = jax.jit(functools.partial(steps.generate, spec))
    self.classifier = None
    self._deferred_classifier = None
    path = config.eval.get('classifier') or ''
    if path and not self.is_mixture:
      epochs = int(config.eval.get('train_classifier_epochs', 0) or 0)
      if epochs > 0 and not classifier_lib.exists(path, config.data):
        # Trained when first needed, so G's first pictures come without waiting for it;
        # where it will be saved is checked now, before anything is written.
        _check_writable(classifier_lib.resolve_workdir(path, config.data),
                        'config.eval.classifier')
        self._deferred_classifier = (path, epochs, jax.random.fold_in(key, 1))
      else:
        self._init_classifier(path, jax.random.fold_in(key, 1))

  def ensure_classifier(self) -> None:
    """Trains the classifier that config.eval.train_classifier_epochs deferred, if any."""
    if self._deferred_classifier is None:
      return
    path, epochs, key = self._deferred_classifier
    workdir = classifier_lib.resolve_workdir(path, self.config.data)
    print(f'Training the evaluation classifier ({epochs} epoch(s), '
          f'config.eval.train_classifier_epochs) into {workdir}.', flush=True)
    meta = classifier_lib.train(self.config.data, workdir, num_epochs=epochs)
    print(f'Evaluation classifier: {100 * meta["test_accuracy"]:.2f} % test accuracy '
          f'({meta["train_seconds"]:.0f} s).', flush=True)
    self._deferred_classifier = None
    self._init_classifier(path, key)

  def _init_classifier(self, path: str, key: jax.Array) -> None:
    config = self.config
    self.classifier = classifier_lib.load_for(path, config.data)
    self.stacked = config.data.name == 'stacked'
    n = int(config.eval.get('num_samples', 10_000))
    self.clf_z = steps.sample_latents(self.spec, key, n)
    # Every label equally often (up to one), in a fixed order.
    self.clf_labels = (jnp.arange(n, dtype=jnp.int32) % self.spec.num_classes
                       if self.spec.conditional else None)
    real, _ = input_pipeline.load_arrays(config.data, 'test')
    # One pass of the classifier gives both references.
    features = self.classifier.predict(real[:n], self.data_info.value_range).features
    mu, sigma = metrics_lib.feature_statistics(features)
    self.real_stats = (mu, sigma, features.shape[0])
    # KID needs 2 rows and the k-NN radii k + 1.
    self.real_features = (real_feature_reference(features)
                          if features.shape[0] > metrics_lib.KNN_K else None)

  def samples(self, state: steps.GANState, *, use_ema: bool = False) -> np.ndarray:
    params = state.ema_params if use_ema else state.g_params
    return np.asarray(self._sample(params, state.g_batch_stats, self.z, self.labels))

  @property
  def ema(self) -> bool:
    """Whether the run keeps an EMA of G (config.ema_decay > 0): it is evaluated too."""
    return self.spec.ema_decay > 0

  def classifier_metrics(self, state: steps.GANState, *,
                         use_ema: bool = False) -> dict[str, float]:
    """`classifier_metrics` of `eval.num_samples` samples, keys prefixed `eval/`."""
    params = state.ema_params if use_ema else state.g_params
    samples = _sample_many(self._sample, params, state.g_batch_stats,
                           self.clf_z, self.clf_labels)
    m = classifier_metrics(
        self.classifier, samples, value_range=self.data_info.value_range,
        requested_labels=None if self.clf_labels is None else np.asarray(self.clf_labels),
        stacked=self.stacked, real_stats=self.real_stats,
        real_features=self.real_features)
    m['classifier_test_accuracy'] = self.classifier.test_accuracy
    return {f'eval/{k}': v for k, v in m.items()}

  @staticmethod
  def sample_path(workdir: str, step: int, *, ema: bool = False) -> str:
    """Where `__call__` writes the picture of `step` (of the EMA G under samples/ema/)."""
    return os.path.join(workdir, 'samples', *(('ema',) if ema else ()),
                        f'step_{step:07d}.png')

  def __call__(self, state: steps.GANState, step: int, workdir: str, *,
               classifier: bool = True) -> dict[str, float]:
    """Metrics and a picture of G; with an EMA (`ema`), of the EMA G too.

    The raw G's keys are `eval/<metric>`, the EMA G's `eval/ema/<metric>` (the
    same metrics at the same z); its picture is `sample_path(..., ema=True)`.
    The EMA G runs with the raw G's BatchNorm statistics. `classifier=False`
    skips the classifier metrics (the loop's cheap picture steps).
    """
    if classifier:
      self.ensure_classifier()
    results = self._evaluate(state, step, workdir, use_ema=False, classifier=classifier)
    if self.ema:
      results.update(self._evaluate(state, step, workdir, use_ema=True,
                                    classifier=classifier))
    return results

  def _evaluate(self, state: steps.GANState, step: int, workdir: str, *,
                use_ema: bool, classifier: bool = True) -> dict[str, float]:
    samples = self.samples(state, use_ema=use_ema)
    prefix = 'eval/ema/' if use_ema else 'eval/'
    path = self.sample_path(workdir, step, ema=use_ema)
    which = ' (EMA of G)' if use_ema else ''
    results = {}
    if self.is_mixture:
      m = mixture_summary_compiled(samples, self.centers, self.std)
      results.update({f'{prefix}{k}': float(v) for k, v in m.items() if k != 'kl_all'})
      plotting.mixture_scatter(
          samples, self.centers, path,
          title=(f'step {step}{which}: {results[prefix + "modes"]:.0f} modes, '
                 f'{100 * results[prefix + "high_quality"]:.1f}% high quality'))
    else:
      if classifier and self.classifier is not None:
        results.update({prefix + k[len('eval/'):]: v for k, v in
                        self.classifier_metrics(state, use_ema=use_ema).items()})
      names = tuple(self.config.data.get('class_names', None) or ())
      row_labels = ([names[i] if i < len(names) else str(i) for i in range(self.rows)]
                    if self.spec.conditional else None)
      plotting.image_grid(samples, path,
                          rows=self.rows, value_range=self.data_info.value_range,
                          row_labels=row_labels, title=f'step {step}{which}')
    return results


# ---------------------------------------------------------------------------
# Reference rows (floor, ceiling) and evaluation of a trained workdir.
# ---------------------------------------------------------------------------


def reference_metrics(config: ml_collections.ConfigDict,
                      workdir: str | None = None) -> dict[str, dict[str, float]]:
  """The classifier metrics of real images, an untrained G and (optionally) a trained G.

  Rows, all with `config.eval.num_samples` samples and the loop's code:
    real_test: the test split as samples (with its labels requested); its
      label accuracy is the classifier's test accuracy and its Frechet distance
      to itself is 0 by construction.
    real_train: as many train-split images as samples, against the test-split
      reference: the floor a perfect generator reaches at this sample size.
    untrained_g: G at its initialisation (config.seed): the ceiling.
    trained_g: the latest checkpoint in `workdir`, when given.
  """
  from gan_jax import checkpointing  # pylint: disable=g-import-not-at-top
  from gan_jax import factory  # pylint: disable=g-import-not-at-top
  if not config.eval.get('classifier'):
    raise ValueError('config.eval.classifier is empty; set it to a trained classifier '
                     '(e.g. runs/classifiers) to compute classifier metrics.')
  data_info = input_pipeline.get_info(config.data)
  spec = factory.build_spec(config, data_info)
  evaluator = Evaluator(config, spec, data_info)
  evaluator.ensure_classifier()
  if evaluator.classifier is None:
    raise ValueError(f'data.name={config.data.name!r} has no classifier metrics.')
  n = evaluator.clf_z.shape[0]
  value_range = data_info.value_range
  rows = {}
  for split in ('test', 'train'):
    images, labels = input_pipeline.load_arrays(config.data, split)
    images, labels = images[:n], labels[:n]
    rows[f'real_{split}'] = classifier_metrics(
        evaluator.classifier, images, value_range=value_range,
        requested_labels=labels if spec.conditional else None,
        stacked=evaluator.stacked, real_stats=evaluator.real_stats,
        real_features=evaluator.real_features)
  state = steps.init_state(spec, jax.random.PRNGKey(config.seed), data_info.shape)
  rows['untrained_g'] = {k[len('eval/'):]: v
                         for k, v in evaluator.classifier_metrics(state).items()}
  if workdir:
    trained, step = checkpointing.restore_latest(workdir, state)
    rows['trained_g'] = {'step': float(step), **{
        k[len('eval/'):]: v for k, v in evaluator.classifier_metrics(trained).items()}}
  for row in rows.values():
    row['classifier_test_accuracy'] = evaluator.classifier.test_accuracy
  return rows


def _check_output(path: str) -> None:
  """--output must be a file we can create, checked before the (long) evaluation."""
  full = os.path.abspath(path or '.')
  if not path or os.path.isdir(full):
    raise ValueError(f'--output={path!r} must be a file path (JSON), not a directory.')
  parent = os.path.dirname(full)
  while not os.path.exists(parent):
    parent = os.path.dirname(parent)
  if not os.path.isdir(parent) or parent != os.path.dirname(full):
    raise ValueError(f'--output={path!r}: its directory {os.path.dirname(full)!r} does '
                     'not exist (or lies under a file).')
  if not os.access(parent, os.W_OK | os.X_OK):
    raise ValueError(f'--output={path!r}: {parent!r} is not writable.')


def main(argv: list[str] | None = None) -> int:
  """`python -m gan_jax.evaluation --config X.py[:variant] [--config.x=...] [--workdir W]`."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  from gan_jax import checkpointing  # pylint: disable=g-import-not-at-top
  argv = list(sys.argv[1:] if argv is None else argv)
  fv = flags.FlagValues()
  config_flags.DEFINE_config_file('config', None, 'An experiment file, e.g. '
                                  'experiments/cgan_fashion_mnist.py.', flag_values=fv,
                                  lock_config=True, sys_argv=['gan_jax.evaluation', *argv])
  flags.DEFINE_string('workdir', None, 'A training workdir to evaluate (its latest '
                      'checkpoint).', flag_values=fv)
  flags.DEFINE_string('output', None, 'Write the rows as JSON here.', flag_values=fv)
  try:
    fv(['gan_jax.evaluation', *argv])
    if fv.config is None:
      raise ValueError('--config is required, e.g. --config experiments/cgan_fashion_mnist.py')
    config = fv.config
    if fv.workdir is not None and not os.path.isdir(fv.workdir):
      raise FileNotFoundError(f'--workdir={fv.workdir!r} is not a directory (a training '
                              'workdir, with checkpoints/).')
    if fv.output is not None:
      _check_output(fv.output)
    start = time.perf_counter()
    rows = reference_metrics(config, fv.workdir)
  except (ValueError, FileNotFoundError, KeyError, AttributeError, TypeError,
          flags.Error, checkpointing.CheckpointError) as e:
    text = str(e).strip().splitlines()
    print(f'gan_jax.evaluation: error: {" ".join(t.strip() for t in text[-3:])}',
          file=sys.stderr)
    return 2
  except Exception as e:  # pylint: disable=broad-except
    # A bug: one paragraph, the traceback in <workdir>/error.log (errors.py).
    from gan_jax import errors  # pylint: disable=g-import-not-at-top
    return errors.report_bug(e, program='gan_jax.evaluation',
                             workdir=fv['workdir'].value if 'workdir' in fv else None)
  for name, row in rows.items():
    print(f'{name:12s} ' + '  '.join(f'{k}={v:.4g}' for k, v in row.items()))
  print(f'({time.perf_counter() - start:.0f} s)')
  if fv.output:
    with open(fv.output, 'w') as f:
      json.dump(rows, f, indent=2)
  return 0


if __name__ == '__main__':
  sys.exit(main())
