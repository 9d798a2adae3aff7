-- The latest output of each named step of a pipeline (from its latest run that ran the step).
-- ZenML: pipeline.runs[-1].steps[name].outputs for each step, in Python
SELECT step_name, output_name, artifact_name, artifact_version, data_type, uri, run_name, output_id
FROM (
    SELECT o.*, row_number() OVER (PARTITION BY o.step_name, o.output_name ORDER BY r.run_index DESC) AS newest
    FROM outputs o
    JOIN runs r ON r.run_id = o.run_id
    WHERE r.pipeline_name = $pipeline
) AS latest
WHERE newest = 1
ORDER BY step_name, output_name;
