CREATE OR REPLACE VIEW v_translations AS
SELECT t.parent_entry_id, p.source AS parent_source, p.language AS source_language, t.target_language,
       p.task, t.job, t.status, t.reasons, t.backend, t.model, t.prompt_version, t.entry_id, t.review,
       t.translated_at
FROM translations t JOIN entries p ON p.entry_id = t.parent_entry_id;
