-- The lineage of an output: every upstream step and artifact that led to it.
-- ZenML: artifact.producer_step_run, then step.inputs, recursively, in Python
WITH RECURSIVE upstream(output_id, depth) AS (
    SELECT output_id, 0 FROM outputs WHERE output_id = $output_id
    UNION
    SELECT i.output_id, u.depth + 1
    FROM upstream u
    JOIN outputs o ON o.output_id = u.output_id
    JOIN steps s ON s.step_id = o.step_id AND NOT s.is_cached
    JOIN inputs i ON i.step_id = s.step_id
)
SELECT u.depth, s.step_name AS produced_by, o.output_name, o.artifact_name, o.artifact_version, o.output_id
FROM (SELECT output_id, min(depth) AS depth FROM upstream GROUP BY output_id) u
JOIN outputs o ON o.output_id = u.output_id
JOIN steps s ON s.step_id = o.step_id AND NOT s.is_cached
ORDER BY u.depth, s.step_name, o.output_name;
