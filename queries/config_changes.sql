-- Runs whose parameters differ from the previous run of the same pipeline.
-- ZenML: no single call; run.config.parameters compared run by run, in Python
SELECT pipeline_name, run_index, run_name, previous_parameters, parameters
FROM (
    SELECT pipeline_name, run_index, run_name, parameters,
           lag(parameters) OVER (PARTITION BY pipeline_id ORDER BY run_index) AS previous_parameters
    FROM runs
) AS r
WHERE previous_parameters IS NOT NULL AND previous_parameters <> parameters
ORDER BY pipeline_name, run_index;
