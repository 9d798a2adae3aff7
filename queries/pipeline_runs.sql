-- A pipeline's runs, oldest first (runs[0] is the first run).
-- ZenML: get_pipeline($pipeline).runs
SELECT run_index, run_rindex, run_name, status, start_time, duration_s, run_id
FROM runs
WHERE pipeline_name = $pipeline
ORDER BY run_index;
