"""Ingest: production sample logs and labeled holdouts into the database.

Reads sample logs (``*.jsonl`` plus images, from a folder or any fsspec URL) and COCO
instances files; writes ``samples``, ``predicted_instances``, ``sources`` (watermarks),
``datasets``, ``dataset_images``, ``ground_truth_instances`` and ``quarantine_history``
(quarantines that corrected lines replaced). Bad input becomes a
quarantined sample with a :class:`~monitor.errors.QuarantineReason`, never an error.
The ``ingest`` job (:func:`~monitor.ingest.job.ingest_log`, scheduled by ``segmon run``)
reads new lines; ``segmon holdout import`` runs :func:`~monitor.ingest.holdout.import_holdout`;
:mod:`~monitor.ingest.samplelog` is the pure line validator, :mod:`~monitor.ingest.logfiles`
finds a log's files and where to resume each, :mod:`~monitor.ingest.store` writes checked
lines (one line's failure never fails its batch).
"""
