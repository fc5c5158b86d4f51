"""Loading models: a bundled checkpoint, a model file, or a configured model (``models.*``).

:func:`load_model` takes a bundled name or a file path and detects everything else
from the file. :func:`load_reference` and :func:`load_embedder` build the models the
config names (``models.reference``, ``models.embedder``): a file with declared
preprocessing and output convention, or a Python plugin, with the reference's
``classes_map`` applied (:class:`~monitor.model.classmap.ClassMappedModel`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection
from importlib import resources
from pathlib import Path
from typing import Any

from monitor.config import ModelSpec, ModelsSettings
from monitor.errors import ConfigError, NotFoundError
from monitor.jobs.executor import Cached
from monitor.model.adapters import BuiltinModel, HeadsModel
from monitor.model.classmap import ClassMappedModel
from monitor.model.hosting import file_format, open_embedder, open_segmenter
from monitor.model.memo import PredictionMemo
from monitor.model.plugins import check_plugin, load_plugin
from monitor.model.protocol import Embedder, InstanceSegmenter, SegmentationModel

BUNDLED = ("production", "reference")
"""Names of the checkpoints shipped in ``monitor/assets/``."""


def bundled_path(name: str) -> Path:
    """Return the path of a bundled checkpoint (``production`` or ``reference``)."""
    if name not in BUNDLED:
        raise NotFoundError(f"no bundled model {name!r}; bundled: {', '.join(BUNDLED)}")
    return Path(str(resources.files("monitor") / "assets" / f"{name}.safetensors"))


def _existing(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if not path.is_file():
        raise NotFoundError(
            f"model {name_or_path!r} is neither a bundled name ({', '.join(BUNDLED)}) "
            "nor an existing file"
        )
    return path


def load_model(
    name_or_path: str, device: str | None = None, batch_size: int = 16
) -> SegmentationModel:
    """Load a model: ``production`` / ``reference`` (bundled) or a file by its suffix.

    ``.safetensors``: a built-in checkpoint; ``.pt`` / ``.torchscript``: TorchScript;
    ``.onnx``: ONNX (needs ``segmon[onnx]``). An export of the built-in network runs
    as the network; any other export gets its output convention (``instances``,
    ``yolo-seg``), input size, batch axis and class names detected from the file
    (declare them in the config where it cannot tell: :func:`load_reference`).

    Parameters
    ----------
    name_or_path
        A bundled name or a file path.
    device
        ``"cpu"``, ``"cuda"``, or ``None`` for CUDA when available.
    batch_size
        Images per forward pass.

    Returns
    -------
    SegmentationModel
        An export in the ``instances`` convention without a feature map cannot embed.

    Raises
    ------
    NotFoundError
        If the file does not exist.
    UnsafeFormatError
        For any other suffix (pickle checkpoints such as ``.pth`` / ``.ckpt`` / ``.bin``
        are never loaded).
    ConfigError
        For an export whose outputs follow no known convention (the message lists them).

    Examples
    --------
    >>> model = load_model("production", device="cpu")
    >>> model.name.startswith("builtin:production@"), model.categories
    (True, ('disc', 'box', 'triangle', 'star'))
    """
    if name_or_path in BUNDLED:
        return BuiltinModel.from_checkpoint(bundled_path(name_or_path), device, batch_size)
    path = _existing(name_or_path)
    if file_format(path) == "safetensors":
        return BuiltinModel.from_checkpoint(path, device, batch_size)
    spec = ModelSpec(path=str(path), device=device)
    model: SegmentationModel = open_segmenter(path, spec, batch_size=batch_size)
    return model


def _is_plain(spec: ModelSpec) -> bool:
    """Whether the spec is the plain string form (a name or path, nothing declared)."""
    return spec.path is not None and spec.model_dump(exclude_defaults=True) == {"path": spec.path}


def _from_file(spec: ModelSpec, role: str, where: str, batch_size: int) -> Any:
    assert spec.path is not None
    if spec.path in BUNDLED and spec.format is None:
        return BuiltinModel.from_checkpoint(bundled_path(spec.path), spec.device, batch_size)
    path = _existing(spec.path)
    if file_format(path, spec.format) == "safetensors":
        return BuiltinModel.from_checkpoint(path, spec.device, batch_size)
    if role == "embedder":
        return open_embedder(path, spec, where=where, batch_size=batch_size)
    return open_segmenter(path, spec, where=where, batch_size=batch_size)


def load_reference(
    spec: ModelSpec,
    categories: Collection[str] = (),
    *,
    where: str = "models.reference",
    batch_size: int = 16,
) -> InstanceSegmenter:
    """Load the reference model a config names.

    Parameters
    ----------
    spec
        ``models.reference``: a bundled name or file (plain: :func:`load_model`), a
        file with declared settings, or a plugin (``python``).
    categories
        The configured category names (``unmapped: ignore`` keeps only these).
    where
        Names the setting in messages.
    batch_size
        Images per forward pass.

    Raises
    ------
    ConfigError
        For a plugin that cannot be imported or lacks what a reference needs, a file the
        config does not describe well enough, or a ``classes_map`` naming unknown classes.
    """
    model: InstanceSegmenter
    if spec.python is not None:
        model = load_plugin(spec.python, spec.options, "InstanceSegmenter", where)
    elif _is_plain(spec):
        assert spec.path is not None
        model = load_model(spec.path)
    else:
        model = _from_file(spec, "segmenter", where, batch_size)
    if spec.classes_map or spec.unmapped == "ignore":
        keep = set(categories) if spec.unmapped == "ignore" else None
        model = ClassMappedModel(model, spec.classes_map, keep, where)
    return model


def load_embedder(
    models: ModelsSettings,
    reference: InstanceSegmenter | None = None,
    categories: Collection[str] = (),
    *,
    batch_size: int = 16,
) -> Embedder:
    """Load the embedder a config names (``models.embedder``; unset: the reference).

    Parameters
    ----------
    models
        The ``models:`` section.
    reference
        The reference model, if already loaded (reused when no embedder is set).
    categories
        The configured category names (to load the reference when needed).
    batch_size
        Images per forward pass.

    Raises
    ------
    ConfigError
        When no embedder is set and the reference cannot embed (no feature map), or the
        embedder's file or plugin does not give an embedding.
    """
    spec = models.embedder
    if spec is None:
        model: Any = reference or load_reference(models.reference, categories)
        if isinstance(model, ClassMappedModel):
            model = model.inner  # classes do not change the vectors
        if getattr(model, "embedding_dim", None) == 0:
            raise ConfigError(
                f"models.reference ({model.name}) has no feature map to embed with; set "
                "models.embedder (an image-feature ONNX/TorchScript model or a plugin)"
            )
        check_plugin(
            model, "Embedder", "models.reference (the embedder when models.embedder is unset)"
        )
        embedder: Embedder = model
        return embedder
    where = "models.embedder"
    if spec.python is not None:
        found: Embedder = load_plugin(spec.python, spec.options, "Embedder", where)
        return found
    opened: Embedder = _from_file(spec, "embedder", where, batch_size)
    return opened


def share_forward_pass(
    reference: InstanceSegmenter, embedder: Embedder, memo: PredictionMemo | None = None
) -> PredictionMemo | None:
    """Let the shadow job reuse what the embed job computed when both run the same network.

    When ``embedder`` is the model under ``reference`` (the default: ``models.embedder``
    unset) and it can keep predictions (:class:`~monitor.model.adapters.HeadsModel`),
    it gets ``memo`` (a new one if None): each image it embeds also has its instances
    decoded and kept, and the reference's ``predict`` of that image takes them instead
    of running the network again (:mod:`monitor.model.memo`). Worth it only where one
    process runs both jobs with these objects (the service, the demo); elsewhere the
    decoding is wasted.

    Returns
    -------
    PredictionMemo or None
        The memo the embedder now holds; None when the two models differ (nothing shared).

    Examples
    --------
    >>> model = load_model("reference", device="cpu")
    >>> share_forward_pass(model, model) is model.memo, share_forward_pass(model, object())
    (True, None)
    """
    inner: Any = reference.inner if isinstance(reference, ClassMappedModel) else reference
    if inner is not embedder or not isinstance(embedder, HeadsModel):
        return None
    if embedder.memo is None:
        embedder.memo = memo if memo is not None else PredictionMemo()
    return embedder.memo


def load_named(
    name_or_path: str,
    models: ModelsSettings,
    categories: Collection[str] = (),
    *,
    device: str | None = None,
    batch_size: int = 16,
) -> InstanceSegmenter:
    """Load ``reference`` as the config describes it (``models.reference``), else a model.

    ``segmon predict --model`` and ``segmon evaluate --model`` use this: ``reference`` is
    the configured reference model (plugin, declared file or bundled checkpoint, with its
    ``classes_map``); ``production`` and paths go to :func:`load_model`.
    """
    if name_or_path != "reference":
        return load_model(name_or_path, device=device, batch_size=batch_size)
    spec = models.reference
    if device is not None and spec.python is None:
        spec = spec.model_copy(update={"device": device})
    return load_reference(spec, categories, batch_size=batch_size)


def _key(role: str, spec: Any, categories: Collection[str], batch_size: int) -> str:
    settings = spec.model_dump(mode="json") if spec is not None else None
    return json.dumps([role, settings, sorted(categories), batch_size], sort_keys=True)


def reference_recipe(
    spec: ModelSpec, categories: Collection[str] = (), *, batch_size: int = 16
) -> Cached[InstanceSegmenter]:
    """How a Dask worker loads the reference model once (:func:`load_reference`).

    The recipe pickles the settings, not the model; its key is those settings, so a
    worker reuses its model until the config changes.
    """
    build = functools.partial(load_reference, spec, tuple(categories), batch_size=batch_size)
    return Cached(_key("reference", spec, categories, batch_size), build)


def embedder_recipe(
    models: ModelsSettings, categories: Collection[str] = (), *, batch_size: int = 16
) -> Cached[Embedder]:
    """How a Dask worker loads the embedder once (:func:`load_embedder`)."""
    build = functools.partial(load_embedder, models, None, tuple(categories), batch_size=batch_size)
    return Cached(_key("embedder", models, categories, batch_size), build)


def named_recipe(
    name_or_path: str,
    models: ModelsSettings,
    categories: Collection[str] = (),
    *,
    device: str | None = None,
    batch_size: int = 16,
) -> Cached[InstanceSegmenter]:
    """How a Dask worker loads a model named as ``--model`` names it (:func:`load_named`).

    The key holds the name and, for ``reference``, its settings; for a file, its size
    and modification time, so a worker loads a replaced file again.
    """
    spec: Any = models.reference if name_or_path == "reference" else None
    stamp: list[int] = []
    if spec is None and Path(name_or_path).is_file():
        stat = Path(name_or_path).stat()
        stamp = [stat.st_size, stat.st_mtime_ns]
    key = _key(f"named:{name_or_path}:{stamp}:{device}", spec, categories, batch_size)
    build = functools.partial(
        load_named, name_or_path, models, tuple(categories), device=device, batch_size=batch_size
    )
    return Cached(key, build)
