"""Which output of an exported model is what: the output conventions and their detection.

An exported model's outputs follow one of three conventions (README: "Models"):

``instances``
    ``boxes (N, 4)``, ``labels (N,)``, ``scores (N,)``, ``masks (N, 1, h, w)``: the
    torchvision / detectron2 Mask R-CNN export, one image per call; an optional
    ``features (1, D, h, w)`` output lets it embed.
``yolo-seg``
    detections ``(B, 4+C+M, A)`` or ``(B, A, 5+C+M)`` and prototypes ``(B, M, h, w)``:
    Ultralytics and YOLOv5/v7 segmentation exports.
``heads``
    segmon's built-in network: ``semantic``, ``center``, ``offset``, ``feature``.

:func:`plan_outputs` picks the convention from the outputs' names first (the names the
exporters use), then from their ranks and dtypes, and says which output plays which role;
when it cannot tell, its error lists every output it saw. :func:`plan_embedder_output`
does the same for an image-feature model (a feature map or a vector per image).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from monitor.config import Convention
from monitor.errors import ConfigError

HEADS_OUTPUTS = ("semantic", "center", "offset", "feature")

_ALIASES: dict[str, tuple[str, ...]] = {
    "boxes": ("boxes", "pred_boxes", "bboxes", "detection_boxes"),
    "labels": ("labels", "pred_classes", "classes", "class_ids", "detection_classes"),
    "scores": ("scores", "pred_scores", "confidences", "detection_scores"),
    "masks": ("masks", "pred_masks", "mask_probs", "detection_masks"),
    "features": ("features", "feature", "feature_map", "embedding", "embeddings"),
    "detections": ("output0", "detections", "preds", "pred"),
    "prototypes": ("output1", "protos", "prototypes", "proto"),
}
"""Output names the exporters use for each role (matched case-insensitively)."""

EMBEDDING_NAMES = (
    "embedding",
    "embeddings",
    "image_embeds",
    "image_embedding",
    "features",
    "feature",
    "feature_map",
    "pooler_output",
    "pooled",
)


@dataclass(frozen=True)
class OutputInfo:
    """One output as the runtime reports it (``None`` for a dynamic dimension)."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str

    def __str__(self) -> str:
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name} {self.dtype} ({dims})"

    @property
    def is_integer(self) -> bool:
        """Whether the dtype is an integer type."""
        return "int" in self.dtype


@dataclass(frozen=True)
class OutputPlan:
    """The convention of a model's outputs and the output index of each role."""

    convention: Convention
    roles: Mapping[str, int] = field(default_factory=dict)


def describe_outputs(outputs: Sequence[OutputInfo]) -> str:
    """Return ``name dtype (shape)`` of every output, for messages.

    Examples
    --------
    >>> describe_outputs([OutputInfo("output0", (1, 7, None), "float32")])
    'output0 float32 (1, 7, ?)'
    """
    return "; ".join(str(o) for o in outputs) or "no outputs"


def _index(outputs: Sequence[OutputInfo], name: str) -> int | None:
    for i, out in enumerate(outputs):
        if out.name == name:
            return i
    return None


def _by_name(outputs: Sequence[OutputInfo], role: str, taken: set[int]) -> int | None:
    for i, out in enumerate(outputs):
        if i not in taken and out.name.lower() in _ALIASES[role]:
            return i
    return None


def _declared(
    outputs: Sequence[OutputInfo], names: Mapping[str, str], where: str
) -> dict[str, int]:
    roles = {}
    for role, name in names.items():
        index = _index(outputs, name)
        if index is None:
            raise ConfigError(
                f"{where}: output_names.{role} = {name!r} is not an output of the model "
                f"(outputs: {describe_outputs(outputs)})"
            )
        roles[role] = index
    return roles


def _instances_roles(outputs: Sequence[OutputInfo], roles: dict[str, int]) -> dict[str, int] | None:
    found = dict(roles)
    taken = set(found.values())
    for role in ("boxes", "labels", "scores", "masks", "features"):
        if role not in found:
            index = _by_name(outputs, role, taken)
            if index is not None:
                found[role] = index
                taken.add(index)
    shape_rules: dict[str, Callable[[OutputInfo], bool]] = {
        "boxes": lambda o: len(o.shape) == 2 and o.shape[-1] == 4,
        "masks": lambda o: (len(o.shape) == 4 and o.shape[1] in (1, None)) or len(o.shape) == 3,
        "labels": lambda o: len(o.shape) == 1 and o.is_integer,
        "scores": lambda o: len(o.shape) == 1 and not o.is_integer,
    }
    for role, rule in shape_rules.items():
        if role in found:
            continue
        candidates = [i for i, o in enumerate(outputs) if i not in taken and rule(o)]
        if len(candidates) != 1:
            return None
        found[role] = candidates[0]
        taken.add(candidates[0])
    return found


def _yolo_roles(outputs: Sequence[OutputInfo], roles: dict[str, int]) -> dict[str, int] | None:
    found = dict(roles)
    taken = set(found.values())
    for role in ("detections", "prototypes"):
        if role not in found:
            index = _by_name(outputs, role, taken)
            if index is not None:
                found[role] = index
                taken.add(index)
    ranks = {"detections": 3, "prototypes": 4}
    for role, rank in ranks.items():
        if role in found:
            continue
        candidates = [i for i, o in enumerate(outputs) if i not in taken and len(o.shape) == rank]
        if len(candidates) != 1:
            return None
        found[role] = candidates[0]
        taken.add(candidates[0])
    if any(len(outputs[found[r]].shape) != rank for r, rank in ranks.items()):
        return None
    return found


def plan_outputs(
    outputs: Sequence[OutputInfo],
    declared: Convention | None = None,
    names: Mapping[str, str] | None = None,
    *,
    where: str = "model",
    has_heads_config: bool = False,
) -> OutputPlan:
    """Decide a model's output convention and which output plays which role.

    Parameters
    ----------
    outputs
        The model's outputs, in order.
    declared
        The convention the config names (``outputs:``), or None to detect it.
    names
        ``output_names`` from the config: role -> output name.
    where
        Names the model in messages (e.g. ``models.reference (m.onnx)``).
    has_heads_config
        The file carries segmon's network config (an export of the built-in model).

    Raises
    ------
    ConfigError
        When the outputs fit no convention (or not the declared one); the message lists
        the outputs it saw and what to declare.

    Examples
    --------
    >>> yolo = [OutputInfo("output0", (1, 116, 8400), "float32"),
    ...         OutputInfo("output1", (1, 32, 160, 160), "float32")]
    >>> plan_outputs(yolo)
    OutputPlan(convention='yolo-seg', roles={'detections': 0, 'prototypes': 1})
    >>> rcnn = [OutputInfo("o1", (None, 4), "float32"), OutputInfo("o2", (None,), "int64"),
    ...         OutputInfo("o3", (None,), "float32"), OutputInfo("o4", (None, 1, 28, 28), "float32")]
    >>> plan_outputs(rcnn).roles
    {'boxes': 0, 'masks': 3, 'labels': 1, 'scores': 2}
    >>> plan_outputs([OutputInfo("logits", (1, 1000), "float32")], where="models.reference (m.onnx)")
    Traceback (most recent call last):
    ...
    monitor.errors.ConfigError: cannot tell the output convention of models.reference (m.onnx) from its outputs: logits float32 (1, 1000); declare outputs: instances, yolo-seg or heads (and output_names) in its config
    """
    roles = _declared(outputs, names or {}, where)
    heads = [o.name for o in outputs] == list(HEADS_OUTPUTS) or has_heads_config
    if declared == "heads" or (declared is None and heads):
        if len(outputs) != len(HEADS_OUTPUTS):
            raise ConfigError(
                f"{where} is declared `heads` but has {len(outputs)} outputs, not the built-in "
                f"network's {len(HEADS_OUTPUTS)} ({describe_outputs(outputs)})"
            )
        return OutputPlan("heads", {name: i for i, name in enumerate(HEADS_OUTPUTS)})
    attempts: list[tuple[Convention, dict[str, int] | None]] = []
    if declared in (None, "yolo-seg"):
        attempts.append(("yolo-seg", _yolo_roles(outputs, roles)))
    if declared in (None, "instances"):
        attempts.append(("instances", _instances_roles(outputs, roles)))
    for convention, found in attempts:
        if found is not None:
            return OutputPlan(convention, found)
    if declared is not None:
        wanted = {
            "yolo-seg": "detections (rank 3) and prototypes (rank 4)",
            "instances": "boxes (N, 4), labels (N,) integer, scores (N,) and masks (N, 1, h, w)",
        }[declared]
        raise ConfigError(
            f"{where} is declared `{declared}` but its outputs ({describe_outputs(outputs)}) "
            f"do not show {wanted}; name them in output_names"
        )
    raise ConfigError(
        f"cannot tell the output convention of {where} from its outputs: "
        f"{describe_outputs(outputs)}; declare outputs: instances, yolo-seg or heads (and "
        "output_names) in its config"
    )


def plan_embedder_output(
    outputs: Sequence[OutputInfo], name: str | None = None, *, where: str = "embedder"
) -> tuple[int, Literal["map", "vector"]]:
    """Pick an image-feature model's embedding output: a feature map or one vector per image.

    ``name`` (``output_names.features``) picks it; else the only output, else the one
    with an embedding-like name, else the only ``(N, D, h, w)`` feature map.

    Raises
    ------
    ConfigError
        When no output (or the named one) is ``(N, D)`` or ``(N, D, h, w)``; the message
        lists the outputs.

    Examples
    --------
    >>> plan_embedder_output([OutputInfo("embedding", (None, 1280), "float32"),
    ...                       OutputInfo("logits", (None, 1000), "float32")])
    (0, 'vector')
    >>> plan_embedder_output([OutputInfo("x", (1, 384, 16, 16), "float32")])
    (0, 'map')
    """
    if name is not None:
        index = _index(outputs, name)
        if index is None:
            raise ConfigError(
                f"{where}: output_names.features = {name!r} is not an output "
                f"({describe_outputs(outputs)})"
            )
        candidates = [index]
    elif len(outputs) == 1:
        candidates = [0]
    else:
        named = [i for i, o in enumerate(outputs) if o.name.lower() in EMBEDDING_NAMES]
        maps = [i for i, o in enumerate(outputs) if len(o.shape) == 4]
        candidates = named[:1] or (maps if len(maps) == 1 else [])
    if len(candidates) == 1 and len(outputs[candidates[0]].shape) in (2, 4):
        index = candidates[0]
        return index, "map" if len(outputs[index].shape) == 4 else "vector"
    raise ConfigError(
        f"cannot tell which output of {where} is the embedding (want (N, D) or (N, D, h, w)): "
        f"{describe_outputs(outputs)}; name it in output_names.features"
    )
