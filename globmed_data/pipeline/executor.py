"""Where a stage's maps run: in the run's own process, in a local process pool, or as Ray tasks.

A map's function is pure (no warehouse: collect's `map_file` reads one file and returns Arrow
tables; language ID, quality and dedup's signing decide one batch of entries, see BatchMap), so
any process can run it; the run's process stays the one writer of the warehouse and takes the
results in order. `ordered_map` is the same for every executor: at most `window` calls in
flight, results in the order of the calls, so a source's files are written in the order they
are read.

The stages and flows that run models (translation, the benchmark, training) ask for a model's
place through the same executor: `submit_model` runs one call that loads a model, `host` keeps
an object holding a model (a translation backend) for many calls. On Ray each is a task or an
actor that asks Ray for the model's GPUs, so one cluster schedules the GPU work with the rest;
elsewhere the model stays in the run's process, on the device its settings name.

`executor_for(settings)` builds the configured one (`executor.kind: local | ray`); the flow opens
it once per run and every stage's Context carries it.
"""

from __future__ import annotations

import gc
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from globmed_data.pipeline.settings import ExecutorSettings

R = TypeVar("R")


class Executor(Protocol):
    name: str
    inline: bool  # True: calls run in the caller's thread (nothing to gain by sending work away)
    workers: int  # calls that can run at once
    # True: the stages that decide entries in batches send them here too (see BatchMap).
    takes_batches: bool
    # True: models load and run in the run's process (submit_model and host call here).
    models_here: bool

    def submit(self, fn: Callable[..., R], *args: Any) -> Future[R]: ...

    def submit_model(
        self, fn: Callable[..., R], gpus: float, *args: Any, cpus: int | None = None
    ) -> Future[R]:
        """fn(*args), a call that loads and runs a model needing `gpus` GPUs and `cpus` CPUs
        (default: one beside its GPUs; with none, a whole node's, as the model computes on CPUs;
        a call that computes nothing, a baseline, gives 1)."""
        ...

    def host(self, factory: Callable[..., Any], gpus: float, *args: Any, cpus: int | None = None) -> Hosted:
        """factory(*args), an object holding a model needing `gpus` GPUs and `cpus` CPUs (as
        submit_model), kept for many calls."""
        ...

    def check_gpus(self, gpus: float, what: str, device: str | None = None) -> None:
        """Refuse, before any work, a model that needs more GPUs than the executor can give, or
        names a device it cannot have there (`device`: the model's setting, where it has one)."""
        ...

    def gpus_available(self) -> float | None:
        """GPUs the executor can give a model (None: not known here; the model's library looks)."""
        ...

    def release(self) -> None:
        """Let the workers' memory go between maps (the next submit starts them again)."""

    def close(self) -> None: ...


def ordered_map(
    executor: Executor, fn: Callable[..., R], calls: Iterable[tuple[Any, ...]], window: int
) -> Iterator[R]:
    """fn(*args) for every args, through the executor, at most `window` in flight, in order.

    Leaving early (a failure on the writer's side) cancels what has not started."""
    pending: deque[Future[R]] = deque()
    calls = iter(calls)
    try:
        for args in calls:
            pending.append(executor.submit(fn, *args))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


def device_gpus(device: str) -> float:
    """The GPUs a model on `device` (a transformers device: cpu, cuda, cuda:0) needs: one on cuda."""
    return 1.0 if device.startswith("cuda") else 0.0


def vllm_gpus(engine: dict[str, Any]) -> float:
    """The GPUs a vLLM engine with these `vllm.LLM` arguments spans: tensor x pipeline parallel."""
    return float(int(engine.get("tensor_parallel_size", 1)) * int(engine.get("pipeline_parallel_size", 1)))


def in_flight(executor: Executor) -> int:
    """Calls to keep in flight through ordered_map: two per worker, so that a worker never waits
    for the caller to send it work (one here, where each call runs as it is submitted)."""
    return 1 if executor.inline else 2 * executor.workers


class Hosted(Protocol):
    """An object an executor holds (see Executor.host): its methods and attributes by name (an
    attribute it lacks reads as None)."""

    def call(self, method: str, *args: Any) -> Any: ...

    def get(self, attribute: str) -> Any: ...

    def close(self) -> None: ...


class HostedHere:
    """An object in the run's process: the model on the device its settings name."""

    def __init__(self, factory: Callable[..., Any], *args: Any) -> None:
        self.obj = factory(*args)

    def call(self, method: str, *args: Any) -> Any:
        return getattr(self.obj, method)(*args)

    def get(self, attribute: str) -> Any:
        return getattr(self.obj, attribute, None)

    def close(self) -> None:
        self.obj = None


class _ModelsHere:
    """Models run in the run's process (the executors of one machine): a pool's worker would
    load the model again for each call, and the run's process is where its device was chosen."""

    models_here = True

    def submit_model(
        self, fn: Callable[..., R], gpus: float, *args: Any, cpus: int | None = None
    ) -> Future[R]:
        return _call_now(fn, *args)

    def host(self, factory: Callable[..., Any], gpus: float, *args: Any, cpus: int | None = None) -> Hosted:
        return HostedHere(factory, *args)

    def check_gpus(self, gpus: float, what: str, device: str | None = None) -> None:
        return None  # the model's library finds the device, or says it is missing

    def gpus_available(self) -> float | None:
        return None


def _call_now(fn: Callable[..., R], *args: Any) -> Future[R]:
    future: Future[R] = Future()
    try:
        future.set_result(fn(*args))
    except BaseException as exc:  # the caller sees it where it takes the result
        future.set_exception(exc)
    return future


class BatchMap:
    """How a stage that decides entries batch by batch (language ID, quality, dedup's signing)
    maps its batches: through the run's executor when it takes batches and the stage has at
    least `min_entries` to decide (`executor.min_task_entries`), else in its own process on its
    own threads.

    Those stages already spread a batch over the cores on threads (polars and the compiled
    kernels release the GIL), so a local pool gains them nothing: on 2 cores at 500k entries
    they took the same time in a pool, and each worker kept 0.5-0.8 GiB. A local pool maps the
    collect's files (per-record Python, held by the GIL); Ray, which adds machines, takes the
    batches as well.
    """

    def __init__(self, executor: Executor | None, entries: int, min_entries: int) -> None:
        away = executor is not None and executor.takes_batches and entries >= min_entries
        self.executor: Executor = executor if executor is not None and away else InlineExecutor()
        self.entries = entries
        # Sent away, a call is one worker's work: one thread (a Ray task holds one CPU).
        self.threads: int | None = None if self.executor.inline else 1

    def rows(self, most: int, least: int) -> int:
        """Rows per batch: `most` here; sent away, enough batches to give every worker two (an
        uneven last batch then idles a worker for less), but not under `least`."""
        if self.executor.inline:
            return most
        return max(least, min(most, -(-self.entries // (2 * self.executor.workers))))

    def map(self, fn: Callable[..., R], batches: Iterable[Any], *args: Any) -> Iterator[R]:
        """fn(batch, *args, threads) for every batch, in order: one at a time here, two per
        worker in flight when sent away. Once the last result is in, the workers are released:
        they would otherwise hold their last batches' memory through the stage's reduce."""
        calls = ((b, *args, self.threads) for b in batches)
        yield from ordered_map(self.executor, fn, calls, in_flight(self.executor))
        self.executor.release()


class InlineExecutor(_ModelsHere):
    """Every call in the calling thread: no process to start, nothing to pickle."""

    name = "inline"
    inline = True
    workers = 1
    takes_batches = False

    def submit(self, fn: Callable[..., R], *args: Any) -> Future[R]:
        return _call_now(fn, *args)

    def release(self) -> None:
        return None

    def close(self) -> None:
        return None


class ProcessExecutor(_ModelsHere):
    """A local pool of `workers` processes, started on first use. Spawned, not forked: the run's
    process has Prefect's and DuckDB's threads, and a fork would copy their held locks.
    `takes_batches`: the stages' batches go to the pool too (tests; see BatchMap)."""

    name = "local"
    inline = False

    def __init__(self, workers: int, takes_batches: bool = False) -> None:
        self.workers = workers
        self.takes_batches = takes_batches
        self._pool: ProcessPoolExecutor | None = None
        # The collect's source threads submit side by side: without the lock, each of the
        # first ones started a pool of its own (workers spawned for nothing, pools left open).
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., R], *args: Any) -> Future[R]:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    self.workers, mp_context=get_context("spawn"), initializer=start_worker
                )
            return self._pool.submit(fn, *args)

    def release(self) -> None:
        """Shut the pool down: a worker keeps what its allocators took (~0.3 GiB after the
        collect at 500k entries), which the next stages need; the next map starts it again."""
        self.close()

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


WORKER_GC_THRESHOLD = (10_000, 10, 10)


def start_worker() -> None:
    """A pool worker maps files: many short-lived objects, few that live. Python's collector
    looks for cycles every 700 allocations by default; every 10,000 here, with the imports
    frozen out of its sight, the map takes 6% less time (docs/scaling-history.md)."""
    gc.freeze()
    gc.set_threshold(*WORKER_GC_THRESHOLD)


class RayExecutor:
    """Calls as Ray tasks on a cluster (`address`, else $RAY_ADDRESS, else a local one started
    here with `workers` CPUs). Ray is imported only when this executor is chosen (extra `dist`)."""

    name = "ray"
    inline = False
    takes_batches = True
    models_here = False

    def __init__(self, address: str | None, workers: int, gpus: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise RuntimeError(
                "executor.kind is 'ray' but Ray is not installed: pip install -e '.[dist]'"
            ) from None
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            address = address or os.environ.get("RAY_ADDRESS")
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=workers, num_gpus=gpus, include_dashboard=False, log_to_driver=False)
            self._started = True
        self.workers = int(ray.cluster_resources().get("CPU", workers))
        self._remote: dict[Callable[..., Any], Any] = {}

    def submit(self, fn: Callable[..., R], *args: Any) -> Future[R]:
        remote = self._remote.get(fn)
        if remote is None:
            remote = self._remote[fn] = self._ray.remote(fn)
        return remote.remote(*args).future()  # type: ignore[no-any-return]

    def submit_model(
        self, fn: Callable[..., R], gpus: float, *args: Any, cpus: int | None = None
    ) -> Future[R]:
        """A task holding `cpus` CPUs and `gpus` GPUs: Ray runs it on a node that has them, and
        sets CUDA_VISIBLE_DEVICES to the GPUs it gave (device `cuda` is the first of them) and
        the threads of torch and BLAS to its CPUs."""
        self.check_gpus(gpus, getattr(fn, "__name__", "a model call"))
        remote = self._ray.remote(num_cpus=self._cpus(cpus, gpus), num_gpus=gpus)(fn)
        return self._unwrapped(remote.remote(*args).future())

    def _unwrapped(self, ray_future: Future[R]) -> Future[R]:
        """A future that fails with the call's own exception, as a call here would raise it
        (Ray wraps it in a RayTaskError that carries the remote traceback)."""
        future: Future[R] = Future()

        def settle(done: Future[R]) -> None:
            exc = done.exception()
            if exc is None:
                future.set_result(done.result())
            else:
                cause = exc.cause if isinstance(exc, self._ray.exceptions.RayTaskError) else None
                future.set_exception(cause if isinstance(cause, BaseException) else exc)

        ray_future.add_done_callback(settle)
        return future

    def host(self, factory: Callable[..., Any], gpus: float, *args: Any, cpus: int | None = None) -> Hosted:
        """An actor holding `cpus` CPUs and `gpus` GPUs for its life: the model loads once there."""
        self.check_gpus(gpus, getattr(factory, "__name__", "a model"))
        options = {"num_cpus": self._cpus(cpus, gpus), "num_gpus": gpus}
        # The actor is a HostedHere in the node's process: the object the factory made there.
        actor = self._ray.remote(**options)(HostedHere).remote(factory, *args)
        return _HostedOnRay(self._ray, actor)

    def _cpus(self, cpus: int | None, gpus: float) -> int:
        """None: one beside GPUs, else the CPUs of the largest node. Ray sets a task's torch and
        BLAS threads to its CPUs, so a model computing on one CPU ran at half the speed of the
        run's process on two (benchmarks/models_ray_bench.py)."""
        if cpus is not None:
            return cpus
        if gpus:
            return 1
        nodes = [n["Resources"].get("CPU", 0) for n in self._ray.nodes() if n.get("Alive")]
        return max(1, int(max(nodes, default=1)))

    def gpus_available(self) -> float:
        return float(self._ray.cluster_resources().get("GPU", 0))

    def check_gpus(self, gpus: float, what: str, device: str | None = None) -> None:
        """Refuse at once what no node of the cluster can ever run: Ray would keep it waiting.
        A task sees only the GPUs Ray gave it, numbered from 0: `cuda:1` would not exist there."""
        if device is not None and device.startswith("cuda:") and device != "cuda:0":
            raise RuntimeError(
                f"{what} names device {device}, but on Ray a model sees only the GPUs Ray gives it: "
                "name the device `cuda` (and its `gpus`), and Ray chooses which GPU"
            )
        have = self.gpus_available()
        if gpus > have:
            raise RuntimeError(
                f"{what} asks Ray for {gpus:g} GPU(s) but the cluster has {have:g}: start a node with "
                "GPUs (ray start --num-gpus N), or run the model on CPUs (its `gpus: 0`; a training "
                "recipe's `device: cpu`)"
            )

    def release(self) -> None:
        return None  # Ray starts, reuses and stops its workers itself

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False


class _HostedOnRay:
    def __init__(self, ray: Any, actor: Any) -> None:
        self._ray, self._actor = ray, actor

    def call(self, method: str, *args: Any) -> Any:
        return self._result(self._actor.call.remote(method, *args))

    def get(self, attribute: str) -> Any:
        return self._result(self._actor.get.remote(attribute))

    def _result(self, ref: Any) -> Any:
        """The call's value, or its own exception, as a call here would raise it."""
        try:
            return self._ray.get(ref)
        except self._ray.exceptions.RayTaskError as exc:
            if isinstance(exc.cause, BaseException):
                raise exc.cause from None
            raise

    def close(self) -> None:
        """The actor ends, and its CPU and GPUs go back to the cluster."""
        self._ray.kill(self._actor)


def executor_for(settings: ExecutorSettings) -> Executor:
    workers = settings.workers or os.cpu_count() or 1
    if settings.kind == "ray":
        return RayExecutor(settings.address, workers)
    if workers <= 1:
        return InlineExecutor()
    return ProcessExecutor(workers)


def model_executor(settings: ExecutorSettings) -> Executor:
    """Where a flow that runs models (benchmark, training) runs them: Ray tasks when the config's
    executor is Ray, else the flow's process (a pool's worker would only load the model again)."""
    return executor_for(settings) if settings.kind == "ray" else InlineExecutor()
