-- Slowest steps of a pipeline: median and 95th percentile duration per step, executed (not cached) runs only.
-- ZenML: no single call; step.duration over run.steps for every run, in Python
SELECT step_name,
       count(*) AS executions,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_s) AS p50_s,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_s) AS p95_s,
       max(duration_s) AS max_s
FROM steps
WHERE pipeline_name = $pipeline AND NOT is_cached AND duration_s IS NOT NULL
GROUP BY step_name
ORDER BY p95_s DESC, step_name;
