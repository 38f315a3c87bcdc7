-- Pass rates per source, language and task.
CREATE OR REPLACE VIEW v_quality_pass_rates AS
SELECT source, language, task, count(*) AS entries, count(*) FILTER (WHERE passed) AS passed,
       round(count(*) FILTER (WHERE passed) / count(*), 4) AS pass_rate
FROM v_quality GROUP BY ALL;
