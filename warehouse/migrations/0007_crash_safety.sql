-- Crash safety and fail-closed curation (docs/crash-safety.md).

-- The LSH index an entry's candidate search ran under, set in the transaction that stores its
-- links. NULL: signed, links not searched yet (the next dedup run searches them).
ALTER TABLE dedup_signatures ADD COLUMN linked_index VARCHAR;
-- The index hash that dedup kept in dedup_state is replaced by linked_index above.
DELETE FROM dedup_state WHERE key = 'index';

-- The stages the last run or export configured, with the settings their decisions must have
-- been made under. The curated view requires a current decision from every enabled stage.
CREATE TABLE stage_state (
    stage          VARCHAR PRIMARY KEY,   -- langid | quality | translate | dedup
    enabled        BOOLEAN NOT NULL,
    settings_hash  VARCHAR NOT NULL,      -- langid/quality: their settings_hash; dedup: the LSH index
    updated_at     TIMESTAMPTZ NOT NULL
);

-- The published event's id once it was sent (NULL: not sent yet; the next export sends it).
ALTER TABLE dataset_versions ADD COLUMN event_id VARCHAR;
-- Versions published before this migration sent theirs then.
UPDATE dataset_versions SET event_id = 'sent before migration 0007' WHERE status = 'published';

-- Fail closed: an entry is curated only when every enabled stage decided it for its current
-- content and settings. An entry a killed run left undecided is left out, never let through.
CREATE OR REPLACE VIEW v_curated_entries AS
WITH required AS (
    SELECT max(settings_hash) FILTER (WHERE stage = 'langid' AND enabled) AS langid,
           max(settings_hash) FILTER (WHERE stage = 'quality' AND enabled) AS quality,
           max(settings_hash) FILTER (WHERE stage = 'dedup' AND enabled) AS dedup
    FROM stage_state
)
SELECT e.*, coalesce(l.language, e.language) AS curated_language
FROM entries e
CROSS JOIN required r
LEFT JOIN langid_results l ON l.entry_id = e.entry_id AND l.content_hash = e.content_hash
LEFT JOIN quality_results q ON q.entry_id = e.entry_id AND q.content_hash = e.content_hash
LEFT JOIN dedup_members m ON m.entry_id = e.entry_id
LEFT JOIN dedup_signatures s ON s.entry_id = e.entry_id AND s.content_hash = e.content_hash
WHERE e.status = 'active'
  AND coalesce(q.passed, TRUE)
  AND coalesce(l.decision, '') <> 'reject'
  AND coalesce(m.decision, 'kept') = 'kept'
  AND (r.langid IS NULL OR l.settings_hash = r.langid)
  AND (r.quality IS NULL OR (q.settings_hash = r.quality AND (l.decided_at IS NULL OR l.decided_at <= q.decided_at)))
  AND (r.dedup IS NULL OR s.linked_index = r.dedup);
