-- One row per (entry, rule hit): kind = reject | flag.
CREATE OR REPLACE VIEW v_quality_hits AS
SELECT entry_id, source, language, task, 'reject' AS kind, unnest(reasons) AS reason FROM v_quality
UNION ALL
SELECT entry_id, source, language, task, 'flag' AS kind, unnest(flags) AS reason FROM v_quality;
