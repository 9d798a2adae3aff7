-- What Grafana's PostgreSQL data source sends (grafana/grafana,
-- public/app/plugins/datasource/grafana-postgresql-datasource/postgresMetaQuery.ts and the
-- macros of pkg/tsdb/grafana-postgresql-datasource/macros.go, as a dashboard panel expands
-- them), one statement per block, separated by lines holding only `;`.
-- getVersion(), when the data source is saved:
SELECT current_setting('server_version_num')::int/100 as version
;
-- getTimescaleDBVersion():
SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'
;
-- showSchemas():
SELECT schema_name AS "name"
    FROM information_schema.schemata
    WHERE schema_name NOT IN ('information_schema',
                              'pg_catalog',
                              'pg_toast',
                              '_timescaledb_cache',
                              '_timescaledb_catalog',
                              '_timescaledb_internal',
                              '_timescaledb_config',
                              'timescaledb_information',
                              'timescaledb_experimental')
    ORDER BY schema_name
;
-- showTables() without a schema: the query builder's table picker.
SELECT
    CASE WHEN 
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          )
      THEN quote_ident(table_name)
      ELSE quote_ident(table_schema) || '.' || quote_ident(table_name)
    END AS "table"
    FROM information_schema.tables
    WHERE quote_ident(table_schema) NOT IN ('information_schema',
                             'pg_catalog',
                             '_timescaledb_cache',
                             '_timescaledb_catalog',
                             '_timescaledb_internal',
                             '_timescaledb_config',
                             'timescaledb_information',
                             'timescaledb_experimental')
    ORDER BY CASE WHEN 
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          ) THEN 0 ELSE 1 END, 1
;
-- showTables('zenml'):
SELECT quote_ident(table_name) AS "table"
      FROM information_schema.tables
      WHERE quote_ident(table_schema) = 'zenml'
      ORDER BY 1
;
-- getSchema('runs'): the column picker.
SELECT quote_ident(column_name) AS "column", data_type AS "type"
    FROM information_schema.columns
    WHERE
      CASE WHEN array_length(parse_ident('runs'),1) = 2
        THEN quote_ident(table_schema) = (parse_ident('runs'))[1]
          AND quote_ident(table_name) = (parse_ident('runs'))[2]
        ELSE quote_ident(table_name) = 'runs'
          AND 
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          )
      END
;
-- A pipeline-health panel: runs per hour and pipeline, $__timeGroupAlias(start_time, '1h')
-- and $__timeFilter(start_time) expanded as macros.go expands them.
SELECT
  floor(extract(epoch from start_time)/3600)*3600 AS "time",
  pipeline_name AS metric,
  count(*) AS runs
FROM runs
WHERE
  start_time BETWEEN '2000-01-01T00:00:00Z' AND '2100-01-01T00:00:00Z'
GROUP BY 1, 2
ORDER BY 1
;
-- Failure rate over time: $__time(start_time) and $__timeFilter.
SELECT
  start_time AS "time",
  CASE WHEN status = 'failed' THEN 1 ELSE 0 END AS failed
FROM runs
WHERE
  start_time BETWEEN '2000-01-01T00:00:00Z' AND '2100-01-01T00:00:00Z'
ORDER BY 1
;
-- Step durations, with $__unixEpochFilter over the epoch and a template variable's values.
SELECT step_name AS metric, avg(duration_s) AS avg_s
FROM steps
WHERE extract(epoch from start_time) >= 946684800 AND extract(epoch from start_time) <= 4102444800
  AND pipeline_name IN ('first_pipeline','data_pipeline')
GROUP BY 1
ORDER BY 1
