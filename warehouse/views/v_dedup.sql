CREATE OR REPLACE VIEW v_dedup AS
SELECT m.entry_id, e.source, e.language, e.task, e.split, e.origin, m.cluster_id, m.cluster_size,
       m.decision, m.kept_entry_id, m.method, m.similarity, m.run_id
FROM dedup_members m JOIN entries e USING (entry_id);
