-- A step's outputs by name.
-- ZenML: get_pipeline($pipeline).runs[-1].get_step(step=$step).outputs
SELECT o.output_name, o.artifact_name, o.artifact_version, o.data_type, o.uri, o.output_id
FROM outputs o
JOIN steps s ON s.step_id = o.step_id
JOIN runs r ON r.run_id = s.run_id
WHERE r.pipeline_name = $pipeline AND r.run_rindex = -1 AND s.step_name = $step
ORDER BY o.output_name;
