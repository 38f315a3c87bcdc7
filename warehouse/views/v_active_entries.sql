CREATE OR REPLACE VIEW v_active_entries AS
SELECT * FROM v_entries WHERE status = 'active';
