CREATE OR REPLACE VIEW v_entries AS
SELECT entry_id, source, record_key, task, language, split, question, context, options,
       answer_indices, label, premise, hypothesis, answer, rationale, origin, parent_entry_id,
       license, metadata, content_hash, status, created_run_id, updated_run_id
FROM entries;
