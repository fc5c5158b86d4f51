"""Segmentation models segmon runs: the built-in pure-torch model and adapters.

``load_model("reference")`` (:mod:`~monitor.model.loading`) loads a bundled checkpoint; a
path loads a safetensors checkpoint, a TorchScript file or an ONNX file by its suffix.
Every model answers the :class:`~monitor.model.protocol.SegmentationModel` protocol.
Importing this package loads nothing: torch is imported by the modules that need it
(``adapters``, ``network``, ``train``, ...), never by :mod:`~monitor.model.protocol`.
"""
