-- A built-in metric output of one step, over every run of a pipeline (oldest first).
-- ZenML: [run.steps[step].outputs[name][0].load() for run in get_pipeline(pipeline).runs]
SELECT r.run_index, r.run_name, r.start_time,
       json_get_float(r.parameters, 'gamma') AS gamma,
       json_get_float(output_value(o.output_id)) AS value
FROM runs r
JOIN outputs o ON o.run_id = r.run_id
WHERE r.pipeline_name = $pipeline AND o.step_name = $step AND o.output_name = $output
ORDER BY r.run_index;
