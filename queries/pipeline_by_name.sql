-- One pipeline by name.
-- ZenML: get_pipeline($pipeline)
SELECT pipeline_id, pipeline_name, created, run_count, first_run_start
FROM pipelines
WHERE pipeline_name = $pipeline;
