CREATE OR REPLACE VIEW v_contamination AS
SELECT c.entry_id, e.source, e.language, e.split, c.test_item, c.test_source, c.method, c.similarity
FROM contamination c JOIN entries e USING (entry_id);
