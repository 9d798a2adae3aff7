-- Failure rate per pipeline for runs started in a time window [$since, $until).
-- ZenML: no single call; Client().list_pipeline_runs(...) filtered and counted in Python
SELECT pipeline_name,
       count(*) AS runs,
       sum(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed,
       round(sum(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) * 1.0 / count(*), 4) AS failure_rate
FROM runs
WHERE start_time >= $since AND start_time < $until
GROUP BY pipeline_name
ORDER BY failure_rate DESC, pipeline_name;
