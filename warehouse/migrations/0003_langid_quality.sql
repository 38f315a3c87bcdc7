-- Language identification and quality decisions, one row per entry, redone when the entry's
-- content or the stage's settings change (settings_hash).

CREATE TABLE langid_results (
    entry_id             VARCHAR PRIMARY KEY,
    content_hash         VARCHAR NOT NULL,   -- the entry content this decision is about
    settings_hash        VARCHAR NOT NULL,   -- model, detectors, thresholds and policy
    declared_language    VARCHAR NOT NULL,
    detected_language    VARCHAR,            -- NULL: too short / nothing to go on
    confidence           DOUBLE NOT NULL,
    detector             VARCHAR NOT NULL,   -- e.g. fasttext:lid.176, fasttext:lid.176+langdetect+py3langid, script
    runner_up            VARCHAR,
    runner_up_confidence DOUBLE,
    script               VARCHAR,            -- dominant script of the text
    letters              INTEGER NOT NULL,   -- letters the detectors saw
    agrees               BOOLEAN,            -- NULL: cannot tell
    decision             VARCHAR NOT NULL,   -- agree | unsure | unsupported | too_short | flag | relabel | reject
    language             VARCHAR NOT NULL,   -- the entry's language after the decision
    run_id               VARCHAR NOT NULL,
    decided_at           TIMESTAMPTZ NOT NULL
);

CREATE TABLE quality_results (
    entry_id       VARCHAR PRIMARY KEY,
    content_hash   VARCHAR NOT NULL,
    settings_hash  VARCHAR NOT NULL,   -- rules version, thresholds and actions
    passed         BOOLEAN NOT NULL,
    score          DOUBLE NOT NULL,    -- product of (1 - weight) over hits: 0.5 per reason, 0.1 per flag
    reasons        VARCHAR[] NOT NULL, -- rejecting rule codes
    flags          VARCHAR[] NOT NULL, -- non-rejecting rule codes
    metrics        JSON,               -- the measurements the rules compared with thresholds
    run_id         VARCHAR NOT NULL,
    decided_at     TIMESTAMPTZ NOT NULL
);

CREATE VIEW v_langid AS
SELECT e.entry_id, e.source, e.task, e.split, e.origin, l.declared_language, l.detected_language,
       l.confidence, l.detector, l.runner_up, l.runner_up_confidence, l.script, l.agrees, l.decision,
       l.language, l.run_id, l.decided_at
FROM entries e JOIN langid_results l USING (entry_id)
WHERE e.status = 'active' AND l.content_hash = e.content_hash;

CREATE VIEW v_quality AS
SELECT e.entry_id, e.source, coalesce(l.language, e.language) AS language, e.task, e.split, e.origin,
       q.passed, q.score, q.reasons, q.flags, q.metrics, q.run_id, q.decided_at
FROM entries e
JOIN quality_results q USING (entry_id)
LEFT JOIN langid_results l ON l.entry_id = e.entry_id AND l.content_hash = e.content_hash
WHERE e.status = 'active' AND q.content_hash = e.content_hash;

-- Pass rates per source, language and task.
CREATE VIEW v_quality_pass_rates AS
SELECT source, language, task, count(*) AS entries, count(*) FILTER (WHERE passed) AS passed,
       round(count(*) FILTER (WHERE passed) / count(*), 4) AS pass_rate
FROM v_quality GROUP BY ALL;

-- One row per (entry, rule hit): kind = reject | flag.
CREATE VIEW v_quality_hits AS
SELECT entry_id, source, language, task, 'reject' AS kind, unnest(reasons) AS reason FROM v_quality
UNION ALL
SELECT entry_id, source, language, task, 'flag' AS kind, unnest(flags) AS reason FROM v_quality;
