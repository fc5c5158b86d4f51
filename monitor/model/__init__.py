"""Segmentation models segmon runs: the built-in pure-torch model, and the user's own.

``load_model("reference")`` (:mod:`~monitor.model.loading`) loads a bundled checkpoint; a
path loads a safetensors checkpoint, or an ONNX / TorchScript export of any architecture
(its output convention detected: :mod:`~monitor.model.conventions`);
``load_reference`` / ``load_embedder`` build the models the ``models:`` config names
(declared preprocessing, ``classes_map``, Python plugins). Every model answers the
protocols of :mod:`~monitor.model.protocol`. Importing this package loads nothing: torch
is imported by the modules that need it (``adapters``, ``network``, ``exported``, ...),
never by :mod:`~monitor.model.protocol`.
"""
