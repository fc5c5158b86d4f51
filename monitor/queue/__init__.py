"""Annotation queue stage: what humans label next, and the labels they return.

Reads stored production samples, their predicted instances, embeddings, shadow scores and
drift results; scores them with the pure signals of :mod:`sampling`; writes
``queue_items`` (``queued -> exported -> labeled | skipped | expired``), export batches and
their files (COCO, Label Studio, CVAT, written with :mod:`sampling.formats`), and, on
import, the returned labels as ground truth of a labelled-production dataset whose images
link back to their samples (``dataset_images.sample_id``). The ``queue`` job of
``segmon run`` fills and expires; ``segmon queue`` runs each step by hand.
"""
