"""Embed: image and per-instance embeddings of samples and holdout images.

Reads accepted samples, their predicted masks, holdout images and their labeled masks;
writes ``image_embeddings`` and ``instance_embeddings`` (float16, keyed by embedder).
The ``embed`` job (:func:`~monitor.embed.job.embed_pending`) runs the reference model;
:mod:`~monitor.embed.tasks` pages pending images out of the database and decodes them
in a thread pool ahead of the model (the shadow job uses it too).
"""
