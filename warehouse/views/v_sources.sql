CREATE OR REPLACE VIEW v_sources AS
SELECT s.source, s.kind, s.status, s.revision, s.last_run_id, s.updated_at, s.error,
       (SELECT count(*) FROM source_files f WHERE f.source = s.source) AS files,
       (SELECT count(*) FROM entries e WHERE e.source = s.source AND e.status = 'active') AS active_entries,
       (SELECT count(*) FROM quarantine q WHERE q.source = s.source) AS quarantined
FROM source_state s;
