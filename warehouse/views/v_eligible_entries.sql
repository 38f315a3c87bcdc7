-- Active entries that language ID did not reject and that passed quality, judged by the decisions
-- for their current content (where the stage ran). The one definition of "eligible": dedup
-- links these, translation chooses its parents among them, the curated view starts from them.
CREATE OR REPLACE VIEW v_eligible_entries AS
SELECT e.*,
       coalesce(l.language, e.language) AS curated_language,
       l.decision AS langid_decision,
       l.settings_hash AS langid_settings_hash,
       l.decided_at AS langid_decided_at,
       q.settings_hash AS quality_settings_hash,
       q.decided_at AS quality_decided_at
FROM entries e
LEFT JOIN langid_results l ON l.entry_id = e.entry_id AND l.content_hash = e.content_hash
LEFT JOIN quality_results q ON q.entry_id = e.entry_id AND q.content_hash = e.content_hash
WHERE e.status = 'active'
  AND coalesce(q.passed, TRUE)
  AND coalesce(l.decision, '') <> 'reject';
