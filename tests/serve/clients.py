"""Real PostgreSQL clients against `runql serve`, for tests/runql/serve.rs.

    clients.py psycopg DSN QUERIES.json     rows of each query, psycopg 3 with server-side
                                            binding, text results, then binary results
    clients.py sqlalchemy URL QUERIES.json  SQLAlchemy's reflection of the tables, and
                                            pandas.read_sql of each query
    clients.py replay DSN FILE.sql...       every statement of each file (a client's own
                                            introspection queries); the rows of each

Rows print as JSON with values made comparable across clients: a timestamp is its
microseconds since the epoch ("ts:<n>"), a Decimal a float, an array a list.
"""

import datetime
import decimal
import json
import sys

UTC = datetime.timezone.utc
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=UTC)


def plain(value):
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        delta = value - EPOCH
        return "ts:%d" % (delta.days * 86_400_000_000 + delta.seconds * 1_000_000 + delta.microseconds)
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, float) and value != value:
        return "NaN"
    if hasattr(value, "item"):  # numpy scalars from pandas
        return plain(value.item())
    return value


def rows_of(cursor):
    names = [d.name for d in cursor.description]
    return [{n: plain(v) for n, v in zip(names, row)} for row in cursor.fetchall()]


def psycopg_mode(dsn, queries):
    import psycopg

    out = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        for q in queries:
            with conn.cursor() as cur:
                cur.execute(q["sql"], q.get("params"))
                out[q["name"]] = rows_of(cur)
            # The same with results in PostgreSQL's binary format.
            with conn.cursor(binary=True) as cur:
                cur.execute(q["sql"], q.get("params"))
                out[q["name"] + " (binary)"] = rows_of(cur)
        # Prepared once, executed with other parameters: the server plans it again.
        with conn.cursor() as cur:
            for q in queries:
                if q.get("params"):
                    cur.execute(q["sql"], q["params"], prepare=True)
                    cur.execute(q["sql"], q["params"], prepare=True)
                    out[q["name"] + " (prepared)"] = rows_of(cur)
        out["server_version"] = conn.info.server_version
        out["parameter TimeZone"] = conn.info.parameter_status("TimeZone")
    return out


def sqlalchemy_mode(url, queries):
    import pandas
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    out = {}
    inspector = sqlalchemy.inspect(engine)
    out["schemas"] = sorted(inspector.get_schema_names())
    out["tables"] = sorted(inspector.get_table_names())
    out["columns of runs"] = [
        {"name": c["name"], "type": str(c["type"]), "nullable": c["nullable"]}
        for c in inspector.get_columns("runs")
    ]
    out["has_table runs"] = inspector.has_table("runs")
    out["has_table nope"] = inspector.has_table("nope")
    with engine.connect() as conn:
        for q in queries:
            params = q.get("params")
            sql = q["sql"]
            if params:
                # SQLAlchemy's named style: %s -> :p0, :p1, ...
                for i in range(len(params)):
                    sql = sql.replace("%s", ":p%d" % i, 1)
                params = {"p%d" % i: v for i, v in enumerate(params)}
            frame = pandas.read_sql(sqlalchemy.text(sql), conn, params=params)
            out[q["name"]] = [
                {k: plain(None if pandas.isna(v) is True else v) for k, v in row.items()}
                for row in frame.to_dict("records")
            ]
    # A table by name, as pandas reads one.
    out["read_sql_table pipelines"] = len(pandas.read_sql_table("pipelines", engine))
    engine.dispose()
    return out


def statements(text):
    """Statements of a replay file: separated by lines holding only `;`."""
    out, current = [], []
    for line in text.splitlines():
        if line.strip() == ";":
            if "".join(current).strip():
                out.append("\n".join(current))
            current = []
        elif not line.startswith("--"):
            current.append(line)
    if "".join(current).strip():
        out.append("\n".join(current))
    return out


def replay_mode(dsn, files):
    import psycopg

    out = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        for path in files:
            with open(path) as f:
                text = f.read()
            for i, sql in enumerate(statements(text)):
                key = "%s #%d" % (path.rsplit("/", 1)[-1], i + 1)
                try:
                    with conn.cursor() as cur:
                        # Simple query protocol: the text exactly as the client sends it.
                        cur.execute(psycopg.sql.SQL(sql).as_string(conn), prepare=False)
                        out[key] = rows_of(cur) if cur.description else []
                except Exception as e:  # reported, and the test fails on it
                    out[key] = {"error": str(e).strip(), "sql": sql}
    return out


def main():
    mode, target = sys.argv[1], sys.argv[2]
    if mode == "replay":
        result = replay_mode(target, sys.argv[3:])
    else:
        with open(sys.argv[3]) as f:
            queries = json.load(f)
        result = psycopg_mode(target, queries) if mode == "psycopg" else sqlalchemy_mode(target, queries)
    json.dump(result, sys.stdout, default=str)


if __name__ == "__main__":
    main()
