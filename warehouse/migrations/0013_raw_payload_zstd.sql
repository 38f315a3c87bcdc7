-- Raw payloads, most of the file and read only for lineage, are compressed with zstd. DuckDB's
-- default for text (dictionary + FSST) spent two thirds of the collect's closing checkpoint
-- on them: at 8x the shared data the checkpoint fell from 3.0 s (5.4 CPU-s) to 2.4 s (4.2), and
-- the file from 368 to 305 MB (docs/scaling.md). A column's compression is fixed when its table
-- is made, so the table is made again; its rows are copied as they are.
CREATE TABLE raw_records_zstd (
    source          VARCHAR NOT NULL,
    record_key      VARCHAR NOT NULL,
    file            VARCHAR NOT NULL,
    locator         VARCHAR NOT NULL,
    raw_hash        VARCHAR NOT NULL,
    payload         VARCHAR USING COMPRESSION zstd NOT NULL,  -- the record as read (JSON text)
    first_run_id    VARCHAR NOT NULL,
    updated_run_id  VARCHAR NOT NULL,
    last_seen_run_id VARCHAR NOT NULL,
    vanished_run_id VARCHAR,            -- set when a later full read no longer finds it
    PRIMARY KEY (source, record_key)
);
INSERT INTO raw_records_zstd SELECT * FROM raw_records;
DROP TABLE raw_records;
ALTER TABLE raw_records_zstd RENAME TO raw_records;
