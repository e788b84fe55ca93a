"""The evaluation classifier: a small CNN trained by this project on the GAN's dataset.

Classifier-based GAN metrics (CGAN label accuracy, class coverage, Stacked-MNIST
mode counts, a Frechet distance in the classifier's penultimate features; see
`gan_jax/metrics.py`) need a classifier of the GAN's own dataset. Published
numbers use a pretrained MNIST classifier; none can be downloaded here, so this
module trains one, saves it in a workdir with orbax, and reuses it:

    python -m gan_jax.classifier --dataset fashion_mnist
    python -m gan_jax.classifier --dataset mnist --data_dir ~/tensorflow_datasets
    python -m gan_jax.classifier --dataset idx --data_dir /path/to/idx --workdir runs/clf

The default workdir is `runs/classifiers/<dataset key>` (`dataset_key`), which is
also where a GAN config's `eval.classifier = 'runs/classifiers'` looks: a
classifier is trained once per dataset and shared by every GAN on it. Running the
command again reuses the saved classifier (pass --retrain to train anew).

The classifier always sees one-channel images in [0, 1]; `TrainedClassifier`
rescales from the GAN's `value_range` and splits stacked images into their
channels, so GAN samples can be classified as they come out of G.

A workdir holds `classifier.json` (dataset, architecture, test accuracy) and
`params/` (an orbax StandardCheckpointer directory).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from typing import Any, Sequence

from absl import logging
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
import scipy.special

from gan_jax import input_pipeline

METADATA_FILE = 'classifier.json'
PARAMS_DIR = 'params'
DEFAULT_CACHE_DIR = os.path.join('runs', 'classifiers')
# Images are classified in fixed-size chunks so that one compiled shape serves
# every call (the last chunk is padded).
EVAL_BATCH = 500
DATASETS = ('fashion_mnist', 'mnist', 'idx', 'tfds')


class CNN(nn.Module):
  """Two 3x3 conv + 2x2 max-pool stages, a hidden Dense layer, then the logits.

  Returns (logits, features); `features` are the hidden layer's ReLU
  activations (the penultimate layer), the space of the Frechet distance.
  Inputs are (B, H, W, 1) images in [0, 1].
  """
  num_classes: int = 10
  widths: Sequence[int] = (32, 64)
  hidden: int = 128

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    h = x - 0.5  # Centred inputs: Adam at 1e-3 converges faster.
    for i, width in enumerate(self.widths):
      h = nn.relu(nn.Conv(width, (3, 3), name=f'conv_{i}')(h))
      h = nn.max_pool(h, (2, 2), strides=(2, 2))
    h = h.reshape(h.shape[0], -1)
    features = nn.relu(nn.Dense(self.hidden, name='hidden')(h))
    return nn.Dense(self.num_classes, name='logits')(features), features


# ---------------------------------------------------------------------------
# Datasets.
# ---------------------------------------------------------------------------


def base_data_config(data_config: Any) -> ml_collections.ConfigDict:
  """The one-channel dataset a classifier for `data_config` is trained on.

  Stacked data is classified channel by channel with a classifier of its base
  dataset. The copy is scaled to [0, 1], the range the classifier works in.
  """
  cfg = ml_collections.ConfigDict(dict(data_config))
  if cfg.get('name') == 'stacked':
    if cfg.get('base') is None:
      raise ValueError("data.name='stacked' needs data.base (an image data config).")
    cfg = ml_collections.ConfigDict(dict(cfg.base))
  if cfg.get('name') in input_pipeline.MIXTURE_NAMES:
    raise ValueError(
        f'data.name={cfg.get("name")!r} is a 2-D mixture; classifier metrics are for '
        f'image datasets ({", ".join(DATASETS)}, or stacked ones).')
  cfg.value_range = (0.0, 1.0)
  return cfg


def dataset_key(data_config: Any) -> str:
  """A directory name that identifies the (base) dataset, e.g. 'fashion_mnist'."""
  cfg = base_data_config(data_config)
  name = cfg.get('name')
  if name in ('fashion_mnist', 'mnist'):
    return name
  if name == 'idx':
    directory = os.path.normpath(os.path.abspath(os.path.expanduser(cfg.get('dir', ''))))
    return 'idx_' + os.path.basename(directory)
  if name == 'tfds':
    return 'tfds_' + str(cfg.get('tfds_name')).replace('/', '_').replace(':', '_')
  raise ValueError(f'Unknown data.name={name!r}; valid: {list(DATASETS)} or stacked.')


def data_config_for(dataset: str, data_dir: str | None = None,
                    tfds_name: str | None = None) -> ml_collections.ConfigDict:
  """A data config for the CLI's --dataset / --data_dir / --tfds_name."""
  if dataset not in DATASETS:
    raise ValueError(f'Unknown --dataset={dataset!r}; valid: {list(DATASETS)}.')
  cfg = ml_collections.ConfigDict(dict(name=dataset, value_range=(0.0, 1.0)))
  if dataset in ('fashion_mnist', 'idx'):
    if dataset == 'idx' and not data_dir:
      raise ValueError('--dataset=idx needs --data_dir, the folder of the IDX .gz files.')
    cfg.dir = data_dir or input_pipeline.FASHION_MNIST_DIR
  else:
    if dataset == 'tfds' and not tfds_name:
      raise ValueError('--dataset=tfds needs --tfds_name (e.g. kmnist).')
    cfg.tfds_name = tfds_name or 'mnist'
    if data_dir:
      cfg.tfds_data_dir = data_dir
  return cfg


def resolve_workdir(path: str, data_config: Any) -> str:
  """`path` if it holds a classifier, else the dataset's entry of the cache `path`."""
  if os.path.exists(os.path.join(path, METADATA_FILE)):
    return path
  return os.path.join(path, dataset_key(data_config))


# ---------------------------------------------------------------------------
# Training.
# ---------------------------------------------------------------------------


def _loss(model: CNN, params, images, labels):
  logits, _ = model.apply({'params': params}, images)
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
  return loss, jnp.mean(jnp.argmax(logits, -1) == labels)


def _make_train_step(model: CNN, tx: optax.GradientTransformation):
  @jax.jit
  def train_step(params, opt_state, images, labels):
    grads, acc = jax.grad(lambda p: _loss(model, p, images, labels), has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, acc
  return train_step


def _make_apply(model: CNN):
  return jax.jit(lambda params, x: model.apply({'params': params}, x))


def _chunked(apply_fn, params, images: np.ndarray, batch: int = EVAL_BATCH
             ) -> tuple[np.ndarray, np.ndarray]:
  """(logits, features) of (N, H, W, 1) images, in padded chunks of `batch`."""
  n = images.shape[0]
  logits, features = [], []
  for start in range(0, n, batch):
    chunk = images[start:start + batch]
    pad = batch - chunk.shape[0]
    if pad:
      chunk = np.concatenate([chunk, np.zeros((pad,) + chunk.shape[1:], chunk.dtype)])
    lg, ft = apply_fn(params, jnp.asarray(chunk, jnp.float32))
    logits.append(lg[:batch - pad])
    features.append(ft[:batch - pad])
  return (np.asarray(jnp.concatenate(logits)), np.asarray(jnp.concatenate(features)))


def _as_nhwc(images: np.ndarray) -> np.ndarray:
  return images[..., None] if images.ndim == 3 else images


def train(data_config: Any, workdir: str, *, num_epochs: int = 4, batch_size: int = 128,
          learning_rate: float = 1e-3, seed: int = 0, widths: Sequence[int] = (32, 64),
          hidden: int = 128, verbose: bool = True) -> dict[str, Any]:
  """Trains a classifier of the (base) dataset of `data_config`, saves it in `workdir`.

  Adam with a cosine decay of the learning rate to 0 over `num_epochs` epochs
  of shuffled minibatches (the last partial batch of an epoch is dropped).
  Returns the metadata written to `workdir/classifier.json`, including the
  test-split accuracy.
  """
  cfg = base_data_config(data_config)
  start = time.perf_counter()
  train_x, train_y = input_pipeline.load_arrays(cfg, 'train')
  test_x, test_y = input_pipeline.load_arrays(cfg, 'test')
  info = input_pipeline.get_info(cfg)
  train_x, test_x = _as_nhwc(train_x), _as_nhwc(test_x)
  if train_x.shape[-1] != 1:
    raise ValueError(f'the classifier is for one-channel images; got {train_x.shape[1:]}.')
  n = train_x.shape[0]
  batch_size = min(int(batch_size), n)
  steps_per_epoch = n // batch_size
  model = CNN(num_classes=info.num_classes, widths=tuple(widths), hidden=int(hidden))
  key = jax.random.PRNGKey(seed)
  params = model.init(key, jnp.zeros((1,) + train_x.shape[1:], jnp.float32))['params']
  schedule = optax.cosine_decay_schedule(learning_rate, num_epochs * steps_per_epoch)
  tx = optax.adam(schedule)
  opt_state = tx.init(params)
  train_step = _make_train_step(model, tx)
  rng = np.random.default_rng(seed)
  for epoch in range(num_epochs):
    perm = rng.permutation(n)
    accs = []
    for i in range(steps_per_epoch):
      idx = perm[i * batch_size:(i + 1) * batch_size]
      params, opt_state, acc = train_step(params, opt_state, train_x[idx], train_y[idx])
      accs.append(acc)
    if verbose:
      print(f'epoch {epoch + 1}/{num_epochs}: train accuracy '
            f'{float(np.mean(jax.device_get(accs))):.4f} '
            f'({time.perf_counter() - start:.0f} s)', flush=True)
  logits, _ = _chunked(_make_apply(model), params, test_x)
  test_accuracy = float(np.mean(np.argmax(logits, -1) == test_y))
  meta = dict(
      dataset=dataset_key(cfg), data=cfg.to_dict(), image_shape=list(train_x.shape[1:]),
      num_classes=int(info.num_classes), widths=list(widths), hidden=int(hidden),
      num_epochs=int(num_epochs), batch_size=batch_size, learning_rate=learning_rate,
      seed=int(seed), num_train=int(n), num_test=int(test_x.shape[0]),
      test_accuracy=test_accuracy, train_seconds=round(time.perf_counter() - start, 1))
  save(workdir, params, meta)
  return meta


def save(workdir: str, params: Any, meta: dict[str, Any]) -> None:
  """Writes params (orbax) then metadata, so classifier.json marks a complete save."""
  workdir = os.path.abspath(workdir)
  os.makedirs(workdir, exist_ok=True)
  meta_path = os.path.join(workdir, METADATA_FILE)
  if os.path.exists(meta_path):
    os.remove(meta_path)
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(os.path.join(workdir, PARAMS_DIR), params, force=True)
  checkpointer.wait_until_finished()
  with open(meta_path, 'w') as f:
    json.dump(meta, f, indent=2)


# ---------------------------------------------------------------------------
# Using a trained classifier.
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class Predictions:
  """Per-sample outputs; for stacked images, one column per channel.

  labels: (N,) or (N, C) int32 argmax classes.
  features: (N, hidden) or (N, C * hidden) penultimate activations (the
    channels' features concatenated).
  probabilities: (N, K) or (N, C, K) float32 softmax of the logits (class
    probabilities p(y|x), for the classifier score).
  """
  labels: np.ndarray
  features: np.ndarray
  probabilities: np.ndarray | None = None


class TrainedClassifier:
  """A saved classifier, ready to classify images in any value range."""

  def __init__(self, model: CNN, params: Any, meta: dict[str, Any]):
    self.model = model
    self.params = params
    self.meta = meta
    self._apply = _make_apply(model)

  @property
  def num_classes(self) -> int:
    return self.model.num_classes

  @property
  def test_accuracy(self) -> float:
    return float(self.meta['test_accuracy'])

  def predict(self, images: np.ndarray,
              value_range: Sequence[float] = (0.0, 1.0)) -> Predictions:
    """Classifies (N, H, W) or (N, H, W, C) images scaled to `value_range`.

    Each of the C channels is classified on its own (C = 3 for stacked data);
    with C = 1 the labels are (N,).
    """
    images = _as_nhwc(np.asarray(images, np.float32))
    expected = tuple(self.meta['image_shape'][:2])
    if images.ndim != 4 or images.shape[1:3] != expected:
      raise ValueError(f'images must have shape (N, {expected[0]}, {expected[1]}, C) for '
                       f'the classifier of {self.meta["dataset"]}; got {images.shape}.')
    lo, hi = (float(v) for v in value_range)
    images = (images - lo) / (hi - lo)
    n, h, w, c = images.shape
    # Channels -> batch: (N, H, W, C) -> (N * C, H, W, 1), sample-major.
    flat = np.moveaxis(images, -1, 1).reshape(n * c, h, w, 1)
    logits, features = _chunked(self._apply, self.params, flat)
    labels = np.argmax(logits, -1).astype(np.int32).reshape(n, c)
    features = features.reshape(n, c * features.shape[-1])
    probs = scipy.special.softmax(logits.astype(np.float64), axis=-1)
    probs = probs.astype(np.float32).reshape(n, c, logits.shape[-1])
    return Predictions(labels[:, 0] if c == 1 else labels, features,
                       probs[:, 0] if c == 1 else probs)


def load(workdir: str) -> TrainedClassifier:
  """Loads the classifier saved by `train` in `workdir`."""
  meta_path = os.path.join(workdir, METADATA_FILE)
  if not os.path.exists(meta_path):
    raise FileNotFoundError(f'no trained classifier in {workdir} ({METADATA_FILE} is missing).')
  with open(meta_path) as f:
    meta = json.load(f)
  model = CNN(num_classes=int(meta['num_classes']), widths=tuple(meta['widths']),
              hidden=int(meta['hidden']))
  template = jax.eval_shape(
      lambda: model.init(jax.random.PRNGKey(0),
                         jnp.zeros((1,) + tuple(meta['image_shape']), jnp.float32)))['params']
  params = ocp.StandardCheckpointer().restore(
      os.path.join(os.path.abspath(workdir), PARAMS_DIR), template)
  return TrainedClassifier(model, params, meta)


def _train_command(data_config: Any, workdir: str) -> str:
  cfg = base_data_config(data_config)
  name = cfg.get('name')
  cmd = f'python -m gan_jax.classifier --dataset {name} --workdir {workdir}'
  if name == 'idx' or (name == 'fashion_mnist' and
                       cfg.get('dir') != input_pipeline.FASHION_MNIST_DIR):
    cmd += f' --data_dir {cfg.get("dir")}'
  if name == 'tfds':
    cmd += f' --tfds_name {cfg.get("tfds_name")}'
  if name in ('tfds', 'mnist') and cfg.get('tfds_data_dir'):
    cmd += f' --data_dir {cfg.get("tfds_data_dir")}'
  return cmd


def exists(path: str, data_config: Any) -> bool:
  """Whether `path` (a classifier workdir or a cache) holds a classifier for `data_config`."""
  return os.path.exists(os.path.join(resolve_workdir(path, data_config), METADATA_FILE))


def load_for(path: str, data_config: Any) -> TrainedClassifier:
  """The classifier at `path` (a classifier workdir or a cache of them) for `data_config`.

  Raises FileNotFoundError with the command that trains it when there is none,
  and ValueError when the saved classifier is for another image shape or
  number of classes.
  """
  workdir = resolve_workdir(path, data_config)
  if not os.path.exists(os.path.join(workdir, METADATA_FILE)):
    raise FileNotFoundError(
        f'config.eval.classifier={path!r}: no trained classifier for dataset '
        f'{dataset_key(data_config)!r} in {workdir}. Train it once (4 epochs of the '
        f'train split) with:\n  {_train_command(data_config, workdir)}\nor set '
        "--config.eval.classifier='' to evaluate without classifier metrics.")
  clf = load(workdir)
  if clf.meta['dataset'] != dataset_key(data_config):
    logging.warning('config.eval.classifier: the classifier in %s was trained on %r, '
                    'the data is %r.', workdir, clf.meta['dataset'], dataset_key(data_config))
  info = input_pipeline.get_info(base_data_config(data_config))
  if tuple(clf.meta['image_shape']) != tuple(info.shape) or clf.num_classes != info.num_classes:
    raise ValueError(
        f'the classifier in {workdir} was trained on {clf.meta["dataset"]} images of shape '
        f'{tuple(clf.meta["image_shape"])} with {clf.num_classes} classes; the data has '
        f'shape {info.shape} with {info.num_classes} classes (per channel). Point '
        'config.eval.classifier at a classifier of this dataset.')
  return clf


# ---------------------------------------------------------------------------
# Command line (a second entry point, like sweep.py).
# ---------------------------------------------------------------------------


def _parse(argv: Sequence[str]):
  """absl flags of the command line (the project's one CLI convention)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  fv = flags.FlagValues()
  flags.DEFINE_enum('dataset', 'fashion_mnist', DATASETS, 'The image dataset.',
                    flag_values=fv)
  flags.DEFINE_string('data_dir', None, 'IDX folder (fashion_mnist, idx) or TFDS data_dir '
                      '(mnist, tfds).', flag_values=fv)
  flags.DEFINE_string('tfds_name', None, 'TFDS name for --dataset=tfds.', flag_values=fv)
  flags.DEFINE_string('workdir', None, f'Where to save it; default {DEFAULT_CACHE_DIR}/'
                      '<dataset key>.', flag_values=fv)
  flags.DEFINE_integer('num_epochs', 4, 'Training epochs.', lower_bound=1, flag_values=fv)
  flags.DEFINE_integer('batch_size', 128, 'Batch size.', lower_bound=1, flag_values=fv)
  flags.DEFINE_float('learning_rate', 1e-3, 'Adam learning rate.', lower_bound=0.0,
                     flag_values=fv)
  flags.DEFINE_integer('seed', 0, 'Seed.', lower_bound=0, flag_values=fv)
  flags.DEFINE_bool('retrain', False, 'Train even if the workdir already holds a '
                    'classifier.', flag_values=fv)
  fv(['gan_jax.classifier', *argv])
  return fv


def main(argv: Sequence[str] | None = None) -> int:
  from absl import flags  # pylint: disable=g-import-not-at-top
  try:
    args = _parse(sys.argv[1:] if argv is None else argv)
  except flags.Error as e:
    print(f'gan_jax.classifier: error: {" ".join(str(e).split())}', file=sys.stderr)
    return 2
  try:
    data_config = data_config_for(args.dataset, args.data_dir, args.tfds_name)
    workdir = args.workdir or os.path.join(DEFAULT_CACHE_DIR, dataset_key(data_config))
    if not args.retrain and os.path.exists(os.path.join(workdir, METADATA_FILE)):
      meta = load(workdir).meta
      print(f'Reusing the classifier in {workdir} (--retrain to train a new one).')
    else:
      meta = train(data_config, workdir, num_epochs=args.num_epochs,
                   batch_size=args.batch_size, learning_rate=args.learning_rate,
                   seed=args.seed)
  except (ValueError, FileNotFoundError) as e:
    print(f'gan_jax.classifier: error: {" ".join(str(e).split())}', file=sys.stderr)
    return 2
  except Exception as e:  # pylint: disable=broad-except
    # A bug: one paragraph, the traceback in <workdir>/error.log (errors.py).
    from gan_jax import errors  # pylint: disable=g-import-not-at-top
    return errors.report_bug(e, program='gan_jax.classifier', workdir=args.workdir)
  print(f'{meta["dataset"]}: test accuracy {100 * meta["test_accuracy"]:.2f}% on '
        f'{meta["num_test"]} test images ({meta["train_seconds"]} s to train); saved in '
        f'{os.path.abspath(workdir)}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
