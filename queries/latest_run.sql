-- A pipeline's latest run.
-- ZenML: get_pipeline($pipeline).runs[-1]
SELECT run_id, run_name, status, start_time, end_time, duration_s
FROM runs
WHERE pipeline_name = $pipeline AND run_rindex = -1;
