-- One step of a run by its name in the pipeline.
-- ZenML: get_pipeline($pipeline).runs[-1].get_step(step=$step)
SELECT s.step_id, s.step_name, s.entrypoint, s.status, s.parameters, s.start_time, s.end_time
FROM steps s
JOIN runs r ON r.run_id = s.run_id
WHERE r.pipeline_name = $pipeline AND r.run_rindex = -1 AND s.step_name = $step;
