"""The DuckDB warehouse: the single source of truth and the hand-off between stages.

Opening a warehouse applies any pending numbered migrations from warehouse/migrations.
Every write a stage makes for one batch happens in one transaction, so a run killed at any
point leaves a consistent warehouse that the next run completes. One process writes the file: a
writer takes the warehouse's writer lock (globmed_data/ops/lock.py) before DuckDB's own, so a
second writer waits or fails naming the holder; threads in that process share one connection
behind a lock.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from globmed_data.appends import RowGroupAppends
from globmed_data.ops.lock import describe, holder_after, writer_lock
from globmed_data.resources import resource_dir
from globmed_data.schema import ENTRY_ARROW_SCHEMA, ENTRY_COLUMNS, QUARANTINE_SCHEMA, RAW_SCHEMA
from globmed_data.views import create_views, views_hash

ENV_VAR = "GLOBMED_WAREHOUSE"
MEMORY_ENV_VAR = "GLOBMED_WAREHOUSE_MEMORY"
DEFAULT_PATH = Path(".globmed") / "warehouse.duckdb"
# DuckDB checkpoints (merges its log into the file) at commit once the log passes this. Each
# checkpoint costs the single writer; each unmerged megabyte is held in memory until then.
CHECKPOINT_THRESHOLD = "256MB"
BULK_CHECKPOINT_THRESHOLD = "1GB"  # inside bulk_load()
_MIGRATION = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


def _limit_memory(con: duckdb.DuckDBPyConnection) -> None:
    """$GLOBMED_WAREHOUSE_MEMORY caps DuckDB's buffer pool ("1GB", "40%"). DuckDB's default, 80%
    of RAM, keeps blocks cached long after a stage read them, in the process where the stages'
    own work runs too. Too low a cap fails a commit once the tables' key indexes outgrow it."""
    limit = os.environ.get(MEMORY_ENV_VAR, "").strip()
    if not limit:
        return
    try:
        con.execute("SET memory_limit = ?", [limit])
    except duckdb.Error:
        raise WarehouseError(
            f"${MEMORY_ENV_VAR}={limit!r} is not a memory size DuckDB reads: give one such as 2GB or 40%"
        ) from None


class WarehouseError(RuntimeError):
    pass


def resolve_warehouse_path(flag: str | Path | None, configured: Path | None = None) -> Path:
    """Precedence: --warehouse flag, then $GLOBMED_WAREHOUSE, then the config, then the default."""
    if flag:
        return Path(flag)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    return configured or DEFAULT_PATH


def migrations_dir() -> Path:
    try:
        return resource_dir("warehouse", "migrations")
    except FileNotFoundError as exc:
        raise WarehouseError(str(exc)) from None


def list_migrations() -> list[tuple[int, str, Path]]:
    found = []
    for path in sorted(migrations_dir().iterdir()):
        m = _MIGRATION.match(path.name)
        if m:
            found.append((int(m.group(1)), m.group(2), path))
    return found


@contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class FileDone:
    """Marks a file as completely collected, in the same transaction as its last batch."""

    file: str
    size: int
    sha256: str
    spec_hash: str
    records: int


def _files_table(run_id: str, done: Sequence[tuple[str, FileDone]]) -> pa.Table:
    """`done` (source, file) as rows of source_files, in its column order."""
    n = len(done)
    return pa.table(
        {
            "source": [source for source, _ in done],
            "file": [f.file for _, f in done],
            "size": pa.array([f.size for _, f in done], pa.int64()),
            "sha256": [f.sha256 for _, f in done],
            "spec_hash": [f.spec_hash for _, f in done],
            "run_id": [run_id] * n,
            "records": pa.array([f.records for _, f in done], pa.int64()),
        }
    )


class Warehouse:
    def __init__(
        self, path: str | Path, *, read_only: bool = False, lock_wait: float | None = None, what: str = ""
    ) -> None:
        """Open (and migrate) the warehouse. A writer first holds the writer lock, waiting up to
        `lock_wait` seconds (default $GLOBMED_LOCK_WAIT, else none); a reader waits as long for a
        writer to let go. `what` names a writer to others."""
        self.path = Path(path)
        self.read_only = read_only
        self._writer: ExitStack | None = None
        if read_only and not self.path.exists():
            raise WarehouseError(f"no warehouse at {self.path}: run `globmed run` first or pass --warehouse")
        if read_only:
            holder = holder_after(self.path, lock_wait)
            if holder is not None:  # DuckDB would refuse with a lock error; say who and why
                raise WarehouseError(
                    f"the warehouse {self.path} is being written by {describe(holder)}; DuckDB lets no "
                    "other process read it meanwhile: read again when it finishes (the run's progress "
                    "is in the Prefect UI and its log)"
                )
        else:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise WarehouseError(
                    f"cannot create the folder {self.path.parent} for the warehouse "
                    f"({exc.strerror or exc}): choose a writable location with --warehouse"
                ) from None
            self._writer = ExitStack()
            self._writer.enter_context(writer_lock(self.path, what=what, wait=lock_wait))
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as exc:
            self._let_go()
            raise WarehouseError(f"cannot open warehouse {self.path}: {exc}") from None
        self._lock = threading.RLock()
        self.appends: RowGroupAppends | None = None  # inside bulk_load(): new rows wait there
        try:
            _limit_memory(self.con)
            if not read_only:
                # Fewer, larger checkpoints: many small batch commits otherwise checkpoint often.
                self.con.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
                self.migrate()
            else:
                self._check_version()
        except BaseException:
            self.close()  # no half-open file left behind in this process (a full disk, say)
            raise

    def _let_go(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def close(self) -> None:
        try:
            self.con.close()
        finally:
            self._let_go()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- migrations ---------------------------------------------------------------
    def migrate(self) -> list[int]:
        """Apply pending migrations in order, each in its own transaction."""
        with self._lock:
            self.con.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMPTZ)"
            )
            done = {r[0] for r in self.con.execute("SELECT version FROM schema_migrations").fetchall()}
            applied = []
            for version, name, path in list_migrations():
                if version in done:
                    continue
                with self.transaction():
                    self.con.execute(path.read_text(encoding="utf-8"))
                    self.con.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", [version, name, now()])
                applied.append(version)
            with self.transaction() as con:
                create_views(con)
            return applied

    def schema_version(self) -> int:
        ((version,),) = self.query("SELECT max(version) FROM schema_migrations")
        return int(version) if version is not None else 0

    def _check_version(self) -> None:
        try:
            current = self.schema_version()
        except duckdb.CatalogException:
            raise WarehouseError(f"{self.path} is not a globmed warehouse") from None
        latest = max(v for v, _, _ in list_migrations())
        if current < latest:
            raise WarehouseError(
                f"{self.path} is at schema version {current}, this globmed expects {latest}: "
                "open it once for writing (any `globmed run`) to migrate it"
            )
        ((stored,),) = self.query("SELECT max(views_hash) FROM schema_views")
        if stored != views_hash():
            raise WarehouseError(
                f"the views in {self.path} are older than this globmed's: "
                "open it once for writing (any `globmed run`) to update them"
            )

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._lock, _transaction(self.con) as con:
            yield con

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        with self._lock:
            return self.con.execute(sql, params or []).fetchall()

    def query_dicts(
        self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        with self._lock:
            cur = self.con.execute(sql, params or [])
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def arrow(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pa.Table:
        with self._lock:
            return self.con.sql(sql, params=params or None).to_arrow_table()

    def arrow_for_ids(self, ids: Sequence[str], sql: str) -> pa.Table:
        """Run `sql`, which reads the given entry ids from a table named `b_ids` (entry_id)."""
        with self._lock:
            self.con.register("b_ids", pa.table({"entry_id": pa.array(ids, pa.string())}))
            try:
                return self.con.sql(sql).to_arrow_table()
            finally:
                self.con.unregister("b_ids")

    def stream_arrow(
        self, sql: str, params: Sequence[Any] | None = None, batch_size: int = 50_000
    ) -> Iterator[pa.Table]:
        """Run `sql` once and yield its rows in tables of at most batch_size rows.

        It reads on its own cursor (a snapshot taken when it starts), so the caller can write
        through this warehouse between batches; one scan, however many batches.
        """
        cursor = self.con.cursor()
        try:
            with cursor.sql(sql, params=list(params or [])).to_arrow_reader(batch_size=batch_size) as reader:
                for batch in reader:
                    if batch.num_rows:
                        yield pa.Table.from_batches([batch])
        finally:
            cursor.close()

    @contextmanager
    def bulk_load(self, append_rows: int | None = None) -> Iterator[None]:
        """A block of many batch commits (the collect): DuckDB checkpoints only past
        BULK_CHECKPOINT_THRESHOLD of log inside it, then once at its end, so that the next stage
        does not carry the block's unwritten rows in memory. At 8x the shared data, the collect's
        single writer spent a third of its time in commits that checkpointed: 37-50 s became 28.5 s
        (docs/scaling-history.md). DuckDB works on one thread inside the block: its inserts are small and
        the map's workers need the cores (its CPU for the inserts fell 8%); the checkpoint at the
        end has every thread again. A kill inside the block loses nothing committed: DuckDB
        replays its log on open.

        Inside it, `appends` gathers the rows of sources with nothing stored yet and writes them
        `append_rows` at a time (default: DuckDB's row group; appends.py) in a writer thread of
        its own; what waits there is written when the block ends without an error, and dropped
        (never half written) when it ends with one."""
        with self._lock:
            ((threads,),) = self.con.execute("SELECT current_setting('threads')").fetchall()
            self.con.execute(f"SET checkpoint_threshold = '{BULK_CHECKPOINT_THRESHOLD}'")
            self.con.execute("SET threads = 1")
        schemas = (RAW_SCHEMA, ENTRY_ARROW_SCHEMA, QUARANTINE_SCHEMA)
        # The appends write through a connection of their own: a row group's transaction
        # (seconds) does not hold the sources' reads and small writes back (they touch other rows).
        appends_con = self.con.cursor()
        self.appends = RowGroupAppends(partial(self.write_appends, appends_con), schemas, append_rows)
        try:
            yield
            self.appends.write_all()
        finally:
            self.appends.close()
            self.appends = None
            appends_con.close()
            with self._lock, suppress(duckdb.Error):  # after a failed block, its own error is the one to see
                self.con.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
                self.con.execute(f"SET threads = {int(threads)}")
        with self._lock:  # only after a block that succeeded: on a full disk this fails too
            self.con.execute("CHECKPOINT")

    @contextmanager
    def background_upserts(
        self, pending: int = 2, *, new_rows: bool = False
    ) -> Iterator[Callable[..., None]]:
        """A function that upserts in one background thread, in order, so a stage goes on with
        its next batch while DuckDB writes (it releases the GIL). At most `pending` writes wait;
        leaving the block waits for them all, and a failed write raises here. With `new_rows`
        (for the block, or for one call: `write(table, rows, new_rows=True)`) the caller promises
        the keys are not in the table yet: a plain insert (about twice as cheap; a key already
        there fails the write). With `stored` (one call: a boolean mask of `rows`) the caller
        says which keys are there: those rows replace theirs, the others are plain inserts."""
        futures: deque[Future[None]] = deque()
        every_new = new_rows
        with ThreadPoolExecutor(1, thread_name_prefix="globmed-writer") as pool:

            def queue(table: str, rows: pa.Table, new: bool) -> None:
                while len(futures) >= pending:
                    futures.popleft().result()
                futures.append(pool.submit(self.insert if new else self.upsert, table, rows))

            def submit(
                table: str, rows: pa.Table, *, new_rows: bool = every_new, stored: pa.Array | None = None
            ) -> None:
                if stored is None:
                    queue(table, rows, new_rows)
                    return
                replaced = pc.sum(stored).as_py() or 0
                if replaced:
                    queue(table, rows.filter(stored), False)
                if replaced < rows.num_rows:
                    queue(table, rows.filter(pc.invert(stored)), True)

            try:
                yield submit
            finally:
                errors = [f.exception() for f in futures]
                for error in errors:
                    if error is not None:
                        raise error

    def upsert(self, table: str, rows: pa.Table) -> None:
        """Insert or replace rows (matched on the table's primary key) in one transaction."""
        self._insert(table, rows, "INSERT OR REPLACE")

    def insert(self, table: str, rows: pa.Table) -> None:
        """Insert new rows in one transaction (a key already in the table fails it)."""
        self._insert(table, rows, "INSERT")

    def _insert(self, table: str, rows: pa.Table, verb: str) -> None:
        names = ", ".join(rows.column_names)
        with self._lock:
            self.con.register("b_rows", rows)
            try:
                with self.transaction() as con:
                    con.execute(f"{verb} INTO {table} ({names}) SELECT {names} FROM b_rows")
            finally:
                # After the transaction: inside a failed one, unregistering would raise and hide
                # the real error.
                self.con.unregister("b_rows")

    # -- runs ---------------------------------------------------------------------
    def start_run(
        self, run_id: str, *, config_hash: str, config_path: str | None, flow_run_id: str | None = None
    ) -> list[str]:
        """Record a new run; returns the Prefect flow-run ids of the runs found killed."""
        with self.transaction() as con:
            # One process holds the file, so a run still marked running was killed.
            crashed = con.execute(
                "UPDATE runs SET status = 'crashed', "
                "error = coalesce(error, 'killed: found still running by the next run') "
                "WHERE status = 'running' RETURNING flow_run_id"
            ).fetchall()
            con.execute(
                "INSERT INTO runs (run_id, flow_run_id, config_path, config_hash, status, started_at) "
                "VALUES (?, ?, ?, ?, 'running', ?)",
                [run_id, flow_run_id, config_path, config_hash, now()],
            )
        return [r[0] for r in crashed if r[0]]

    def finish_run(self, run_id: str, status: str, counts: dict[str, Any], error: str | None = None) -> None:
        with self.transaction() as con:
            con.execute(
                "UPDATE runs SET status = ?, finished_at = ?, counts = ?, error = ? WHERE run_id = ?",
                [status, now(), json.dumps(counts, sort_keys=True), error, run_id],
            )

    def record_stage(
        self,
        run_id: str,
        stage: str,
        source: str,
        status: str,
        started_at: datetime,
        counts: dict[str, Any],
        error: str | None = None,
    ) -> None:
        finished = now()
        with self.transaction() as con:
            con.execute(
                "INSERT OR REPLACE INTO run_stages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    run_id,
                    stage,
                    source,
                    status,
                    started_at,
                    finished,
                    (finished - started_at).total_seconds(),
                    json.dumps(counts, sort_keys=True),
                    error,
                ],
            )

    # -- sources ------------------------------------------------------------------
    def source_state(self, source: str) -> dict[str, Any] | None:
        rows = self.query_dicts("SELECT * FROM source_state WHERE source = ?", [source])
        return rows[0] if rows else None

    def known_files(self, source: str) -> dict[str, tuple[str, str]]:
        """file -> (sha256, spec_hash) for files completely collected before."""
        rows = self.query("SELECT file, sha256, spec_hash FROM source_files WHERE source = ?", [source])
        return {f: (sha, spec) for f, sha, spec in rows}

    def keys_of_files(self, source: str, files: Sequence[str]) -> list[tuple[str, str, str]]:
        if not files:
            return []
        return self.query(
            "SELECT record_key, file, locator FROM raw_records "
            "WHERE source = ? AND file IN (SELECT unnest(?)) AND vanished_run_id IS NULL",
            [source, list(files)],
        )

    def has_rows(self, source: str) -> bool:
        """Whether any raw record or entry of the source is stored."""
        row = self.query(
            "SELECT EXISTS (SELECT 1 FROM raw_records WHERE source = $s) "
            "OR EXISTS (SELECT 1 FROM entries WHERE source = $s)",
            {"s": source},
        )
        return bool(row[0][0])

    def mark_files_unchanged(self, source: str, files: Sequence[str], run_id: str) -> None:
        if not files:
            return
        with self.transaction() as con:
            con.execute(
                "UPDATE raw_records SET last_seen_run_id = ? WHERE source = ? AND file IN (SELECT unnest(?))",
                [run_id, source, list(files)],
            )

    def write_batch(
        self,
        *,
        source: str,
        run_id: str,
        raws: pa.Table,
        entries: pa.Table,
        quarantined: pa.Table,
        quarantined_keys: list[str],
        done: Sequence[FileDone] = (),
        fresh: bool = False,
    ) -> dict[str, int]:
        """Write one batch of raw records (RAW_SCHEMA), entries (ENTRY_ARROW_SCHEMA) and
        quarantine rows (QUARANTINE_SCHEMA) atomically, with the files they complete (`done`).
        `fresh`: the caller knows none of the keys is stored yet (the source has no rows), so rows
        are appended, not upserted.

        Returns counts: added, updated, unchanged (entries), quarantined.
        """
        counts = {"added": 0, "updated": 0, "unchanged": 0, "quarantined": quarantined.num_rows}
        with self.transaction() as con:
            if raws.num_rows:
                self._put_raws(con, raws, run_id, fresh)
            if entries.num_rows:
                counts.update(self._put_entries(con, entries, run_id, fresh))
            if quarantined.num_rows:
                self._put_quarantine(con, quarantined, run_id)
            if quarantined_keys and not fresh:
                con.execute(
                    "UPDATE entries SET status = 'quarantined', updated_run_id = ? "
                    "WHERE source = ? AND record_key IN (SELECT unnest(?)) AND status <> 'quarantined'",
                    [run_id, source, quarantined_keys],
                )
            if done:
                self._put_files(con, run_id, [(source, f) for f in done])
        return counts

    def write_appends(
        self,
        cursor: duckdb.DuckDBPyConnection,
        run_id: str,
        raws: pa.Table,
        entries: pa.Table,
        quarantined: pa.Table,
        done: Sequence[tuple[str, FileDone]],
    ) -> None:
        """One transaction of rows whose keys are not stored yet, of any sources (`appends`):
        inserts only, with the files (source, FileDone) their rows complete. On `cursor` (a
        connection of this warehouse's, the appends' own), without the warehouse's lock."""
        with _transaction(cursor) as con:
            if raws.num_rows:
                self._put_raws(con, raws, run_id, fresh=True)
            if entries.num_rows:
                self._put_entries(con, entries, run_id, fresh=True)
            if quarantined.num_rows:
                self._put_quarantine(con, quarantined, run_id)
            if done:
                self._put_files(con, run_id, done)

    @staticmethod
    def _put_quarantine(con: duckdb.DuckDBPyConnection, quarantined: pa.Table, run_id: str) -> None:
        con.register("b_q", quarantined)
        con.execute(
            """INSERT INTO quarantine
               SELECT source, file, locator, record_key, reason, detail, payload, payload_bytes,
                      $run, $ts FROM b_q
               ON CONFLICT (source, file, locator) DO UPDATE SET
                 record_key = excluded.record_key, reason = excluded.reason,
                 detail = excluded.detail, payload = excluded.payload,
                 payload_bytes = excluded.payload_bytes, run_id = excluded.run_id,
                 created_at = excluded.created_at""",
            {"run": run_id, "ts": now()},
        )
        con.unregister("b_q")

    @staticmethod
    def _put_files(con: duckdb.DuckDBPyConnection, run_id: str, done: Sequence[tuple[str, FileDone]]) -> None:
        """Files completely collected: one statement for all of them (a statement per file was
        10% of the writer's time at 500k entries, most of them small files)."""
        con.register("b_files", _files_table(run_id, done))
        con.execute("INSERT OR REPLACE INTO source_files SELECT * FROM b_files")
        # Quarantine rows from an earlier version of these files that no longer apply.
        con.execute(
            "DELETE FROM quarantine USING b_files f WHERE quarantine.source = f.source "
            "AND quarantine.file = f.file AND quarantine.run_id <> f.run_id"
        )
        con.unregister("b_files")

    @staticmethod
    def _put_raws(con: duckdb.DuckDBPyConnection, raws: pa.Table, run_id: str, fresh: bool) -> None:
        con.register("b_raw", raws)
        select = (
            "SELECT source, record_key, file, locator, raw_hash, payload, $run, $run, $run, NULL FROM b_raw"
        )
        if fresh:
            con.execute(f"INSERT INTO raw_records {select}", {"run": run_id})
        else:
            con.execute(
                f"""INSERT INTO raw_records {select}
                    ON CONFLICT (source, record_key) DO UPDATE SET
                      file = excluded.file, locator = excluded.locator,
                      updated_run_id = CASE WHEN raw_hash <> excluded.raw_hash
                                       THEN excluded.updated_run_id ELSE updated_run_id END,
                      raw_hash = excluded.raw_hash, payload = excluded.payload,
                      last_seen_run_id = excluded.last_seen_run_id, vanished_run_id = NULL""",
                {"run": run_id},
            )
        con.unregister("b_raw")

    @staticmethod
    def _put_entries(
        con: duckdb.DuckDBPyConnection, entries: pa.Table, run_id: str, fresh: bool
    ) -> dict[str, int]:
        con.register("b_ent", entries)
        cols = ", ".join(ENTRY_COLUMNS)
        select = f"SELECT {cols}, 'active', $run, $run FROM b_ent"
        if fresh:
            con.execute(f"INSERT INTO entries ({cols}, status, created_run_id, updated_run_id) {select}",
                        {"run": run_id})  # fmt: skip
            con.unregister("b_ent")
            return {"added": entries.num_rows}
        row = con.execute(
            """SELECT count(*) FILTER (WHERE e.entry_id IS NULL),
                      count(*) FILTER (WHERE e.content_hash = b.content_hash AND e.status = 'active'),
                      count(*) FILTER (WHERE e.entry_id IS NOT NULL
                                         AND NOT (e.content_hash = b.content_hash AND e.status = 'active'))
               FROM b_ent b LEFT JOIN entries e ON e.entry_id = b.entry_id"""
        ).fetchone()
        assert row is not None
        updates = ", ".join(f"{c} = excluded.{c}" for c in ENTRY_COLUMNS[1:])
        con.execute(
            f"""INSERT INTO entries ({cols}, status, created_run_id, updated_run_id) {select}
                ON CONFLICT (entry_id) DO UPDATE SET
                  updated_run_id = CASE WHEN content_hash <> excluded.content_hash
                                          OR status <> 'active'
                                   THEN excluded.updated_run_id ELSE updated_run_id END,
                  {updates}, status = 'active'""",
            {"run": run_id},
        )
        con.unregister("b_ent")
        return {"added": row[0], "unchanged": row[1], "updated": row[2]}

    def finish_source(
        self,
        *,
        source: str,
        kind: str,
        run_id: str,
        spec_hash: str,
        fingerprint: str,
        revision: str | None,
        files: Sequence[str],
        fresh: bool = False,
    ) -> int:
        """After a complete read: forget removed files, mark unseen records vanished.
        `fresh`: the source had no rows before this run (write_batch's `fresh`), so every record
        stored was seen by it and nothing can have vanished.

        Returns the number of entries newly marked vanished.
        """
        with self.transaction() as con:
            con.execute(
                "DELETE FROM quarantine WHERE source = ? AND file NOT IN (SELECT unnest(?))",
                [source, list(files)],
            )
            con.execute(
                "DELETE FROM source_files WHERE source = ? AND file NOT IN (SELECT unnest(?))",
                [source, list(files)],
            )
            vanished = 0 if fresh else self._mark_vanished(con, source, run_id)
            self._put_source_state(
                con, source, kind, spec_hash, fingerprint, revision, "complete", run_id, None
            )
        return vanished

    @staticmethod
    def _mark_vanished(con: duckdb.DuckDBPyConnection, source: str, run_id: str) -> int:
        """Records this run did not see, and their entries, marked vanished: how many entries."""
        con.execute(
            "UPDATE raw_records SET vanished_run_id = ? "
            "WHERE source = ? AND last_seen_run_id <> ? AND vanished_run_id IS NULL",
            [run_id, source, run_id],
        )
        row = con.execute(
            """UPDATE entries SET status = 'vanished', updated_run_id = $run
               WHERE source = $src AND status <> 'vanished' AND record_key IN (
                 SELECT record_key FROM raw_records
                 WHERE source = $src AND vanished_run_id IS NOT NULL)""",
            {"run": run_id, "src": source},
        ).fetchone()
        return int(row[0]) if row else 0

    def fail_source(self, *, source: str, kind: str, run_id: str, spec_hash: str, error: str) -> None:
        with self.transaction() as con:
            prior = con.execute(
                "SELECT fingerprint, revision FROM source_state WHERE source = ?", [source]
            ).fetchone()
            # An empty fingerprint can never match, so the next run retries the source.
            self._put_source_state(
                con, source, kind, spec_hash, "", prior[1] if prior else None, "failed", run_id, error
            )

    @staticmethod
    def _put_source_state(
        con: duckdb.DuckDBPyConnection,
        source: str,
        kind: str,
        spec_hash: str,
        fingerprint: str,
        revision: str | None,
        status: str,
        run_id: str,
        error: str | None,
    ) -> None:
        con.execute(
            "INSERT OR REPLACE INTO source_state VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [source, kind, spec_hash, fingerprint, revision, status, run_id, now(), error],
        )
