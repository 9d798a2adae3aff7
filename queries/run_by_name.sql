-- One run by its name.
-- ZenML: get_run($run)
SELECT run_id, run_name, pipeline_name, status, start_time, end_time
FROM runs
WHERE run_name = $run;
