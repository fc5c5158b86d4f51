"""Quality: how good production's masks are, against labels and against a reference model.

Reads holdout ground truth, golden requests, results files or a model's predictions,
and the reference model's predictions on production samples; writes ``quality_results``
and ``class_quality`` (the ``evaluate`` job, :func:`~monitor.quality.job.evaluate_holdout`)
and ``shadow_scores`` / ``shadow_class_scores`` (the ``shadow`` job,
:func:`~monitor.quality.shadow.shadow_pending`). :mod:`~monitor.quality.evaluation` is the
pure evaluator (per-class IoU, COCO mask AP equal to pycocotools).
"""
