-- The output of the last step of a pipeline's latest run (the post-execution docs' closing example).
-- ZenML: get_pipeline($pipeline).runs[-1].steps[-1].output
SELECT r.run_name, s.step_name, o.output_name, o.artifact_name, o.data_type, o.uri, o.output_id
FROM runs r
JOIN steps s ON s.run_id = r.run_id
JOIN outputs o ON o.step_id = s.step_id
WHERE r.pipeline_name = $pipeline AND r.run_rindex = -1 AND s.step_rindex = -1;
