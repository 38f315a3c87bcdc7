-- Dedup's links and members lose their primary keys; the stage's write keeps each row unique
-- (globmed_data/dedup/stage.py): every link a run adds has an end among the entries it links
-- again, whose stored links it deletes first, and the members are deleted and written whole,
-- one row per entry, by every run. The keys' indexes were most of that write: at 8x the shared
-- data (934,195 links, 495,800 members) it took 4.4-5.1 s with them and 1.0 s without
-- (docs/scaling.md). The rows are copied as they are.
CREATE TABLE dedup_edges_unkeyed (
    a           VARCHAR NOT NULL,
    b           VARCHAR NOT NULL,   -- a < b; one row per pair
    method      VARCHAR NOT NULL,   -- exact | near
    similarity  DOUBLE NOT NULL,    -- estimated Jaccard (1.0 for exact)
    run_id      VARCHAR NOT NULL
);
INSERT INTO dedup_edges_unkeyed SELECT * FROM dedup_edges;
DROP TABLE dedup_edges;
ALTER TABLE dedup_edges_unkeyed RENAME TO dedup_edges;

CREATE TABLE dedup_members_unkeyed (
    entry_id       VARCHAR NOT NULL,   -- one row per entry
    cluster_id     VARCHAR NOT NULL,   -- the smallest entry id of the cluster
    cluster_size   INTEGER NOT NULL,
    decision       VARCHAR NOT NULL,   -- kept | duplicate | contaminated
    kept_entry_id  VARCHAR,            -- the cluster's kept entry (NULL when none is kept)
    method         VARCHAR NOT NULL,   -- exact | near: how it matches the kept entry
    similarity     DOUBLE NOT NULL,    -- estimated Jaccard with the kept entry
    run_id         VARCHAR NOT NULL
);
INSERT INTO dedup_members_unkeyed SELECT * FROM dedup_members;
DROP TABLE dedup_members;
ALTER TABLE dedup_members_unkeyed RENAME TO dedup_members;
