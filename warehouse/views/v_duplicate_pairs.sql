-- Excluded duplicates per (source of the excluded entry, source of the kept one, language).
CREATE OR REPLACE VIEW v_duplicate_pairs AS
SELECT d.source, k.source AS kept_source, d.language, d.method, count(*) AS duplicates
FROM v_dedup d JOIN entries k ON k.entry_id = d.kept_entry_id
WHERE d.decision = 'duplicate'
GROUP BY ALL;
