-- Exact and near-duplicate removal and decontamination (docs/dedup.md).

-- One MinHash signature per participating entry, kept across runs (incremental dedup).
CREATE TABLE dedup_signatures (
    entry_id       VARCHAR PRIMARY KEY,
    content_hash   VARCHAR NOT NULL,
    settings_hash  VARCHAR NOT NULL,   -- signature version, num_perm, shingle sizes
    exact_key      UBIGINT NOT NULL,   -- hash of task + normalised text + option set
    item_key       UBIGINT NOT NULL,   -- hash of the answer (option texts or label): near links need it equal
    numbers        VARCHAR NOT NULL,   -- the question's numbers, sorted: near links need one inside the other
    signature      UINTEGER[] NOT NULL,
    run_id         VARCHAR NOT NULL
);

-- Verified duplicate links between two entries (a < b); clusters are their connected components.
CREATE TABLE dedup_edges (
    a           VARCHAR NOT NULL,
    b           VARCHAR NOT NULL,
    method      VARCHAR NOT NULL,   -- exact | near
    similarity  DOUBLE NOT NULL,    -- estimated Jaccard (1.0 for exact)
    run_id      VARCHAR NOT NULL,
    PRIMARY KEY (a, b)
);

-- Rewritten by every dedup run: one row per entry that belongs to a cluster of 2+.
CREATE TABLE dedup_members (
    entry_id       VARCHAR PRIMARY KEY,
    cluster_id     VARCHAR NOT NULL,   -- the smallest entry id of the cluster
    cluster_size   INTEGER NOT NULL,
    decision       VARCHAR NOT NULL,   -- kept | duplicate | contaminated
    kept_entry_id  VARCHAR,            -- the cluster's kept entry (NULL when none is kept)
    method         VARCHAR NOT NULL,   -- exact | near: how it matches the kept entry
    similarity     DOUBLE NOT NULL,    -- estimated Jaccard with the kept entry
    run_id         VARCHAR NOT NULL
);

-- Train entries that duplicate a test item (of any source, or of an external benchmark).
CREATE TABLE contamination (
    entry_id       VARCHAR PRIMARY KEY,
    test_item      VARCHAR NOT NULL,   -- entry id, or benchmark:NAME:KEY
    test_source    VARCHAR NOT NULL,
    method         VARCHAR NOT NULL,
    similarity     DOUBLE NOT NULL,
    run_id         VARCHAR NOT NULL
);

-- State of the LSH index: when its parameters change, every link is recomputed.
CREATE TABLE dedup_state (
    key    VARCHAR PRIMARY KEY,
    value  VARCHAR NOT NULL
);

CREATE VIEW v_dedup AS
SELECT m.entry_id, e.source, e.language, e.task, e.split, e.origin, m.cluster_id, m.cluster_size,
       m.decision, m.kept_entry_id, m.method, m.similarity, m.run_id
FROM dedup_members m JOIN entries e USING (entry_id);

CREATE VIEW v_contamination AS
SELECT c.entry_id, e.source, e.language, e.split, c.test_item, c.test_source, c.method, c.similarity
FROM contamination c JOIN entries e USING (entry_id);

-- Excluded duplicates per (source of the excluded entry, source of the kept one, language).
CREATE VIEW v_duplicate_pairs AS
SELECT d.source, k.source AS kept_source, d.language, d.method, count(*) AS duplicates
FROM v_dedup d JOIN entries k ON k.entry_id = d.kept_entry_id
WHERE d.decision = 'duplicate'
GROUP BY ALL;

-- The curated view: active entries that passed quality (where it ran), were not rejected by
-- language ID, and are not excluded as duplicates or as contaminated.
CREATE VIEW v_curated_entries AS
SELECT e.*, coalesce(l.language, e.language) AS curated_language
FROM entries e
LEFT JOIN langid_results l ON l.entry_id = e.entry_id AND l.content_hash = e.content_hash
LEFT JOIN quality_results q ON q.entry_id = e.entry_id AND q.content_hash = e.content_hash
LEFT JOIN dedup_members m ON m.entry_id = e.entry_id
WHERE e.status = 'active'
  AND coalesce(q.passed, TRUE)
  AND coalesce(l.decision, '') <> 'reject'
  AND coalesce(m.decision, 'kept') = 'kept';
