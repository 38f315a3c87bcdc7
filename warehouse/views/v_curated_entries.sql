-- The curated dataset: eligible entries that dedup did not exclude as duplicates or as
-- contaminated. Fail closed: every stage enabled in stage_state must have decided the entry for
-- its current content under the recorded settings; an entry a killed run left undecided is left
-- out, never let through.
CREATE OR REPLACE VIEW v_curated_entries AS
WITH required AS (
    SELECT max(settings_hash) FILTER (WHERE stage = 'langid' AND enabled) AS langid,
           max(settings_hash) FILTER (WHERE stage = 'quality' AND enabled) AS quality,
           max(settings_hash) FILTER (WHERE stage = 'dedup' AND enabled) AS dedup
    FROM stage_state
)
SELECT e.* EXCLUDE (langid_decision, langid_settings_hash, langid_decided_at, quality_settings_hash,
                    quality_decided_at)
FROM v_eligible_entries e
CROSS JOIN required r
LEFT JOIN dedup_members m ON m.entry_id = e.entry_id
LEFT JOIN dedup_signatures s ON s.entry_id = e.entry_id AND s.content_hash = e.content_hash
WHERE coalesce(m.decision, 'kept') = 'kept'
  AND (r.langid IS NULL OR e.langid_settings_hash = r.langid)
  AND (r.quality IS NULL OR (e.quality_settings_hash = r.quality
                             AND (e.langid_decided_at IS NULL OR e.langid_decided_at <= e.quality_decided_at)))
  AND (r.dedup IS NULL OR s.linked_index = r.dedup);
