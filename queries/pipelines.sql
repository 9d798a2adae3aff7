-- All pipelines, in the order ZenML lists them.
-- ZenML: get_pipelines()
SELECT pipeline_index, pipeline_name, run_count, first_run_start, pipeline_id
FROM pipelines
ORDER BY pipeline_index;
