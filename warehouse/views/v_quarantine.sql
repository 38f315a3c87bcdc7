CREATE OR REPLACE VIEW v_quarantine AS
SELECT source, file, locator, record_key, reason, detail, payload, payload_bytes, run_id, created_at
FROM quarantine;
