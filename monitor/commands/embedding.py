"""``segmon embed`` and ``segmon shadow``: the reference model's jobs, run once now."""

from __future__ import annotations

from typing import Annotated

import typer

from monitor.cli_base import JsonFlag, app, app_state, emit, out, progress_bar
from monitor.clock import SystemClock

LimitOption = Annotated[
    int | None, typer.Option("--limit", min=1, help="At most this many images this run.")
]
BatchSizeOption = Annotated[
    int | None, typer.Option("--batch-size", min=1, help="Images per model call.")
]


@app.command()
def embed(
    ctx: typer.Context,
    limit: LimitOption = None,
    batch_size: BatchSizeOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Embed new samples and holdout images (image and per-instance vectors, float16)."""
    from monitor.embeddings import EmbedReport, embed_pending
    from monitor.jobs import run_job
    from monitor.pipeline import load_reference_model

    state = app_state(ctx)
    settings = state.settings
    clock = SystemClock()

    def work() -> EmbedReport:
        model = load_reference_model(settings)
        with progress_bar("embed") as update:
            return embed_pending(
                state.sessions(),
                model,
                clock,
                batch_size=batch_size or settings.embed.batch_size,
                limit=limit if limit is not None else settings.embed.limit,
                progress=update,
            )

    report, _ = run_job(state.sessions(), "embed", clock, work)
    counts = report.counts()
    emit(
        as_json,
        counts,
        lambda: out.print(
            f"embedded {counts['samples']} samples ({counts['sample_instances']} instances) and "
            f"{counts['holdout_images']} holdout images ({counts['holdout_instances']} instances) "
            f"with {counts['embedder']}; quarantined {sum(counts['quarantined'].values())}"
        ),
    )


@app.command()
def shadow(
    ctx: typer.Context,
    limit: LimitOption = None,
    batch_size: BatchSizeOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Score new samples against the reference model's predictions (no labels needed)."""
    from monitor.jobs import run_job
    from monitor.pipeline import load_reference_model
    from monitor.shadow import ShadowReport, shadow_pending

    state = app_state(ctx)
    settings = state.settings
    clock = SystemClock()

    def work() -> ShadowReport:
        model = load_reference_model(settings)
        with progress_bar("shadow") as update:
            return shadow_pending(
                state.sessions(),
                model,
                clock,
                min_iou=settings.shadow.min_iou,
                batch_size=batch_size or settings.shadow.batch_size,
                limit=limit if limit is not None else settings.shadow.limit,
                progress=update,
            )

    report, _ = run_job(state.sessions(), "shadow", clock, work)
    counts = report.counts()
    agreement = counts["mean_agreement"]
    emit(
        as_json,
        counts,
        lambda: out.print(
            f"scored {counts['samples']} samples with {counts['reference_model']}: mean agreement "
            f"{'-' if agreement is None else f'{agreement:.3f}'}, {counts['matched']} matched, "
            f"{counts['production_only']} production-only, {counts['reference_only']} "
            f"reference-only, {counts['class_disagreements']} class disagreements"
        ),
    )
