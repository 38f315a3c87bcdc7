-- Public views: the stable interface for analysts and downstream flows (see warehouse/README.md).

CREATE OR REPLACE VIEW v_entries AS
SELECT entry_id, source, record_key, task, language, split, question, context, options,
       answer_indices, label, premise, hypothesis, answer, rationale, origin, parent_entry_id,
       license, metadata, content_hash, status, created_run_id, updated_run_id
FROM entries;

CREATE OR REPLACE VIEW v_active_entries AS
SELECT * FROM v_entries WHERE status = 'active';

CREATE OR REPLACE VIEW v_quarantine AS
SELECT source, file, locator, record_key, reason, detail, payload, payload_bytes, run_id, created_at
FROM quarantine;

CREATE OR REPLACE VIEW v_entry_counts AS
SELECT source, language, task, split, origin, count(*) AS entries
FROM entries WHERE status = 'active'
GROUP BY ALL;

CREATE OR REPLACE VIEW v_sources AS
SELECT s.source, s.kind, s.status, s.revision, s.last_run_id, s.updated_at, s.error,
       (SELECT count(*) FROM source_files f WHERE f.source = s.source) AS files,
       (SELECT count(*) FROM entries e WHERE e.source = s.source AND e.status = 'active') AS active_entries,
       (SELECT count(*) FROM quarantine q WHERE q.source = s.source) AS quarantined
FROM source_state s;

CREATE OR REPLACE VIEW v_runs AS
SELECT run_id, flow_run_id, config_path, config_hash, status, started_at, finished_at,
       date_diff('millisecond', started_at, finished_at) / 1000.0 AS seconds, counts, error
FROM runs;

CREATE OR REPLACE VIEW v_run_stages AS
SELECT run_id, stage, source, status, started_at, finished_at, seconds, counts, error
FROM run_stages;
