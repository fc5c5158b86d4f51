"""``segmon embed`` and ``segmon shadow``: the reference model's jobs, run once now."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Protocol, TypeVar

import typer

from monitor.cli.app import JsonFlag, app, app_state, emit, out, progress_bar
from monitor.cli.numbers import num
from monitor.clock import SystemClock

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from monitor.clock import Clock
    from monitor.config import Settings
    from monitor.jobs.names import JobName
    from monitor.jobs.runs import JobResult

LimitOption = Annotated[
    int | None, typer.Option("--limit", min=1, help="At most this many images this run.")
]
BatchSizeOption = Annotated[
    int | None, typer.Option("--batch-size", min=1, help="Images per model call.")
]


R = TypeVar("R", bound="JobResult", covariant=True)
M = TypeVar("M", contravariant=True)


class ModelJob(Protocol[M, R]):
    """:func:`monitor.service.schedule.embed_job` and :func:`monitor.service.schedule.shadow_job`."""

    def __call__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        clock: Clock,
        model: M,
        *,
        limit: int | None = None,
        batch_size: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> R:
        """Run the job once with this model."""
        ...


def _run_with_model(
    ctx: typer.Context,
    job: JobName,
    load: Callable[[Settings], M],
    run: ModelJob[M, R],
    limit: int | None,
    batch_size: int | None,
) -> R:
    """Load a configured model and run ``run`` as job ``job`` with a progress bar."""
    from monitor.jobs.runs import run_job

    state = app_state(ctx)
    clock = SystemClock()

    def work(_run_id: int) -> R:
        model = load(state.settings)  # inside the job: a failure is recorded
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
    return report


@app.command()
def embed(
    ctx: typer.Context,
    limit: LimitOption = None,
    batch_size: BatchSizeOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Embed new samples and holdout images (image and per-instance vectors, float16).

    The embedder is models.embedder, or the reference model's features when unset.
    """
    from monitor.jobs.names import JobName
    from monitor.service.schedule import embed_job, load_embedder_model

    report = _run_with_model(ctx, JobName.EMBED, load_embedder_model, embed_job, limit, batch_size)
    emit(
        as_json,
        report.counts(),
        lambda: out.print(
            f"embedded {report.samples} samples ({report.sample_instances} instances) and "
            f"{report.holdout_images} holdout images ({report.holdout_instances} instances) "
            f"with {report.embedder}; quarantined {sum(report.quarantined.values())}"
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
    from monitor.jobs.names import JobName
    from monitor.service.schedule import load_reference_model, shadow_job

    report = _run_with_model(
        ctx, JobName.SHADOW, load_reference_model, shadow_job, limit, batch_size
    )
    agreement = report.mean_agreement
    emit(
        as_json,
        report.counts(),
        lambda: out.print(
            f"scored {report.samples} samples with {report.reference_model}: mean agreement "
            f"{num(agreement, places=3)}, {report.matched} matched, "
            f"{report.production_only} production-only, {report.reference_only} "
            f"reference-only, {report.class_disagreements} class disagreements"
        ),
    )
