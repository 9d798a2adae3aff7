-- Cache hit rate per pipeline: the share of step runs ZenML served from its cache.
-- ZenML: no single call; step.status == "cached" over every run's steps, in Python
SELECT pipeline_name,
       count(*) AS step_runs,
       sum(CASE WHEN is_cached THEN 1 ELSE 0 END) AS cached,
       round(sum(CASE WHEN is_cached THEN 1 ELSE 0 END) * 1.0 / count(*), 4) AS cache_hit_rate
FROM steps
GROUP BY pipeline_name
ORDER BY pipeline_name;
