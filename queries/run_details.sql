-- A run's status, git sha and configuration.
-- ZenML: run.status, run.git_sha, run.pipeline_configuration
SELECT run_name, status, status_reason, git_sha, tags, parameters, config
FROM runs
WHERE run_name = $run;
