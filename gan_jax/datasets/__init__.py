"""Data sources by name: one module per source, and the registry that maps a
`data.name` to its module.

  mixtures.py  'ring', 'grid'            2-D Gaussian mixtures (kind 'mixture')
  idx.py       'idx', alias 'fashion_mnist'  MNIST-format IDX files (kind 'image')
  tfds.py      'tfds', alias 'mnist'     tfds.data_source, no TensorFlow
  stacked.py   'stacked'                 three base images -> C**3 modes
  images.py    helpers of the image sources (scaling, epochs, shards)
  base.py      DataInfo and the kinds

`gan_jax.input_pipeline` (get_info, load_arrays, make_iterator, mixture_modes)
looks the name up here and calls the module; nothing else in gan_jax branches on
a dataset's name: evaluation, plotting and the sweep branch on `DataInfo.kind`.

The interface of a source module:

  NAMES: tuple[str, ...]   the data.name values it serves
  ALIASES: tuple[str, ...] optional: more names, with defaults of their own
                           (read data.name to tell them apart)
  KIND: str                base.MIXTURE or base.IMAGE
  info(cfg) -> DataInfo    cheap: shape of one example, classes, value range
  arrays(cfg, split) -> (x float32 (N, *shape), label int32 (N,))
                           a whole split in memory; ValueError if infinite
  batches(cfg, *, split, batch_size, seed, process_index, process_count,
          skip_batches) -> iterator of {'x': float32, 'label': int32}
                           infinite; checks the config before returning;
                           skip_batches=k equals dropping the first k batches
  modes(cfg) -> (centres (M, 2), std) and make_sampler(cfg) -> a pure JAX
      `(key, n) -> batch`                        kind 'mixture' only
  image_info(cfg) -> (shape, num_classes) and uint8_arrays(cfg, split) ->
      (uint8 images (N, H, W, C), int32 labels)  optional, for kind 'image':
      a source with these can be the base of 'stacked', and gets info, arrays
      and batches from images.info / images.arrays / images.batches.
  The arguments of `batches` are already checked by make_iterator.

How to add a source:

  * A 2-D Gaussian mixture (say a spiral of modes): write
    `gan_jax/datasets/spiral.py` with NAMES = ('spiral',), KIND = base.MIXTURE,
    `modes(cfg) -> (centres (M, 2), std)` (what the evaluator's mode metrics
    count) and `info, arrays, batches, make_sampler` from
    `mixtures.GaussianMixture(modes)` (the README's "Extend it" has the whole
    file); add `spiral` to SOURCES below (or call `register(module)` from
    outside the package); add tests/test_spiral.py. A 2-D dataset that is not
    a Gaussian mixture writes its own `make_sampler(cfg) -> (key, n) -> batch`
    (pure JAX) and `batches` through `mixtures.sampler_batches`. `gan_jax.main`, the
    evaluator and the sweep reach it through input_pipeline.mixture_modes /
    input_pipeline.mixture_sampler.
  * An image source (say a folder of PNGs): write `gan_jax/datasets/png.py`
    with NAMES, KIND = base.IMAGE, `image_info` and `uint8_arrays`, and
    `info, arrays, batches = images.ImageSource(image_info, uint8_arrays).interface()`
    as idx.py does; add it
    to SOURCES; add tests/test_png.py. It can then be stacked.

Every name of every module in SOURCES is registered; a name served by two
modules is an error at import. Names are listed (in error messages) as every
module's NAMES in SOURCES order, then every module's ALIASES.
"""

from __future__ import annotations

import types

from gan_jax.datasets import idx
from gan_jax.datasets import mixtures
from gan_jax.datasets import stacked
from gan_jax.datasets import tfds
from gan_jax.datasets.base import DataConfig, DataInfo, IMAGE, KINDS, MIXTURE

# The sources. One line here per source module.
SOURCES = (mixtures, idx, tfds, stacked)


def _registry(sources) -> dict[str, types.ModuleType]:
  """name -> module: every module's NAMES (in order), then every ALIASES."""
  registry = {}
  for field in ('NAMES', 'ALIASES'):
    for module in sources:
      if module.KIND not in KINDS:
        raise ValueError(f'{module.__name__}.KIND={module.KIND!r}; valid '
                         f'kinds are {list(KINDS)}.')
      for name in getattr(module, field, ()):
        if name in registry:
          raise ValueError(f'data.name={name!r} is served by both '
                           f'{registry[name].__name__} and {module.__name__}.')
        registry[name] = module
  return registry


# data.name -> source module.
REGISTRY = _registry(SOURCES)
# Every name, as error messages list them: the main names, then the aliases.
NAMES = tuple(REGISTRY)
MIXTURE_NAMES = tuple(n for n in NAMES if REGISTRY[n].KIND == MIXTURE)
IMAGE_NAMES = tuple(n for n in NAMES if REGISTRY[n].KIND == IMAGE)
# The names that can be the base of 'stacked': sources of raw uint8 images.
STACKABLE_NAMES = tuple(n for n in NAMES
                        if hasattr(REGISTRY[n], 'uint8_arrays'))


def register(module: types.ModuleType) -> None:
  """Adds a source module from outside the package (for in-tree ones, add it to SOURCES).

  Its names join the registry as if it were the last entry of SOURCES; a name
  that is taken already is a ValueError.
  """
  global REGISTRY, NAMES, MIXTURE_NAMES, IMAGE_NAMES, STACKABLE_NAMES, SOURCES
  registry = _registry(SOURCES + (module,))
  SOURCES = SOURCES + (module,)
  REGISTRY = registry
  NAMES = tuple(registry)
  MIXTURE_NAMES = tuple(n for n in NAMES if REGISTRY[n].KIND == MIXTURE)
  IMAGE_NAMES = tuple(n for n in NAMES if REGISTRY[n].KIND == IMAGE)
  STACKABLE_NAMES = tuple(n for n in NAMES if hasattr(REGISTRY[n], 'uint8_arrays'))


def source(data_config: DataConfig) -> types.ModuleType:
  """The module serving `data_config.name`; ValueError listing the names."""
  name = data_config.get('name')
  if name not in NAMES:  # a tuple: an unhashable name is just unknown
    raise ValueError(
        f'Unknown data.name={name!r}; valid names are {list(NAMES)}.')
  return REGISTRY[name]


__all__ = ['DataInfo', 'IMAGE', 'IMAGE_NAMES', 'KINDS', 'MIXTURE',
           'MIXTURE_NAMES', 'NAMES', 'REGISTRY', 'SOURCES', 'STACKABLE_NAMES',
           'register', 'source']
