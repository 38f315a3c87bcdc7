CREATE OR REPLACE VIEW v_dataset_versions AS
SELECT repo_id, version, status, bump, parent_version, fingerprint, schema_version,
       CAST(counts->>'entries' AS BIGINT) AS entries,
       CAST(changes->>'added' AS BIGINT) AS added,
       CAST(changes->>'removed' AS BIGINT) AS removed,
       CAST(changes->>'changed' AS BIGINT) AS changed,
       created_at, published_at, error
FROM dataset_versions;
