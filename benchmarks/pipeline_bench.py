"""The whole pipeline through the CLI (`globmed run`, the Prefect flow) on N copies of a config's sources.

    .venv/bin/python benchmarks/pipeline_bench.py --scale 8 [--config configs/shared-real.yaml]
        [--executor local|ray] [--workers 2] [--keep DIR]

Every source is collected N times under distinct names (`<name>-<k>`; a translation links to its
parent's copy), so N x the entries go through collect, language ID, quality, dedup (the copies
are exact duplicates of each other: dedup works on all of them) and export, on a fresh
warehouse. Prints per-stage seconds (from the warehouse's run_stages), entries/s, the peak RSS of
the run's process and of its whole process tree (pool workers included, sampled every 0.1 s),
each stage's CPU seconds by process (the run's, the pool's workers, the ephemeral Prefect server)
and the cores they kept busy, the seconds outside the stages (before the first, after the last),
the collect's CPU per entry in the run's process and in the workers (the first bounds the collect
whatever the cores: the single writer), and the ratio to the baseline: the same files read by the
same streaming readers, with no mapping and no warehouse, in this process. The run inherits the
environment: set GLOBMED_WAREHOUSE_MEMORY=1GB to measure it with DuckDB's buffer pool capped.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _corpus import scratch  # noqa: E402

from globmed_data.config import load_config  # noqa: E402
from globmed_data.sources.locate import locate_files  # noqa: E402
from globmed_data.sources.readers import detect_format, read_file  # noqa: E402
from globmed_data.warehouse import Warehouse  # noqa: E402


def scaled_config(config: Path, scale: int, folder: Path, executor: dict) -> Path:
    """The config with every source copied `scale` times, written where its paths still resolve."""
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    sources = []
    for k in range(scale):
        for s in raw["sources"]:
            copy = {**s, "name": f"{s['name']}-{k}"}
            parent = s.get("translation_of")
            if parent:
                copy["translation_of"] = {**parent, "source": f"{parent['source']}-{k}"}
            sources.append(copy)
    name = f"{raw.get('name', 'bench')}-x{scale}"
    raw.update(sources=sources, executor=executor, warehouse=None, name=name)
    out = config.parent / f".bench-{config.stem}-x{scale}-{os.getpid()}.yaml"  # beside it: relative paths
    out.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return out


def readers_alone(config: Path) -> tuple[int, float]:
    loaded = load_config(config)
    started, n = time.perf_counter(), 0
    for s in loaded.config.sources:
        for f in locate_files(s, loaded).files:
            reader = read_file(
                f.path,
                detect_format(f.path, s.format),
                encoding=s.encoding,
                record_path=s.resolved_record_path(),
                max_record_bytes=loaded.config.collect.max_record_bytes,
            )
            n += sum(1 for _ in reader)
    return n, time.perf_counter() - started


class TreeMemory:
    """The peak of the summed RSS of a process and its descendants, and each one's CPU time,
    sampled in a thread."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.peak = 0
        self.samples: list[tuple[float, int]] = []  # (epoch seconds, RSS of the run's process)
        # Per process: its role and its (epoch seconds, CPU seconds so far) samples.
        self.cpu: dict[int, tuple[str, list[tuple[float, float]]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            try:
                procs = [self.root, *self.root.children(recursive=True)]
                self.peak = max(self.peak, sum(_rss(p) for p in procs))
                now = time.time()
                self.samples.append((now, _rss(self.root)))
                for p in procs:
                    self._sample_cpu(p, now)
            except psutil.Error:
                return

    def _sample_cpu(self, p: psutil.Process, now: float) -> None:
        try:
            times = p.cpu_times()
            role, series = self.cpu.get(p.pid, ("other", []))
            if role == "other":  # a new process, or one seen before its exec (the parent's command)
                role = _role(p, self.root)
        except psutil.Error:
            return  # gone between the listing and now: its last sample stands
        series.append((now, times.user + times.system))
        self.cpu[p.pid] = (role, series)

    def cpu_in(self, start: float, end: float) -> dict[str, float]:
        """CPU seconds spent between two moments, summed by role (a process's last sample
        before each moment; one that ended keeps its last)."""
        spent: dict[str, float] = dict.fromkeys(ROLES, 0.0)
        for role, series in self.cpu.values():
            spent[role] += _cpu_at(series, end) - _cpu_at(series, start)
        return spent

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


ROLES = ("run", "workers", "server", "other")


def _role(p: psutil.Process, root: psutil.Process) -> str:
    """What a process of the run's tree is: the run itself, a pool worker, the ephemeral Prefect
    server, or something else (multiprocessing's resource tracker, say)."""
    if p.pid == root.pid:
        return "run"
    command = " ".join(p.cmdline())
    if "spawn_main" in command or "forkserver" in command:
        return "workers"
    if "uvicorn" in command or "prefect" in command:
        return "server"
    return "other"


def _cpu_at(series: list[tuple[float, float]], moment: float) -> float:
    """A process's CPU seconds at its last sample not after `moment` (0 before its first)."""
    spent = 0.0
    for t, cpu in series:
        if t > moment:
            break
        spent = cpu
    return spent


def _rss(p: psutil.Process) -> int:
    try:
        return int(p.memory_info().rss)
    except psutil.Error:
        return 0


def run_cli(config: Path, warehouse: Path) -> tuple[float, float, int, TreeMemory]:
    """When it was launched (epoch seconds), seconds, peak RSS of the run's process, its process
    tree's memory."""
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING"}
    cmd = [
        str(Path(sys.executable).parent / "globmed"), "run", "-c", str(config), "-w", str(warehouse),
    ]  # fmt: skip
    launched, started = time.time(), time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    tree = TreeMemory(proc.pid)
    output, _ = proc.communicate()
    seconds = time.perf_counter() - started
    tree.stop()
    if proc.returncode != 0:
        sys.exit(f"globmed run failed (exit {proc.returncode}):\n{output[-4000:]}")
    own = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return launched, seconds, own, tree


def stage_spans(warehouse: Path) -> tuple[dict[str, tuple[float, float]], dict[str, int]]:
    """Each stage's (first start, last end) in epoch seconds, and the warehouse's counts."""
    with Warehouse(warehouse, read_only=True) as wh:
        run_id = wh.query("SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1")[0][0]
        spans = wh.query(
            "SELECT stage, epoch(min(started_at)), epoch(max(finished_at)) FROM run_stages "
            "WHERE run_id = ? GROUP BY stage ORDER BY min(started_at)",
            [run_id],
        )
        counts = dict(
            wh.query(
                "SELECT 'entries', count(*) FROM entries UNION ALL "
                "SELECT 'exported', count(*) FROM v_curated_entries UNION ALL "
                "SELECT 'quarantined', count(*) FROM quarantine"
            )
        )
    found = {stage: (float(a), float(b)) for stage, a, b in spans}
    # A source's record is written once its rows are in, but the collect's block then ends with
    # a checkpoint of everything it wrote (Warehouse.bulk_load), after the last source's record.
    # The collect ends when the next stage can start, so that this is counted too (it was not
    # before: 0.9 s of 5.5 at 1x, 0.5 s of 29 at 8x, 2026-12-06).
    order = list(found)
    if "collect" in found and order[-1] != "collect":
        after = found[order[order.index("collect") + 1]][0]
        found["collect"] = (found["collect"][0], max(found["collect"][1], after))
    return found, counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/shared-real.yaml")
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--executor", choices=("local", "ray"), default="local")
    ap.add_argument("--workers", type=int, default=None, help="processes / Ray CPUs (default: one per CPU)")
    ap.add_argument("--keep", type=Path, help="keep the warehouse in this folder")
    args = ap.parse_args()

    executor = {"kind": args.executor, **({"workers": args.workers} if args.workers else {})}
    config = scaled_config((ROOT / args.config).resolve(), args.scale, ROOT, executor)
    folder = args.keep or scratch("pipeline-bench-")  # the warehouse is ~1 GB at 8x
    try:
        records, read_s = readers_alone(config)
        folder.mkdir(parents=True, exist_ok=True)
        warehouse = folder / "bench.duckdb"
        warehouse.unlink(missing_ok=True)
        launched, seconds, own_rss, tree = run_cli(config, warehouse)
        spans, counts = stage_spans(warehouse)
    finally:
        config.unlink(missing_ok=True)

    entries, tree_rss = counts["entries"], tree.peak
    stages = {stage: b - a for stage, (a, b) in spans.items()}
    peaks = {
        stage: max((r for t, r in tree.samples if a <= t <= b), default=0) for stage, (a, b) in spans.items()
    }
    print(f"pipeline_bench: {args.config} x{args.scale}, executor {args.executor} "
          f"({args.workers or os.cpu_count()} workers), {os.cpu_count()} CPUs, DuckDB memory "
          f"{os.environ.get('GLOBMED_WAREHOUSE_MEMORY') or 'default'}")  # fmt: skip
    print(f"baseline (readers alone, this process): {records:,} records in {read_s:.1f} s = "
          f"{records / read_s:,.0f} records/s")  # fmt: skip
    print(f"globmed run (CLI, whole flow): {entries:,} entries in {seconds:.1f} s = {entries / seconds:,.0f} "
          f"entries/s; {seconds / read_s:.1f}x the readers' time")  # fmt: skip
    print(f"peak RSS: run process {own_rss / 2**30:.2f} GiB, process tree {tree_rss / 2**30:.2f} GiB")
    print(f"exported {counts['exported']:,}, quarantined {counts['quarantined']:,}")
    cpu = {stage: tree.cpu_in(a, b) for stage, (a, b) in spans.items()}
    print("stage        seconds   entries/s   peak RSS of the run's process   CPU-s: run  workers  server"
          "  cores busy")  # fmt: skip
    for stage, s in stages.items():
        c = cpu[stage]
        print(f"{stage:12} {s:8.1f} {entries / s if s else 0:11,.0f}   {peaks[stage] / 2**30:6.2f} GiB"
              f"{'':24}{c['run']:5.1f} {c['workers']:8.1f} {c['server']:7.1f}"
              f"  {sum(c.values()) / s if s else 0:10.2f}")  # fmt: skip
    first, last = min(a for a, _ in spans.values()), max(b for _, b in spans.values())
    before, after = first - launched, launched + seconds - last
    print(f"outside the stages: {before:.1f} s before the first (the CLI's start, Prefect's server, the "
          f"flow run), {after:.1f} s after the last (the run's reports, closing)")  # fmt: skip
    collect = cpu.get("collect")
    if collect and entries:
        # What the collect costs per entry, by process: the single writer's share bounds the collect
        # whatever the cores; the map's share divides by the cores given to the workers.
        run_us, map_us = collect["run"] / entries * 1e6, collect["workers"] / entries * 1e6
        print(f"collect CPU per entry: the run's process {run_us:.1f} µs (~{1e6 / run_us:,.0f} entries/s "
              f"with a core of its own), the workers' map {map_us:.1f} µs ({1e6 / map_us:,.0f} entries/s "
              f"per core)")  # fmt: skip
    figures = {
        "scale": args.scale, "entries": entries, "seconds": round(seconds, 1), "readers_s": round(read_s, 1),
        "stages": {k: round(v, 1) for k, v in stages.items()},
        "stage_rss_gib": {k: round(v / 2**30, 2) for k, v in peaks.items()},
        "stage_cpu_s": {k: {role: round(v, 1) for role, v in c.items()} for k, c in cpu.items()},
        "rss_gib": round(own_rss / 2**30, 2), "tree_rss_gib": round(tree_rss / 2**30, 2),
        "outside_s": {"before": round(before, 1), "after": round(after, 1)},
    }  # fmt: skip
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
