"""The translate stage: choose parents per job, translate their segments (cache first), check,
and write translated entries (origin=translated, parent_entry_id) and outcomes."""

from __future__ import annotations

import hashlib
import json
import time
import unicodedata
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import polars as pl
import pyarrow as pa

from globmed_data import faults
from globmed_data.config import LoadedConfig, PipelineConfig
from globmed_data.ids import content_hash, entry_id, stable_hash
from globmed_data.pipeline.executor import Executor, InlineExecutor
from globmed_data.pipeline.stage import Context, Report
from globmed_data.translate.backends import Backend, HostedBackend, make_backend, model_gpus
from globmed_data.translate.checks import OutputChecker
from globmed_data.translate.segments import Protector, Segment, assemble, segments_of
from globmed_data.translate.settings import TranslateSettings, TranslationJob
from globmed_data.warehouse import Warehouse, now

Log = Callable[[str], None]
CHUNK = 256  # parents per unit of work: translated, checked and committed together

# Parents are eligible native entries (warehouse/views/v_eligible_entries.sql).
_PARENTS = """
SELECT entry_id, source, record_key, content_hash, task, curated_language AS language, split, question,
       context, options, answer_indices, label, premise, hypothesis, answer, rationale, license
FROM v_eligible_entries
WHERE origin = 'native'
"""


def segment_hash(masked: str) -> str:
    return stable_hash("segment", " ".join(unicodedata.normalize("NFC", masked).split()))


def translated_source(parent_source: str) -> str:
    return f"{parent_source}.mt"


def select_parents(parents: pl.DataFrame, job: TranslationJob, target: str) -> pl.DataFrame:
    """The job's candidates for one target, in a stable per-target order, capped."""
    keep = pl.col("language").is_in(job.from_languages) & (pl.col("language") != target)
    for column, allowed in (("task", job.tasks), ("split", job.splits), ("source", job.sources)):
        if allowed:
            keep &= pl.col(column).is_in(allowed)
    chosen = parents.filter(keep).with_columns(
        order=pl.col("entry_id").map_elements(
            lambda i: hashlib.blake2b(f"{i}:{target}".encode(), digest_size=8).hexdigest(),
            return_dtype=pl.String,
        )
    )
    chosen = chosen.sort("order")
    return chosen.head(job.max_per_target) if job.max_per_target else chosen


class Translator:
    """One run of the stage: backends, protector and checker shared by every job."""

    def __init__(
        self,
        wh: Warehouse,
        loaded: LoadedConfig,
        run_id: str,
        log: Log,
        backends: dict[str, Backend] | None = None,
        progress: Callable[[int, int], None] | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.wh, self.loaded, self.run_id, self.log = wh, loaded, run_id, log
        self.executor: Executor = executor or InlineExecutor()
        self.progress = progress or (lambda done, total: None)
        self.s = loaded.config.translate
        self.protector = Protector(self.s.protect_terms)
        self.backends: dict[str, Backend] = dict(backends or {})  # tests pass doubles here
        self.checker: OutputChecker | None = None
        self.stats = {
            "segments": 0,
            "cache_hits": 0,
            "model_segments": 0,
            "model_seconds": 0.0,
            "translated": 0,
            "rejected": 0,
            "skipped": 0,
        }

    def backend(self, name: str) -> Backend:
        """A backend that holds a model runs where the executor places it (on Ray: an actor with
        the model's GPUs); an endpoint's client stays here."""
        if name not in self.backends:
            settings = self.s.backends[name]
            gpus = model_gpus(settings)
            if gpus is None:
                self.backends[name] = make_backend(name, settings)
            else:
                hosted = self.executor.host(make_backend, gpus, name, settings)
                self.backends[name] = HostedBackend(name, settings, hosted)
        return self.backends[name]

    def close(self) -> None:
        """The models go (on Ray their actors end, and their GPUs go back to the cluster)."""
        for backend in self.backends.values():
            if isinstance(backend, HostedBackend):
                backend.close()

    def checks(self) -> OutputChecker:
        if self.checker is None:
            from globmed_data.langid.identify import LanguageIdentifier
            from globmed_data.langid.stage import identifier_options

            lid = self.loaded.config.langid
            identifier = (
                LanguageIdentifier(**identifier_options(lid, self.loaded))
                if self.s.checks.language_id
                else None
            )
            self.checker = OutputChecker(self.s.checks, identifier)
        return self.checker

    def attempted_key(self, job: TranslationJob) -> str:
        parts = [f"{n}:{self.s.backends[n].model}" for n in (job.backend, *job.fallback)]
        return "|".join(parts) + f"|prompt:{self.s.prompt_version}"

    # -- the run ------------------------------------------------------------------------------
    def check_gpus(self) -> None:
        """Refuse, before any work, a job's model that needs more GPUs than the executor gives."""
        for job in self.s.jobs:
            for name in (job.backend, *job.fallback):
                settings = self.s.backends[name]
                gpus = model_gpus(settings)
                if gpus and name not in self.backends:
                    device = getattr(settings, "device", None)  # hf's; vllm's engine picks its own
                    self.executor.check_gpus(gpus, f"translate backend '{name}' ({settings.model})", device)

    def run(self) -> dict[str, Any]:
        self.check_gpus()
        try:
            return self._run()
        finally:
            self.close()

    def _run(self) -> dict[str, Any]:
        started = time.perf_counter()
        frame = pl.from_arrow(self.wh.arrow(_PARENTS))
        assert isinstance(frame, pl.DataFrame)
        done = {
            (p, t): (h, st, a, any("backend_error" in r for r in reasons))
            for p, t, h, st, a, reasons in self.wh.query(
                "SELECT parent_entry_id, target_language, parent_content_hash, status, attempted, reasons "
                "FROM translations"
            )
        }
        per_target: dict[str, dict[str, int]] = {}
        for job in self.s.jobs:
            attempted = self.attempted_key(job)
            for target in job.targets:
                chosen = select_parents(frame, job, target)
                pending = [
                    row
                    for row in chosen.iter_rows(named=True)
                    if not _settled(done.get((row["entry_id"], target)), row["content_hash"], attempted)
                ]
                faults.point("translate.planned")
                self.stats["skipped"] += chosen.height - len(pending)
                self.log(
                    f"translate: job {job.name} → {target}: {chosen.height} selected, {len(pending)} to do"
                )
                counts = per_target.setdefault(target, {"translated": 0, "rejected": 0})
                self.progress(0, len(pending))
                for start in range(0, len(pending), CHUNK):
                    ok, bad = self.translate_chunk(job, target, pending[start : start + CHUNK], attempted)
                    counts["translated"] += ok
                    counts["rejected"] += bad
                    faults.point("translate.chunk")
                    self.progress(min(start + CHUNK, len(pending)), len(pending))
                    self.log(
                        f"translate: {target}: {min(start + CHUNK, len(pending))}/{len(pending)} entries; "
                        f"{self.stats['cache_hits']} cached / {self.stats['model_segments']} new segments"
                    )
        seconds = time.perf_counter() - started
        st = self.stats
        return {
            **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in st.items()},
            "cache_hit_rate": round(st["cache_hits"] / st["segments"], 4) if st["segments"] else None,
            "model_segments_per_s": round(st["model_segments"] / st["model_seconds"], 1)
            if st["model_seconds"]
            else None,
            "by_target": per_target,
            "seconds": round(seconds, 3),
        }

    def translate_chunk(
        self, job: TranslationJob, target: str, parents: list[dict[str, Any]], attempted: str
    ) -> tuple[int, int]:
        segments = {p["entry_id"]: segments_of(p, self.protector) for p in parents}
        kept: dict[str, tuple[str, dict[str, Any]]] = {}
        reasons: dict[str, list[str]] = defaultdict(list)
        for name in (job.backend, *job.fallback):
            todo = [p for p in parents if p["entry_id"] not in kept]
            if not todo:
                break
            outputs = self.segment_outputs(
                name, [(p["language"], s) for p in todo for s in segments[p["entry_id"]]], target
            )
            for p in todo:
                segs = segments[p["entry_id"]]
                restored, problems = [], []
                for seg in segs:
                    raw = (
                        seg.masked
                        if not seg.needs_model
                        else outputs.get((p["language"], segment_hash(seg.masked)))
                    )
                    text, found = (None, []) if raw is None else self.protector.restore(raw, seg.spans)
                    restored.append(text)
                    problems.append(found)
                failed = self.checks().check(segs, restored, problems, target)
                if failed:
                    reasons[p["entry_id"]] += [f"{name}:{r}" for r in failed]
                else:
                    kept[p["entry_id"]] = (name, assemble(p, segs, [t or "" for t in restored]))
        self.write(job, target, parents, kept, reasons, attempted)
        self.stats["translated"] += len(kept)
        self.stats["rejected"] += len(parents) - len(kept)
        return len(kept), len(parents) - len(kept)

    def segment_outputs(
        self, name: str, items: list[tuple[str, Segment]], target: str
    ) -> dict[tuple[str, str], str | None]:
        """(source language, segment hash) -> output, from the cache or the backend (then cached)."""
        backend = self.backend(name)
        wanted: dict[tuple[str, str], str] = {}
        for src, seg in items:
            if seg.needs_model:
                wanted.setdefault((src, segment_hash(seg.masked)), seg.masked)
        self.stats["segments"] += sum(1 for _, s in items if s.needs_model)
        found = self.cached(name, backend.model, target, list(wanted))
        self.stats["cache_hits"] += (
            sum(1 for _, s in items if s.needs_model and (_, segment_hash(s.masked)) in found) if False else 0
        )
        hits = sum(1 for src, s in items if s.needs_model and (src, segment_hash(s.masked)) in found)
        self.stats["cache_hits"] += hits
        missing = [k for k in wanted if k not in found]
        by_src: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for src, h in missing:
            by_src[src].append((h, wanted[(src, h)]))
        for src, rows in by_src.items():
            for start in range(0, len(rows), backend.batch_size):
                batch = rows[start : start + backend.batch_size]
                t = time.perf_counter()
                try:
                    outs = backend.translate([text for _, text in batch], src, target)
                    errors = (
                        [None] * len(batch) if all(o is not None for o in outs) else _errors(backend, outs)
                    )
                except Exception as exc:  # a backend that fails as a whole fails this batch only
                    outs, errors = [None] * len(batch), [f"{type(exc).__name__}: {exc}"[:500]] * len(batch)
                seconds = time.perf_counter() - t
                self.stats["model_segments"] += len(batch)
                self.stats["model_seconds"] += seconds
                self.store(name, backend.model, src, target, batch, outs, errors, seconds / len(batch))
                found.update({(src, h): o for (h, _), o in zip(batch, outs, strict=True)})
        return found

    def cached(
        self, name: str, model: str, target: str, keys: list[tuple[str, str]]
    ) -> dict[tuple[str, str], str | None]:
        if not keys:
            return {}
        table = pa.table({"src": [k[0] for k in keys], "h": [k[1] for k in keys]})
        with self.wh.transaction() as con:
            con.register("c_keys", table)
            try:
                rows = con.execute(
                    "SELECT c.source_language, c.segment_hash, c.output FROM translation_cache c "
                    "JOIN c_keys k ON k.src = c.source_language AND k.h = c.segment_hash "
                    "WHERE c.target_language = ? AND c.backend = ? AND c.model = ? AND c.prompt_version = ? "
                    "AND (c.output IS NOT NULL OR starts_with(c.error, 'permanent: '))",
                    [target, name, model, self.s.prompt_version],
                ).fetchall()
            finally:
                con.unregister("c_keys")
        return {(src, h): out for src, h, out in rows}

    def store(
        self,
        name: str,
        model: str,
        src: str,
        target: str,
        batch: list[tuple[str, str]],
        outs: list[str | None],
        errors: list[str | None],
        seconds: float,
    ) -> None:
        """Commit a batch's outputs at once: a crash later never translates them again."""
        ts = now()
        rows = [
            (h, src, target, name, model, self.s.prompt_version, text, out, err, seconds, ts)
            for (h, text), out, err in zip(batch, outs, errors, strict=True)
        ]
        with self.wh.transaction() as con:
            con.executemany(
                "INSERT OR REPLACE INTO translation_cache VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )

    def write(
        self,
        job: TranslationJob,
        target: str,
        parents: list[dict[str, Any]],
        kept: dict[str, tuple[str, dict[str, Any]]],
        reasons: dict[str, list[str]],
        attempted: str,
    ) -> None:
        ts = now()
        entries, outcomes, withdrawn = [], [], []
        for p in parents:
            pid = p["entry_id"]
            source = translated_source(p["source"])
            record_key = f"{p['record_key']}@{target}"
            tid = entry_id(source, record_key)
            name, model = None, None
            if pid in kept:
                name, fields = kept[pid]
                model = self.backend(name).model
                entry = {
                    "entry_id": tid,
                    "source": source,
                    "record_key": record_key,
                    "task": p["task"],
                    "language": target,
                    "split": p["split"],
                    "question": p["question"],
                    "context": p["context"],
                    "options": p["options"],
                    "answer_indices": p["answer_indices"],
                    "label": p["label"],
                    "premise": p["premise"],
                    "hypothesis": p["hypothesis"],
                    "answer": p["answer"],
                    "rationale": p["rationale"],
                    **fields,
                    "origin": "translated",
                    "parent_entry_id": pid,
                    "license": p["license"],
                }
                entry["content_hash"] = content_hash(entry)
                entry["metadata"] = json.dumps(
                    {
                        "translation": {
                            "job": job.name,
                            "backend": name,
                            "backend_kind": self.s.backends[name].kind,
                            "model": model,
                            "prompt_version": self.s.prompt_version,
                            "source_language": p["language"],
                            "parent_content_hash": p["content_hash"],
                            "translated_at": ts.isoformat(),
                            "reviewed": None,
                        }
                    },
                    ensure_ascii=False,
                )
                entries.append(entry)
            else:
                withdrawn.append(tid)
            ok = pid in kept
            outcomes.append(
                (pid, target, p["content_hash"], job.name, attempted, name, model, self.s.prompt_version,
                 "ok" if ok else "rejected", [] if ok else reasons[pid], tid if ok else None, None, None,
                 self.run_id, ts)
            )  # fmt: skip
        with self.wh.transaction() as con:
            if entries:
                con.register("t_entries", _entries_table(entries))
                try:
                    con.execute(
                        """INSERT INTO entries SELECT entry_id, source, record_key, content_hash, task,
                             language, split, question, context, options, answer_indices, label, premise,
                             hypothesis, answer, rationale, origin, parent_entry_id, license, metadata,
                             'active', $run, $run
                           FROM t_entries
                           ON CONFLICT (entry_id) DO UPDATE SET content_hash = excluded.content_hash,
                             question = excluded.question, context = excluded.context,
                             options = excluded.options, answer_indices = excluded.answer_indices,
                             label = excluded.label, premise = excluded.premise,
                             hypothesis = excluded.hypothesis, answer = excluded.answer,
                             rationale = excluded.rationale, split = excluded.split,
                             license = excluded.license,
                             metadata = excluded.metadata, status = 'active',
                             updated_run_id = excluded.updated_run_id""",
                        {"run": self.run_id},
                    )
                finally:
                    con.unregister("t_entries")
            if withdrawn:  # an earlier translation of a parent that changed no longer stands
                con.execute(
                    "UPDATE entries SET status = 'vanished', updated_run_id = ? "
                    "WHERE entry_id IN (SELECT unnest(?)) AND status = 'active'",
                    [self.run_id, withdrawn],
                )
            con.executemany(
                "INSERT OR REPLACE INTO translations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                outcomes,
            )


def _settled(previous: tuple[str, str, str, bool] | None, parent_hash: str, attempted: str) -> bool:
    """Nothing to do: translated from this parent content, or rejected by these same backends on
    their output (a backend error is tried again: the cache answers the segments that worked, and
    errors marked permanent, without a model call)."""
    if previous is None or previous[0] != parent_hash:
        return False
    _, status, tried, backend_failed = previous
    return status == "ok" or (tried == attempted and not backend_failed)


def _errors(backend: Backend, outs: list[str | None]) -> list[str | None]:
    """The backend's reason for each missing output (backends that know set `last_errors`)."""
    known = getattr(backend, "last_errors", None)
    if not known or len(known) != len(outs):
        known = [None] * len(outs)
    return [None if o is not None else (why or "no output") for o, why in zip(outs, known, strict=True)]


def _entries_table(entries: list[dict[str, Any]]) -> pa.Table:
    from globmed_data.schema import entries_table

    return entries_table(entries)


def run_translate(
    wh: Warehouse,
    loaded: LoadedConfig,
    run_id: str,
    *,
    log: Log = print,
    backends: dict[str, Backend] | None = None,
    progress: Callable[[int, int], None] | None = None,
    executor: Executor | None = None,
) -> dict[str, Any]:
    return Translator(wh, loaded, run_id, log, backends, progress, executor).run()


def pending(wh: Warehouse, loaded: LoadedConfig) -> int:
    """Parents a job selects that have no outcome for their current content yet (a run was
    killed, or they are new). Backend errors waiting for a retry do not count: they may never
    clear, and what they hold back is a translation, not a decision about a published entry."""
    frame = pl.from_arrow(wh.arrow(_PARENTS))
    assert isinstance(frame, pl.DataFrame)
    done = dict(
        wh.query("SELECT parent_entry_id || '|' || target_language, parent_content_hash FROM translations")
    )
    todo = 0
    for job in loaded.config.translate.jobs:
        for target in job.targets:
            chosen = select_parents(frame, job, target)
            todo += sum(
                done.get(f"{e}|{target}") != h
                for e, h in zip(chosen["entry_id"].to_list(), chosen["content_hash"].to_list(), strict=True)
            )
    return todo


def translate_hash(settings: TranslateSettings) -> str:
    """The stage's settings, as recorded in stage_state (translated entries carry their own
    lineage; this hash only tells a reader which settings the last run had)."""
    return stable_hash("translate", settings.model_dump_json())


class TranslateStage:
    name = "translate"
    reads = ("entries", "translations", "translation_cache")
    writes = ("entries", "translations", "translation_cache")
    decides_entries = True  # which parents are translated, into what
    adds_entries = "translated"

    def settings(self, config: PipelineConfig) -> TranslateSettings:
        return config.translate

    def settings_hash(self, loaded: LoadedConfig) -> str:
        return translate_hash(loaded.config.translate)

    def pending(self, wh: Warehouse, loaded: LoadedConfig) -> dict[str, int]:
        return {self.name: pending(wh, loaded)}

    def undecided(self, wh: Warehouse, settings_hash: str) -> int | None:
        return None  # which parents a job selects is in the config, not the warehouse

    def run(self, context: Context) -> Report:
        t = run_translate(
            context.wh,
            context.loaded,
            context.run_id,
            log=context.log,
            progress=context.progress,
            executor=context.executor,
        )
        rate = f"{t['cache_hit_rate']:.0%}" if t["cache_hit_rate"] is not None else "n/a"
        return Report(
            self.name,
            t,
            f"{t['translated']} translated, {t['rejected']} rejected, {t['skipped']} already done; "
            f"{t['segments']} segments, cache hits {rate}, {t['model_segments']} sent to a backend",
        )
