"""Executors: local and Dask runs of the per-image stages store the same rows.

Embed, shadow, image properties, ``segmon predict`` and ``evaluate --model`` each run
once on the local executor and once on the cluster; the stored rows (or written files),
and the instances a model's ``classes_map`` left out, must be the same.

The Dask tests start one ``LocalCluster`` of two worker processes (127.0.0.1, no
dashboard) for the module, and run the bundled models on a few dozen generated 96 px
scenes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import ManualClock
from monitor.config import DriftSettings, ExecutorSettings, IngestSettings, Settings
from monitor.drift.backfill import backfill_drift
from monitor.drift.properties import PROPERTY_NAMES, fill_image_properties
from monitor.embed.job import embed_pending
from monitor.errors import ConfigError, InvalidInputError
from monitor.ingest.holdout import import_holdout
from monitor.ingest.job import ingest_log
from monitor.jobs.executor import (
    DaskExecutor,
    ExecutorUnavailableError,
    LocalExecutor,
    open_executor,
)
from monitor.jobs.names import JobName
from monitor.jobs.runs import run_job
from monitor.model.loading import embedder_recipe, load_named, named_recipe, reference_recipe
from monitor.model.predict import list_images, predict_to_coco
from monitor.quality.job import evaluate_holdout
from monitor.quality.shadow import shadow_pending
from monitor.service.schedule import embed_job, load_embedder_model, load_reference_model
from monitor.storage.schema import (
    DriftResultRow,
    ImageEmbedding,
    ImageProperties,
    InstanceEmbedding,
    JobRun,
    Sample,
    ShadowClassScore,
    ShadowScore,
)
from monitor.synth import SynthConfig, generate_scenes
from tests.support.shadow_rows import shadow_rows

distributed = pytest.importorskip("distributed", reason="needs the dask extra")

START = datetime(2026, 11, 24, tzinfo=UTC)
N_IMAGES = 24


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """Two worker processes, one thread each, on 127.0.0.1, for the whole module."""
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as made,
        distributed.Client(made) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scenes")
    generate_scenes(root, SynthConfig(n_images=N_IMAGES, seed=5, size=96), overwrite=True)
    return root


def ingested(sessions: sessionmaker[Session], scenes: Path) -> sessionmaker[Session]:
    report = ingest_log(sessions, str(scenes), IngestSettings(), ManualClock(START))
    assert report.ingested == N_IMAGES
    return sessions


def embeddings(sessions: sessionmaker[Session]) -> list[tuple[Any, ...]]:
    """Every stored vector with what it belongs to (no row ids), sorted."""
    with sessions() as s:
        images = s.execute(
            select(
                ImageEmbedding.embedder,
                ImageEmbedding.sample_id,
                ImageEmbedding.dataset_image_id,
                ImageEmbedding.vector,
                ImageEmbedding.created_at,
            )
        ).all()
        objects = s.execute(
            select(
                InstanceEmbedding.embedder,
                InstanceEmbedding.predicted_instance_id,
                InstanceEmbedding.category_id,
                InstanceEmbedding.vector,
            )
        ).all()
    return sorted(tuple(r) for r in images) + sorted(tuple(r) for r in objects)


def clear(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        for table in (InstanceEmbedding, ImageEmbedding, ShadowClassScore, ShadowScore):
            s.execute(delete(table))


def without_executor(counts: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in counts.items() if k != "executor"}


SETTINGS = Settings()
CATEGORIES = [c.name for c in SETTINGS.categories]


# --- the executors themselves ---------------------------------------------------------


@dataclass(frozen=True)
class Squares:
    """Loads an item as its square; computes the batch's sum (fails as told)."""

    fail_marker: str | None = None
    error: str = "runtime"

    def load(self, item: int) -> int:
        return item * item

    def compute(self, loaded: list[int]) -> int:
        if self.fail_marker is not None and not os.path.exists(self.fail_marker):
            Path(self.fail_marker).write_text("failed once")
            if self.error == "segmon":
                raise InvalidInputError(f"bad batch {loaded!r}")
            raise RuntimeError("transient")
        return sum(loaded)


def test_local_executor_keeps_order_and_counts_batches() -> None:
    executor = LocalExecutor(workers=2)
    assert list(executor.map_batches(Squares(), [[1, 2], [3], [4, 5]])) == [5, 9, 41]
    stats = executor.stats()
    assert (stats.kind, stats.batches, stats.in_flight, stats.retries) == ("local", 3, 0, 0)


def test_dask_executor_returns_every_batch_once(cluster: Any) -> None:
    executor = DaskExecutor(cluster, max_in_flight=2)
    batches = [[i, i + 1] for i in range(0, 40, 2)]
    results = list(executor.map_batches(Squares(), batches))
    assert sorted(results) == sorted(a * a + b * b for a, b in batches)
    stats = executor.stats()
    assert (stats.workers, stats.threads, stats.batches, stats.in_flight) == (2, 2, 20, 0)


def test_a_failed_batch_is_retried_and_counted(cluster: Any, tmp_path: Path) -> None:
    executor = DaskExecutor(cluster, retries=2)
    work = Squares(fail_marker=str(tmp_path / "failed"))
    assert list(executor.map_batches(work, [[3, 4]])) == [25]
    assert executor.stats().retries == 1


def test_no_retries_means_the_error_is_raised(cluster: Any, tmp_path: Path) -> None:
    executor = DaskExecutor(cluster, retries=0)
    with pytest.raises(RuntimeError, match="transient"):
        list(executor.map_batches(Squares(fail_marker=str(tmp_path / "f")), [[1]]))


def test_a_segmon_error_is_not_retried(cluster: Any, tmp_path: Path) -> None:
    executor = DaskExecutor(cluster, retries=3)
    work = Squares(fail_marker=str(tmp_path / "f"), error="segmon")
    with pytest.raises(InvalidInputError, match=r"bad batch \[1\]"):
        list(executor.map_batches(work, [[1]]))
    assert executor.stats().retries == 0


def test_a_remote_executor_needs_a_model_recipe(
    cluster: Any, sqlite_sessions: sessionmaker[Session]
) -> None:
    with pytest.raises(ConfigError, match="needs a model recipe"):
        embed_pending(
            sqlite_sessions,
            load_embedder_model(SETTINGS),
            ManualClock(START),
            executor=DaskExecutor(cluster),
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_unreachable_scheduler_is_a_clear_error_naming_it() -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    settings = ExecutorSettings(kind="dask", address=address, connect_timeout_s=1)
    with pytest.raises(ExecutorUnavailableError, match=f"Dask scheduler at '{address}'"):
        open_executor(settings)


# --- the jobs on a cluster ------------------------------------------------------------


def test_embed_on_the_cluster_stores_the_local_rows(
    cluster: Any, sessions: sessionmaker[Session], scenes: Path
) -> None:
    ingested(sessions, scenes)
    model = load_embedder_model(SETTINGS)
    local = embed_pending(sessions, model, ManualClock(START), batch_size=5)
    expected = embeddings(sessions)
    clear(sessions)
    remote = embed_pending(
        sessions,
        model,
        ManualClock(START),
        batch_size=5,
        executor=DaskExecutor(cluster, max_in_flight=3),
        recipe=embedder_recipe(SETTINGS.models, CATEGORIES),
    )
    assert without_executor(remote.counts()) == without_executor(local.counts())
    assert local.samples == N_IMAGES and remote.executor["kind"] == "dask"
    assert remote.executor["batches"] == 5 and remote.executor["workers"] == 2
    assert embeddings(sessions) == expected
    assert len(expected) == N_IMAGES + local.sample_instances


def test_shadow_on_the_cluster_stores_the_local_rows(
    cluster: Any, sessions: sessionmaker[Session], scenes: Path
) -> None:
    ingested(sessions, scenes)
    model = load_reference_model(SETTINGS)
    local = shadow_pending(sessions, model, ManualClock(START), batch_size=4)
    expected = shadow_rows(sessions)
    clear(sessions)
    remote = shadow_pending(
        sessions,
        model,
        ManualClock(START),
        batch_size=4,
        executor=DaskExecutor(cluster, max_in_flight=3),
        recipe=reference_recipe(SETTINGS.models.reference, CATEGORIES),
    )
    assert without_executor(remote.counts()) == without_executor(local.counts())
    assert local.samples == N_IMAGES and remote.executor["batches"] == 6
    assert shadow_rows(sessions) == expected
    assert local.matched > 0


def test_a_worker_killed_mid_run_costs_no_row(cluster: Any, make_db: Any, scenes: Path) -> None:
    model = load_embedder_model(SETTINGS)
    reference = ingested(make_db("local"), scenes)
    embed_pending(reference, model, ManualClock(START), batch_size=2)
    sessions = ingested(make_db("dask"), scenes)
    pids = cluster.run(os.getpid)
    victim = sorted(pids.values())[0]
    killed: list[int] = []

    def kill_after_first_batch(done: int, total: int) -> None:
        if not killed:
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

    report = embed_pending(
        sessions,
        model,
        ManualClock(START),
        batch_size=2,
        progress=kill_after_first_batch,
        executor=DaskExecutor(cluster, max_in_flight=4),
        recipe=embedder_recipe(SETTINGS.models, CATEGORIES),
    )
    assert killed == [victim] and victim not in cluster.run(os.getpid).values()
    assert report.samples == N_IMAGES
    assert embeddings(sessions) == embeddings(reference)  # same rows, none twice
    cluster.wait_for_workers(2, timeout=60)  # the nanny restarted it: others tests go on


def test_unreachable_scheduler_fails_the_run_and_the_next_run_resumes(
    sqlite_sessions: sessionmaker[Session], scenes: Path
) -> None:
    sessions = ingested(sqlite_sessions, scenes)
    address = f"tcp://127.0.0.1:{free_port()}"
    down = Settings(executor=ExecutorSettings(kind="dask", address=address, connect_timeout_s=1))
    model = load_embedder_model(SETTINGS)
    clock = ManualClock(START)
    with pytest.raises(ExecutorUnavailableError):
        run_job(sessions, JobName.EMBED, clock, lambda _id: embed_job(sessions, down, clock, model))
    with sessions() as s:
        failed = s.scalars(select(JobRun)).one()
        assert failed.status == "failed" and address in (failed.error or "")
        assert s.scalars(select(ImageEmbedding)).first() is None
    report, _ = run_job(
        sessions, JobName.EMBED, clock, lambda _id: embed_job(sessions, SETTINGS, clock, model)
    )
    assert report.samples == N_IMAGES
    with sessions() as s:
        assert len(s.scalars(select(Sample.id).join(ImageEmbedding)).all()) == N_IMAGES


def test_a_local_cluster_executor_runs_the_configured_job_and_shuts_down(
    sqlite_sessions: sessionmaker[Session], scenes: Path
) -> None:
    """``executor: {kind: local-cluster}`` through the embed job as ``segmon embed`` runs it."""
    sessions = ingested(sqlite_sessions, scenes)
    settings = Settings(executor=ExecutorSettings(kind="local-cluster", n_workers=1))
    executor = open_executor(settings.executor)
    try:
        assert (executor.kind, executor.remote, executor.stats().workers) == (
            "local-cluster",
            True,
            1,
        )
        model = load_embedder_model(settings)
        report = embed_job(sessions, settings, ManualClock(START), model, executor=executor)
    finally:
        executor.close()
    assert report.samples == N_IMAGES and report.executor["kind"] == "local-cluster"
    assert isinstance(executor, DaskExecutor) and executor.cluster.status.name == "closed"


def property_rows(sessions: sessionmaker[Session]) -> list[tuple[Any, ...]]:
    with sessions() as s:
        rows = s.execute(
            select(
                ImageProperties.sample_id,
                ImageProperties.dataset_image_id,
                *(getattr(ImageProperties, name) for name in PROPERTY_NAMES),
            )
        ).all()
    return sorted((tuple(r) for r in rows), key=lambda r: (r[0] or 0, r[1] or 0))


def test_image_properties_on_the_cluster_store_the_local_rows(
    cluster: Any, sessions: sessionmaker[Session], scenes: Path
) -> None:
    ingested(sessions, scenes)
    local = fill_image_properties(sessions, ManualClock(START))
    expected = property_rows(sessions)
    with sessions.begin() as s:
        s.execute(delete(ImageProperties))
    remote = fill_image_properties(
        sessions, ManualClock(START), executor=DaskExecutor(cluster, max_in_flight=3)
    )
    assert remote.counts() == local.counts() and local.computed == N_IMAGES
    assert property_rows(sessions) == expected and len(expected) == N_IMAGES


def test_predict_on_the_cluster_writes_the_local_files(cluster: Any, scenes: Path) -> None:
    model = load_reference_model(SETTINGS)
    entries = list_images(scenes / "images")
    local_dir, remote_dir = scenes / "predict-local", scenes / "predict-dask"
    local = predict_to_coco(
        model, entries, local_dir / "r.json", 5, images_file=local_dir / "i.json"
    )
    remote = predict_to_coco(
        model,
        entries,
        remote_dir / "r.json",
        5,
        images_file=remote_dir / "i.json",
        executor=DaskExecutor(cluster, max_in_flight=3),
        recipe=named_recipe("reference", SETTINGS.models, CATEGORIES),
    )
    assert (remote.n_images, remote.n_instances) == (local.n_images, local.n_instances)
    assert local.n_images == N_IMAGES and local.n_instances > 0
    assert (remote_dir / "i.json").read_bytes() == (local_dir / "i.json").read_bytes()
    here, there = (json.loads((d / "r.json").read_text()) for d in (local_dir, remote_dir))
    assert [without_scores(r) for r in there] == [without_scores(r) for r in here]
    assert [r["score"] for r in there] == pytest.approx([r["score"] for r in here], abs=1e-5)


def without_scores(result: dict[str, Any]) -> dict[str, Any]:
    """A result without its scores: a worker's torch (one thread) may round the last digit."""
    return {k: v for k, v in result.items() if k not in ("score", "class_scores")}


def test_evaluate_model_on_the_cluster_scores_like_the_local_run(
    cluster: Any, sessions: sessionmaker[Session], scenes: Path
) -> None:
    clock = ManualClock(START)
    import_holdout(sessions, scenes / "annotations.json", scenes / "images", "h", clock)
    model = load_reference_model(SETTINGS)
    local = evaluate_holdout(sessions, "h", clock, model=model, batch_size=5)
    progress: list[tuple[int, int]] = []
    remote = evaluate_holdout(
        sessions,
        "h",
        clock,
        model=model,
        batch_size=5,
        on_batch=lambda done, total: progress.append((done, total)),
        executor=DaskExecutor(cluster, max_in_flight=3),
        recipe=named_recipe("reference", SETTINGS.models, CATEGORIES),
    )
    (_, local_preds, local_report), (_, remote_preds, remote_report) = (
        local.results[0],
        remote.results[0],
    )
    assert remote_preds.image_ids == local_preds.image_ids and len(local_preds.predictions) > 0
    assert [replace(p, score=0.0) for p in remote_preds.predictions] == [
        replace(p, score=0.0) for p in local_preds.predictions
    ]
    assert [p.score for p in remote_preds.predictions] == pytest.approx(
        [p.score for p in local_preds.predictions], abs=1e-5
    )
    assert remote_report.coco.ap == pytest.approx(local_report.coco.ap, abs=1e-4)
    for figure in ("precision", "recall", "mean_iou"):
        here, there = (getattr(r.overall, figure) for r in (local_report, remote_report))
        assert there == pytest.approx(here, abs=1e-9)
    assert progress[-1] == (N_IMAGES, N_IMAGES) and len(progress) == 5


# --- what a model leaves out (classes_map), counted where its batches ran -------------

MAPPED = Settings.model_validate(
    {"models": {"reference": {"path": "reference", "classes_map": {"star": None}}}}
)


def test_predict_and_evaluate_count_what_the_model_leaves_out_on_the_cluster_too(
    cluster: Any, sqlite_sessions: sessionmaker[Session], scenes: Path, tmp_path: Path
) -> None:
    """The driver's model never predicts on a cluster: the workers' counts come back."""
    model = load_named("reference", MAPPED.models, CATEGORIES)
    recipe = named_recipe("reference", MAPPED.models, CATEGORIES)
    entries = list_images(scenes / "images")
    local = predict_to_coco(model, entries, tmp_path / "local.json", 5)
    remote = predict_to_coco(
        model,
        entries,
        tmp_path / "remote.json",
        5,
        executor=DaskExecutor(cluster, max_in_flight=3),
        recipe=recipe,
    )
    assert set(local.ignored) == {"star"} and local.ignored["star"] > 0
    assert remote.ignored == local.ignored
    clock = ManualClock(START)
    import_holdout(sqlite_sessions, scenes / "annotations.json", scenes / "images", "h", clock)
    here = evaluate_holdout(sqlite_sessions, "h", clock, model=model, batch_size=5)
    there = evaluate_holdout(
        sqlite_sessions,
        "h",
        clock,
        model=model,
        batch_size=5,
        executor=DaskExecutor(cluster, max_in_flight=3),
        recipe=recipe,
    )
    assert here.results[0][1].ignored == there.results[0][1].ignored == local.ignored


def test_segmon_predict_and_evaluate_report_the_same_ignored_count_on_a_local_cluster(
    scenes: Path, tmp_path: Path
) -> None:
    """``--json``'s ``ignored`` with ``executor: local`` and ``local-cluster`` (one worker)."""
    from tests.support.hosted_scenes import invoke_json

    reports: dict[str, tuple[Any, Any]] = {}
    for kind in ("local", "local-cluster"):
        config = tmp_path / f"{kind}.yaml"
        config.write_text(
            json.dumps(
                {
                    "database_url": f"sqlite:///{tmp_path / kind}.db",
                    "models": {"reference": {"path": "reference", "classes_map": {"star": None}}},
                    "executor": {"kind": kind, "n_workers": 1},
                }
            )
        )
        invoke_json(config, "init")
        invoke_json(
            config, "holdout", "import", str(scenes / "annotations.json"),
            "--images", str(scenes / "images"), "--name", "h",
        )  # fmt: skip
        predicted = invoke_json(
            config, "predict", "--model", "reference", "--images", str(scenes / "images"),
            "--out", str(tmp_path / f"{kind}.json"), "--batch-size", "8", "--device", "cpu",
        )  # fmt: skip
        evaluated = invoke_json(
            config, "evaluate", "--holdout", "h", "--model", "reference", "--batch-size", "8"
        )
        reports[kind] = (predicted["ignored"], evaluated["ignored"])
    local_predict, local_evaluate = reports["local"]
    assert local_predict["star"] > 0 and local_evaluate == local_predict
    assert reports["local-cluster"] == reports["local"]


def test_drift_backfill_computes_image_properties_on_the_cluster(
    cluster: Any, sessions: sessionmaker[Session], scenes: Path
) -> None:
    """``segmon drift --from --to`` fills image properties where the drift job does."""
    ingested(sessions, scenes)
    clock = ManualClock(START + timedelta(days=3))
    import_holdout(sessions, scenes / "annotations.json", scenes / "images", "h", clock)
    embed_pending(sessions, load_embedder_model(SETTINGS), clock)
    settings = DriftSettings(reference="h", windows=("1d",), min_samples=2)
    period = (START - timedelta(days=2), START + timedelta(days=2))
    local = backfill_drift(sessions, settings, clock, *period)
    expected = property_rows(sessions)
    with sessions.begin() as s:
        s.execute(delete(ImageProperties))
        s.execute(delete(DriftResultRow))
    executor = DaskExecutor(cluster, max_in_flight=3)
    remote = backfill_drift(sessions, settings, clock, *period, executor=executor)
    assert executor.stats().batches > 0  # the properties were read on the workers
    assert remote.drift.properties.counts() == local.drift.properties.counts()
    assert property_rows(sessions) == expected and len(expected) == 2 * N_IMAGES
    assert remote.computed == local.computed > 0
