CREATE OR REPLACE VIEW v_entry_counts AS
SELECT source, language, task, split, origin, count(*) AS entries
FROM entries WHERE status = 'active'
GROUP BY ALL;
