CREATE OR REPLACE VIEW v_langid AS
SELECT e.entry_id, e.source, e.task, e.split, e.origin, l.declared_language, l.detected_language,
       l.confidence, l.detector, l.runner_up, l.runner_up_confidence, l.script, l.agrees, l.decision,
       l.language, l.run_id, l.decided_at
FROM entries e JOIN langid_results l USING (entry_id)
WHERE e.status = 'active' AND l.content_hash = e.content_hash;
