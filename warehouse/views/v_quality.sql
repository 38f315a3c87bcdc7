CREATE OR REPLACE VIEW v_quality AS
SELECT e.entry_id, e.source, coalesce(l.language, e.language) AS language, e.task, e.split, e.origin,
       q.passed, q.score, q.reasons, q.flags, q.metrics, q.run_id, q.decided_at
FROM entries e
JOIN quality_results q USING (entry_id)
LEFT JOIN langid_results l ON l.entry_id = e.entry_id AND l.content_hash = e.content_hash
WHERE e.status = 'active' AND q.content_hash = e.content_hash;
