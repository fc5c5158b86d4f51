"""``segmon embed`` and ``segmon shadow``: the reference model's jobs, run once now."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import typer

from monitor.cli.app import JsonFlag, app, app_state, emit, out, progress_bar
from monitor.clock import SystemClock

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from monitor.clock import Clock
    from monitor.config import Settings
    from monitor.jobs.runs import HasCounts
    from monitor.model.protocol import SegmentationModel

LimitOption = Annotated[
    int | None, typer.Option("--limit", min=1, help="At most this many images this run.")
]
BatchSizeOption = Annotated[
    int | None, typer.Option("--batch-size", min=1, help="Images per model call.")
]


class ModelJob(Protocol):
    """:func:`monitor.service.schedule.embed_job` and :func:`monitor.service.schedule.shadow_job`."""

    def __call__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        clock: Clock,
        model: SegmentationModel,
        *,
        limit: int | None = None,
        batch_size: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> HasCounts:
        """Run the job once with this model."""
        ...


def _run_with_reference(
    ctx: typer.Context, job: str, run: ModelJob, limit: int | None, batch_size: int | None
) -> dict[str, Any]:
    """Load the reference model and run ``run`` as job ``job`` with a progress bar."""
    from monitor.jobs.runs import run_job
    from monitor.service.schedule import load_reference_model

    state = app_state(ctx)
    clock = SystemClock()

    def work() -> HasCounts:
        model = load_reference_model(state.settings)  # inside the job: a failure is recorded
        with progress_bar(job) as update:
            return run(
                state.sessions(),
                state.settings,
                clock,
                model,
                limit=limit,
                batch_size=batch_size,
                progress=update,
            )

    report, _ = run_job(state.sessions(), job, clock, work)
    return report.counts()


@app.command()
def embed(
    ctx: typer.Context,
    limit: LimitOption = None,
    batch_size: BatchSizeOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Embed new samples and holdout images (image and per-instance vectors, float16)."""
    from monitor.service.schedule import embed_job

    counts = _run_with_reference(ctx, "embed", embed_job, limit, batch_size)
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
    from monitor.service.schedule import shadow_job

    counts = _run_with_reference(ctx, "shadow", shadow_job, limit, batch_size)
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
