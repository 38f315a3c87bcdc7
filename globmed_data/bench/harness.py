"""One call into lm-evaluation-harness: a TaskManager over a folder of generated task YAML,
then `simple_evaluate` with the per-sample logs kept. The model scoring and the judge both go
through here."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from globmed_data.bench.engines import EngineError
from globmed_data.bench.settings import BenchSettings
from globmed_data.bench.tasks import HarnessTask


def run_harness(
    lm: Any, tasks: list[HarnessTask], folder: Path, settings: BenchSettings, *, chat: bool
) -> tuple[dict[str, Any], float]:
    import datasets
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    datasets.disable_progress_bars()  # a bar per shard and per map: noise; the harness shows progress

    manager = TaskManager(include_path=str(folder), include_defaults=False)
    started = time.perf_counter()
    results = simple_evaluate(
        model=lm,
        tasks=[t.name for t in tasks],
        task_manager=manager,
        limit=settings.limit,
        batch_size=settings.batch_size,
        log_samples=True,
        apply_chat_template=chat,
        bootstrap_iters=0,
        verbosity="WARNING",
    )
    if results is None:
        raise EngineError("lm-evaluation-harness returned no results")
    return results, time.perf_counter() - started
