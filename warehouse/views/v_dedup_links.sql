-- Every verified duplicate link, with how it was found: the pairs behind the clusters.
CREATE OR REPLACE VIEW v_dedup_links AS
SELECT l.a, l.b, ea.source AS source_a, eb.source AS source_b, ea.language AS language_a,
       eb.language AS language_b, ea.task, l.method, l.similarity, l.run_id
FROM dedup_edges l JOIN entries ea ON ea.entry_id = l.a JOIN entries eb ON eb.entry_id = l.b;
