-- The value of the last step's output of a pipeline's latest run, read from the artifact store.
-- ZenML: get_pipeline(pipeline).runs[-1].steps[-1].output.read()
SELECT r.run_name, s.step_name, o.output_name, o.data_type, output_value(o.output_id) AS value
FROM runs r
JOIN steps s ON s.run_id = r.run_id
JOIN outputs o ON o.step_id = s.step_id
WHERE r.pipeline_name = $pipeline AND r.run_rindex = -1 AND s.step_rindex = -1;
