"""Drift: feature families of production windows against a reference, per detector.

Reads embeddings, image properties, predicted and ground-truth instances; writes
``image_properties`` (computed on first need) and ``drift_results`` (one row per check,
upserted on its key). The ``drift`` job (:func:`~monitor.drift.job.run_drift`) runs the
detectors of :mod:`detectors` over :mod:`~monitor.drift.features`;
:mod:`~monitor.drift.report` writes the HTML report of ``segmon report``.
"""
