-- A run's steps in order of execution.
-- ZenML: get_pipeline($pipeline).runs[-1].steps
SELECT s.step_index, s.step_name, s.entrypoint, s.status, s.is_cached, s.duration_s, s.step_id
FROM steps s
JOIN runs r ON r.run_id = s.run_id
WHERE r.pipeline_name = $pipeline AND r.run_rindex = -1
ORDER BY s.step_index;
