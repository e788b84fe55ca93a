"""TFDS datasets through `tfds.data_source`: 'tfds', and 'mnist'.

  * 'tfds': `tfds.data_source(data.tfds_name, data_dir=data.tfds_data_dir)`,
    which reads prepared array_record data without TensorFlow (preparing it
    needs TensorFlow once). `data.image_key` ('image') must be a fixed-shape
    uint8 feature; `data.label_key` ('label', or None for unlabelled data).
  * 'mnist': the same with `data.tfds_name` defaulting to 'mnist'.

The split is decoded once into memory; batches never touch TFDS again.
This module is `gan_jax.datasets.tfds`; the library is imported (lazily) as
`tfds_lib`, so that reading IDX files or mixtures never imports it.
"""

from __future__ import annotations


import numpy as np

from gan_jax.datasets import images as images_lib
from gan_jax.datasets.base import DataConfig

KIND = images_lib.KIND
NAMES = ('tfds',)
ALIASES = ('mnist',)  # data.tfds_name defaults to 'mnist'


def _tfds_name(data_config: DataConfig) -> str:
  name = data_config.get('tfds_name')
  if name is None and data_config.get('name') == 'mnist':
    name = 'mnist'
  if not name:
    raise ValueError("data.name='tfds' needs data.tfds_name, e.g. 'mnist'.")
  return name


def _tfds_source(data_config: DataConfig, split: str):
  """`tfds.data_source(...)`, with a how-to-prepare error if it is missing."""
  import tensorflow_datasets as tfds_lib  # pylint: disable=g-import-not-at-top
  name = _tfds_name(data_config)
  data_dir = data_config.get('tfds_data_dir')
  try:
    return tfds_lib.data_source(
        name, split=split, data_dir=data_dir,
        # Set for data_dir too; TFDS defaults to tfrecord (no random access).
        builder_kwargs={'file_format': 'array_record'},
        download=bool(data_config.get('download', False)))
  # What TFDS raises when the dataset was never prepared in this data_dir.
  except (KeyError, NotImplementedError, FileNotFoundError) as e:
    where = (repr(data_dir) if data_dir
             else '~/tensorflow_datasets (or $TFDS_DATA_DIR)')
    dir_arg = f', data_dir={data_dir!r}' if data_dir else ''
    raise FileNotFoundError(
        f'TFDS dataset {name!r} (split {split!r}) is not prepared in {where}. '
        'Reading it needs no TensorFlow, but preparing it needs TensorFlow '
        'once: `pip install tensorflow-cpu` (or `pip install -e .[prepare]`), '
        'then `python -c "import tensorflow_datasets as tfds; '
        f"tfds.data_source('{name}'{dir_arg})\"` on a machine with internet. "
        "Or read IDX files instead: data.name='idx' with data.dir holding "
        "MNIST's train-images-idx3-ubyte.gz etc., or data.name='fashion_mnist' "
        'after `apt-get install dataset-fashion-mnist`. '
        f'(TFDS said: {type(e).__name__}: {e})') from e


def _tfds_keys(data_config: DataConfig) -> tuple[str, str | None]:
  return (data_config.get('image_key', 'image'),
          data_config.get('label_key', 'label'))


# ---------------------------------------------------------------------------
# The two functions of an image source (see images.py).
# ---------------------------------------------------------------------------


def image_info(data_config: DataConfig) -> tuple[tuple[int, ...], int]:
  """(H, W, C) and num_classes from the dataset's features (opens the source)."""
  features = _tfds_source(data_config, 'train').dataset_info.features
  image_key, label_key = _tfds_keys(data_config)
  shape = tuple(features[image_key].shape)
  if any(d is None for d in shape):
    raise ValueError(f'TFDS feature {image_key!r} of {_tfds_name(data_config)!r}'
                     f' has no fixed shape ({shape}); only fixed-size images '
                     'are supported.')
  num_classes = 1 if label_key is None else int(features[label_key].num_classes)
  return shape, num_classes


def uint8_arrays(data_config: DataConfig,
                 split: str) -> tuple[np.ndarray, np.ndarray]:
  """The whole split: uint8 images (N, H, W, C) and int32 labels (N,)."""
  source = _tfds_source(data_config, split)
  image_key, label_key = _tfds_keys(data_config)
  shape = tuple(source.dataset_info.features[image_key].shape)
  images = np.empty((len(source),) + shape, np.uint8)
  labels = np.zeros((len(source),), np.int32)
  # A one-time decode of the whole split; batches never touch TFDS again.
  for i in range(len(source)):
    example = source[i]
    image = example[image_key]
    if image.dtype != np.uint8:
      raise ValueError(f'TFDS feature {image_key!r} must be uint8, got '
                       f'{image.dtype}.')
    images[i] = image
    if label_key is not None:
      labels[i] = example[label_key]
  return images, labels


# ---------------------------------------------------------------------------
# The source interface (gan_jax/datasets/__init__.py).
# ---------------------------------------------------------------------------


info, arrays, batches = images_lib.ImageSource(image_info, uint8_arrays).interface()
