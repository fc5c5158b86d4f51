"""Executors: where the per-image stages run their batches, in this process or on Dask.

A per-image stage (embed, shadow, the drift job's and backfill's image properties,
``segmon predict``, ``evaluate --model``) pages pending work on the driver and
hands the pages to an :class:`Executor` as a :class:`BatchWork`: ``load`` reads one
item (an image, through the confined reader) and ``compute`` runs the model on a
loaded batch and returns a small, picklable result. The driver writes each result
idempotently by key, so where the work ran never changes what is stored.

- :class:`LocalExecutor` (``executor: {kind: local}``, the default): loads in a thread
  pool a bounded number of batches ahead and computes in this process, in order.
- :class:`DaskExecutor` (``kind: dask`` at an ``address``, or ``kind: local-cluster``):
  each batch is one task; the worker loads the images itself (so they must be on storage
  the workers share) and gets its model from a per-process cache (:class:`Cached`), so
  each worker process loads the model once. At most ``max_in_flight`` batches are
  submitted at a time; results come back as they complete
  (:func:`distributed.as_completed`). A batch whose task fails (its worker died, the
  connection dropped) is submitted again, up to ``retries`` times, each counted; a
  segmon error (bad input, a model breaking its protocol) is not retried.

``dask[distributed]`` is an optional extra (``pip install 'segmon[dask]'``), imported
only when a Dask executor is opened.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from monitor.errors import ConfigError, SegmonError

if TYPE_CHECKING:
    from monitor.config import ExecutorKind, ExecutorSettings

T = TypeVar("T")
U = TypeVar("U")
R = TypeVar("R")
M = TypeVar("M")
T_contra = TypeVar("T_contra", contravariant=True)
R_co = TypeVar("R_co", covariant=True)
M_co = TypeVar("M_co", covariant=True)

INSTALL_HINT = "pip install 'segmon[dask]'"


class ExecutorUnavailableError(SegmonError, ConnectionError):
    """The Dask scheduler could not be reached (``address`` says which)."""

    def __init__(self, address: str, detail: str) -> None:
        super().__init__(
            f"cannot reach the Dask scheduler at {address!r}: {detail}; start it (README: "
            "Scaling out) or set executor.kind: local"
        )
        self.address = address


class BatchWork(Protocol[T_contra, U, R_co]):
    """One stage's work on a batch: ``load`` each item, then ``compute`` the loaded batch.

    Must pickle (with cloudpickle) for a Dask executor: carry a :class:`Cached` model,
    not a loaded one.
    """

    def load(self, item: T_contra) -> U:
        """Read one item (runs in a loader thread, or on a Dask worker); never raises."""
        ...

    def compute(self, loaded: list[U]) -> R_co:
        """Run the model on a loaded batch and return what the driver stores."""
        ...


class ModelSource(Protocol[M_co]):
    """Gives the model a :class:`BatchWork` runs (:class:`Given` or :class:`Cached`)."""

    def get(self) -> M_co:
        """Return the model."""
        ...


@dataclass(frozen=True)
class Given(Generic[M]):
    """A model already loaded in this process (the local executor's)."""

    model: M

    def get(self) -> M:
        """Return the model."""
        return self.model


_CACHE: dict[str, Any] = {}
_CACHE_LOCK = threading.Lock()


@dataclass(frozen=True)
class Cached(Generic[M]):
    """A model built once per process from a picklable recipe, kept under ``key``.

    On a Dask worker the first task of a stage builds the model (``build()``) and every
    later task on that worker process reuses it; ``key`` must change whenever the
    model would (it is the model's settings, serialised).

    Examples
    --------
    >>> calls = []
    >>> source = Cached("doc-example", lambda: calls.append(1) or "model")
    >>> source.get(), source.get(), len(calls)
    ('model', 'model', 1)
    """

    key: str
    build: Callable[[], M]

    def get(self) -> M:
        """Return the model, building it the first time in this process."""
        with _CACHE_LOCK:
            if self.key not in _CACHE:
                _CACHE[self.key] = self.build()
            model: M = _CACHE[self.key]
            return model


@dataclass(frozen=True)
class ExecutorStats:
    """What an executor is doing, for ``segmon status`` and ``/metrics``.

    Attributes
    ----------
    kind
        ``local``, ``dask`` or ``local-cluster``.
    address
        The scheduler (None for local).
    workers
        Worker processes (1 for local: this process).
    threads
        Threads computing batches across the workers (1 for local).
    in_flight
        Batches submitted and not yet returned.
    retries
        Batches submitted again after their task failed, since the executor opened.
    batches
        Batches returned since the executor opened.
    """

    kind: ExecutorKind
    address: str | None
    workers: int
    threads: int
    in_flight: int
    retries: int
    batches: int

    def as_dict(self) -> dict[str, Any]:
        """Return the stats as a JSON-ready dict."""
        return {
            "kind": self.kind,
            "address": self.address,
            "workers": self.workers,
            "threads": self.threads,
            "in_flight": self.in_flight,
            "retries": self.retries,
            "batches": self.batches,
        }


class Executor(Protocol):
    """Runs a stage's batches; see the module docstring."""

    kind: ExecutorKind

    @property
    def remote(self) -> bool:
        """Whether batches run in other processes (models must then be :class:`Cached`)."""
        ...

    def map_batches(
        self,
        work: BatchWork[T, U, R],
        batches: Iterable[Sequence[T]],
        *,
        max_in_flight: int | None = None,
    ) -> Iterator[R]:
        """Yield ``work.compute`` of each batch (the local executor keeps their order)."""
        ...

    def stats(self) -> ExecutorStats:
        """Return what the executor is doing now."""
        ...

    def close(self) -> None:
        """Release the executor's resources (a local cluster shuts down)."""
        ...


def prefetch(
    batches: Iterable[Sequence[T]],
    load: Callable[[T], U],
    *,
    workers: int = 4,
    depth: int = 2,
) -> Iterator[list[U]]:
    """Load batches in a thread pool, up to ``depth`` batches ahead of the consumer.

    ``batches`` is advanced in the calling thread (so it may query the database); each
    item is loaded by ``load`` in the pool. At most ``depth`` batches are in flight.

    Examples
    --------
    >>> [b for b in prefetch([[1, 2], [3]], lambda x: x * 10, workers=2)]
    [[10, 20], [30]]
    """
    source = iter(batches)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="segmon-load")
    pending: deque[list[Future[U]]] = deque()

    def submit() -> None:
        batch = next(source, None)
        if batch is not None:
            pending.append([pool.submit(load, item) for item in batch])

    try:
        for _ in range(depth):
            submit()
        while pending:
            futures = pending.popleft()
            submit()
            yield [f.result() for f in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class LocalExecutor:
    """Batches in this process: loads ``depth`` batches ahead in ``workers`` threads.

    Examples
    --------
    >>> class Double:
    ...     def load(self, item: int) -> int:
    ...         return item * 2
    ...     def compute(self, loaded: list[int]) -> int:
    ...         return sum(loaded)
    >>> executor = LocalExecutor()
    >>> list(executor.map_batches(Double(), [[1, 2], [3]])), executor.stats().batches
    ([6, 6], 2)
    """

    kind: ExecutorKind = "local"

    def __init__(self, *, workers: int = 4, depth: int = 2) -> None:
        self.workers = workers
        self.depth = depth
        self._batches = 0
        self._in_flight = 0

    @property
    def remote(self) -> bool:
        """False: batches run here."""
        return False

    def map_batches(
        self,
        work: BatchWork[T, U, R],
        batches: Iterable[Sequence[T]],
        *,
        max_in_flight: int | None = None,
    ) -> Iterator[R]:
        """Yield ``work.compute`` of each batch, in order (images loaded ahead in threads)."""
        depth = max_in_flight or self.depth
        for loaded in prefetch(batches, work.load, workers=self.workers, depth=depth):
            self._in_flight = 1
            result = work.compute(loaded)
            self._in_flight = 0
            self._batches += 1
            yield result

    def stats(self) -> ExecutorStats:
        """Return what the executor is doing now."""
        return ExecutorStats("local", None, 1, 1, self._in_flight, 0, self._batches)

    def close(self) -> None:
        """Nothing to release."""


def _failure(future: Any) -> BaseException:
    """Return why a Dask future did not finish (a cancelled one: ``CancelledError``)."""
    if future.status == "cancelled":
        return CancelledError(f"Dask task {future.key} was cancelled")
    error: BaseException = future.exception()
    return error


def run_batch(work: BatchWork[T, U, R], batch: Sequence[T]) -> R:
    """Load and compute one batch where it runs (the task a Dask worker executes)."""
    return work.compute([work.load(item) for item in batch])


class DaskExecutor:
    """Batches as tasks on a Dask cluster, a bounded number in flight, retried on failure.

    Parameters
    ----------
    client
        A connected ``distributed.Client``.
    kind
        ``dask`` or ``local-cluster`` (for stats).
    retries
        Times a batch whose task failed is submitted again (each counted in
        :attr:`ExecutorStats.retries`); segmon errors are not retried.
    max_in_flight
        Batches submitted at once; 0: twice the worker threads.
    cluster
        A cluster this executor started (closed with it).
    """

    def __init__(
        self,
        client: Any,
        *,
        kind: ExecutorKind = "dask",
        retries: int = 3,
        max_in_flight: int = 0,
        cluster: Any = None,
    ) -> None:
        if retries < 0:
            raise ConfigError(f"retries must be >= 0, got {retries}")
        self.client = client
        self.kind = kind
        self.retries = retries
        self.max_in_flight = max_in_flight
        self.cluster = cluster
        self._lock = threading.Lock()
        self._in_flight = 0
        self._retries = 0
        self._batches = 0

    @property
    def remote(self) -> bool:
        """True: batches run on the cluster's workers."""
        return True

    def _workers(self) -> tuple[int, int]:
        workers = self.client.scheduler_info(n_workers=-1).get("workers", {})
        threads = sum(int(w.get("nthreads", 1)) for w in workers.values())
        return len(workers), threads

    def map_batches(
        self,
        work: BatchWork[T, U, R],
        batches: Iterable[Sequence[T]],
        *,
        max_in_flight: int | None = None,
    ) -> Iterator[R]:
        """Yield ``work.compute`` of each batch as its task completes (any order).

        Raises
        ------
        Exception
            The task's error, once a batch failed ``retries + 1`` times, or at once for
            a :class:`~monitor.errors.SegmonError`.
        """
        from distributed import as_completed

        limit = max_in_flight or self.max_in_flight or 2 * max(1, self._workers()[1])
        source = iter(batches)
        attempts: dict[Any, tuple[Sequence[T], int]] = {}
        pending = as_completed()  # type: ignore[no-untyped-call]  # distributed is untyped here

        def submit(batch: Sequence[T], attempt: int) -> None:
            future = self.client.submit(run_batch, work, batch, pure=False)
            attempts[future] = (batch, attempt)
            pending.add(future)  # type: ignore[no-untyped-call]  # as above
            with self._lock:
                self._in_flight += 1

        def refill() -> None:
            while len(attempts) < limit:
                batch = next(source, None)
                if batch is None:
                    return
                submit(batch, 0)

        try:
            refill()
            for future in pending:
                batch, attempt = attempts.pop(future)
                with self._lock:
                    self._in_flight -= 1
                if future.status != "finished":
                    error = _failure(future)
                    if isinstance(error, SegmonError) or attempt >= self.retries:
                        raise error
                    with self._lock:
                        self._retries += 1
                    submit(batch, attempt + 1)
                    continue
                result: R = future.result()
                with self._lock:
                    self._batches += 1
                refill()
                yield result
        finally:
            for future in list(attempts):
                future.cancel()
            with self._lock:
                self._in_flight = 0

    def stats(self) -> ExecutorStats:
        """Return what the executor is doing now (workers asked of the scheduler)."""
        try:
            workers, threads = self._workers()
        except Exception:  # a lost scheduler: report no workers rather than fail a scrape
            workers, threads = 0, 0
        with self._lock:
            return ExecutorStats(
                self.kind,
                str(self.client.scheduler.address),
                workers,
                threads,
                self._in_flight,
                self._retries,
                self._batches,
            )

    def close(self) -> None:
        """Close the client, and the local cluster if this executor started it."""
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def model_source(model: M, executor: Executor, recipe: Cached[M] | None) -> ModelSource[M]:
    """Return how a batch gets its model: the loaded one here, the recipe on a cluster.

    Raises
    ------
    ConfigError
        If the executor is remote and there is no recipe.
    """
    if not executor.remote:
        return Given(model)
    if recipe is None:
        raise ConfigError(
            f"executor {executor.kind!r} runs batches on other machines: it needs a model "
            f"recipe for {getattr(model, 'name', model)!r}, not a loaded model"
        )
    return recipe


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ConfigError(
            f"executor kinds dask and local-cluster need dask[distributed]: {INSTALL_HINT}"
        ) from None
    return distributed


def open_executor(settings: ExecutorSettings) -> Executor:
    """Open the executor the ``executor:`` settings name (close it when done).

    Raises
    ------
    ExecutorUnavailableError
        If the Dask scheduler at ``settings.address`` does not answer within
        ``connect_timeout_s``.
    ConfigError
        If a Dask kind is asked for and ``dask[distributed]`` is not installed.

    Examples
    --------
    >>> from monitor.config import ExecutorSettings
    >>> open_executor(ExecutorSettings()).kind
    'local'
    """
    if settings.kind == "local":
        return LocalExecutor()
    distributed = _distributed()
    if settings.kind == "local-cluster":
        cluster = distributed.LocalCluster(
            n_workers=settings.n_workers,
            threads_per_worker=settings.threads_per_worker,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
        client = distributed.Client(cluster)
        return DaskExecutor(
            client,
            kind="local-cluster",
            retries=settings.retries,
            max_in_flight=settings.max_in_flight,
            cluster=cluster,
        )
    assert settings.address is not None  # the settings check it
    started = time.monotonic()
    try:
        client = distributed.Client(settings.address, timeout=settings.connect_timeout_s)
    except (OSError, TimeoutError) as exc:
        waited = time.monotonic() - started
        raise ExecutorUnavailableError(
            settings.address, f"no answer after {waited:.1f} s ({type(exc).__name__}: {exc})"
        ) from exc
    return DaskExecutor(
        client, kind="dask", retries=settings.retries, max_in_flight=settings.max_in_flight
    )


class SharedExecutor:
    """The executor of a long-running service: opened on first use, then kept open.

    A failure to open (the scheduler is down) leaves it closed, so the next job run
    tries again. :meth:`stats` never opens it.
    """

    def __init__(self, settings: ExecutorSettings) -> None:
        self.settings = settings
        self._executor: Executor | None = None
        self._lock = threading.Lock()

    def get(self) -> Executor:
        """Return the open executor, opening it the first time.

        Raises
        ------
        ExecutorUnavailableError
            If the Dask scheduler does not answer.
        """
        with self._lock:
            if self._executor is None:
                self._executor = open_executor(self.settings)
            return self._executor

    def stats(self) -> ExecutorStats:
        """Return the executor's stats (the configured kind, no workers, until opened)."""
        with self._lock:
            executor = self._executor
        if executor is not None:
            return executor.stats()
        return ExecutorStats(self.settings.kind, self.settings.address, 0, 0, 0, 0, 0)

    def close(self) -> None:
        """Close the executor if open."""
        with self._lock:
            if self._executor is not None:
                self._executor.close()
                self._executor = None


@contextmanager
def opened(settings: ExecutorSettings, executor: Executor | None = None) -> Iterator[Executor]:
    """Open the configured executor for a ``with`` block, or lend one already open.

    With ``executor`` (the service's, kept open across runs) nothing is opened or closed.
    """
    if executor is not None:
        yield executor
        return
    made = open_executor(settings)
    try:
        yield made
    finally:
        made.close()
