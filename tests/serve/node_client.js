// node-postgres (`pg`, from npm) against `runql serve`, for tests/runql/serve.rs:
//   node node_client.js QUERIES.json   (connection from PGHOST, PGPORT, PGUSER, PGPASSWORD,
//                                       PGDATABASE, as pg reads them)
// Prints each query's rows as JSON: a timestamp as "tsms:<milliseconds>" (a JavaScript Date
// keeps milliseconds), arrays as arrays.
const fs = require("fs");
const { Client } = require("pg");

function plain(value) {
  if (value instanceof Date) return "tsms:" + value.getTime();
  if (Array.isArray(value)) return value.map(plain);
  return value;
}

async function main() {
  const queries = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  const client = new Client();
  await client.connect();
  const out = {};
  for (const q of queries) {
    // With parameters pg uses the extended protocol; without, the simple one.
    const result = await client.query(q.sql.replace(/%s/g, (() => { let i = 0; return () => "$" + ++i; })()), q.params || []);
    out[q.name] = result.rows.map((row) => {
      const o = {};
      for (const [k, v] of Object.entries(row)) o[k] = plain(v);
      return o;
    });
  }
  out["introspection"] = (await client.query(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name", ["zenml"])).rows;
  // A named prepared statement, run twice.
  const named = { name: "latest", text: "SELECT run_name FROM runs WHERE pipeline_name = $1 ORDER BY start_time DESC LIMIT 1", values: ["first_pipeline"] };
  out["prepared"] = [(await client.query(named)).rows, (await client.query(named)).rows];
  await client.end();
  process.stdout.write(JSON.stringify(out));
}

main().catch((e) => {
  process.stderr.write("node client: " + e.message + "\n");
  process.exit(1);
});
