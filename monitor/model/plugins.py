"""Python plugins: a model segmon cannot load from a file, wrapped by the team in a few lines.

``models.reference: {python: "package.module:factory", options: {...}}`` makes segmon
import ``package.module`` (only then: nothing is imported unless the config names it),
call ``factory(**options)`` and check the object it returns against the protocol its
role needs (:data:`~monitor.model.protocol.REQUIRED_ATTRIBUTES`): a reference model must
have ``name``, ``categories`` and ``predict`` (and ``embedding_dim`` and ``embed`` when
it also embeds), an embedder ``name``, ``embedding_dim`` and ``embed``. A missing or
mistyped attribute is an error naming it, at load, not halfway through a job.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, Literal

from monitor.errors import ConfigError
from monitor.model.protocol import REQUIRED_ATTRIBUTES

Role = Literal["InstanceSegmenter", "Embedder", "SegmentationModel"]


def import_factory(target: str, where: str = "plugin") -> Any:
    """Import ``package.module:factory`` and return the factory.

    Raises
    ------
    ConfigError
        When the module cannot be imported or has no such callable.

    Examples
    --------
    >>> import_factory("collections:OrderedDict").__name__
    'OrderedDict'
    >>> import_factory("collections:nothing", "models.reference")
    Traceback (most recent call last):
    ...
    monitor.errors.ConfigError: models.reference: module 'collections' has no callable 'nothing'
    """
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"{where}: python {target!r} must look like 'package.module:factory'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{where}: cannot import plugin module {module_name!r}: {exc}") from exc
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ConfigError(f"{where}: module {module_name!r} has no callable {attribute!r}")
    return factory


def check_plugin(model: Any, role: Role, where: str = "plugin") -> None:
    """Check that ``model`` has what ``role`` needs; the error names the first gap.

    Examples
    --------
    >>> class OnlyName:
    ...     name = "half"
    >>> check_plugin(OnlyName(), "Embedder", "models.embedder")
    Traceback (most recent call last):
    ...
    monitor.errors.ConfigError: models.embedder: the plugin returned a OnlyName without `embedding_dim`; an Embedder needs name, embedding_dim, embed
    """
    needed = REQUIRED_ATTRIBUTES[role]
    kind = type(model).__name__
    article = "an" if role[0] in "AEIOU" else "a"
    for attribute in needed:
        if not hasattr(model, attribute):
            raise ConfigError(
                f"{where}: the plugin returned a {kind} without `{attribute}`; {article} {role} "
                f"needs {', '.join(needed)}"
            )
    problems = []
    name = model.name
    if not isinstance(name, str) or not 0 < len(name) <= 128:
        problems.append(f"`name` must be a string of 1-128 characters, got {name!r}")
    if "categories" in needed:
        cats = model.categories
        if not isinstance(cats, tuple) or not cats or not all(isinstance(c, str) for c in cats):
            problems.append(f"`categories` must be a non-empty tuple of class names, got {cats!r}")
    if "embedding_dim" in needed:
        dim = model.embedding_dim
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            problems.append(f"`embedding_dim` must be a positive int, got {dim!r}")
    for method in ("predict", "embed"):
        if method in needed and not callable(getattr(model, method)):
            problems.append(f"`{method}` must be a method")
    if problems:
        raise ConfigError(f"{where}: the plugin's {kind}: {problems[0]}")


def load_plugin(target: str, options: Mapping[str, Any], role: Role, where: str = "plugin") -> Any:
    """Import the factory, call it with ``options`` and check what it returns.

    Raises
    ------
    ConfigError
        When the import fails, the factory raises, or its result lacks what ``role``
        needs; the message names the plugin and the missing attribute.
    """
    factory = import_factory(target, where)
    try:
        model = factory(**options)
    except Exception as exc:  # a plugin may raise anything; report it as one line
        raise ConfigError(f"{where}: plugin factory {target!r} failed: {exc!r}") from exc
    check_plugin(model, role, where)
    return model
