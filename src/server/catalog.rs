//! The PostgreSQL catalog clients read to find their way around: `pg_catalog` and
//! `information_schema`, as tables holding runql's tables, columns, functions and reports
//! (with the contracts of `schemas/` as their descriptions), built once when the server
//! starts.
//!
//! It holds what psql's `\d` family, pgjdbc's `DatabaseMetaData` (Metabase, DBeaver),
//! SQLAlchemy's reflection and Grafana's pickers ask, with PostgreSQL's own oids for the
//! built-in types and catalog tables, so queries written against PostgreSQL (`classoid =
//! 'pg_class'::regclass`, `atttypid = 25`) mean the same here. What runql does not have
//! (indexes, constraints, triggers, policies, inheritance, sequences) is there as empty
//! tables, so asking finds nothing rather than failing.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float32Array, Int16Array, Int32Array, Int64Array, ListBuilder,
    StringArray, StringBuilder, UInt32Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider};
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use datafusion::execution::FunctionRegistry;
use datafusion::prelude::SessionContext;
use pgwire::api::Type;

use super::encode::pg_type;
use crate::reports::ReportSignature;
use crate::tables::TABLES;

/// The schema runql's tables and functions are in, and the search path clients are told.
pub const SCHEMA: &str = "zenml";
pub const SEARCH_PATH: &str = "zenml";
/// The one database: DataFusion's catalog name.
pub const DATABASE: &str = "runql";
/// The role that owns everything.
pub const OWNER: &str = "runql";

const OWNER_OID: u32 = 10;
const PG_CATALOG_OID: u32 = 11;
const SCHEMA_OID: u32 = 2200;
const INFORMATION_SCHEMA_OID: u32 = 13_000;
const DATABASE_OID: u32 = 16_383;
const HEAP_AM: u32 = 2;
/// runql's tables are numbered from here, as PostgreSQL numbers user objects.
const FIRST_USER_OID: u32 = 16_384;
/// Catalog tables PostgreSQL has no fixed oid for, and functions, from here.
const FIRST_OTHER_OID: u32 = 30_000;
const PG_CLASS_OID: u32 = 1259;
const PG_PROC_OID: u32 = 1255;
const PG_NAMESPACE_OID: u32 = 2615;

/// A column type of a catalog table.
#[derive(Clone, Copy)]
enum C {
    Oid,
    I2,
    I4,
    I8,
    F4,
    Bool,
    Text,
    TextArray,
    /// `oid[]`, `int2[]`: catalog columns compared with `= ANY(...)`.
    OidArray,
    I2Array,
}

impl C {
    fn data_type(self) -> DataType {
        match self {
            C::Oid => DataType::UInt32,
            C::I2 => DataType::Int16,
            C::I4 => DataType::Int32,
            C::I8 => DataType::Int64,
            C::F4 => DataType::Float32,
            C::Bool => DataType::Boolean,
            C::Text => DataType::Utf8,
            C::TextArray => DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
            C::OidArray => DataType::List(Arc::new(Field::new_list_field(DataType::UInt32, true))),
            C::I2Array => DataType::List(Arc::new(Field::new_list_field(DataType::Int16, true))),
        }
    }
}

/// A cell of a catalog row.
#[derive(Clone, Debug)]
enum V {
    Oid(u32),
    I(i64),
    F(f32),
    B(bool),
    T(String),
    L(Vec<String>),
    Null,
}

fn t(s: impl Into<String>) -> V {
    V::T(s.into())
}

/// One catalog table: its columns, and rows in their order.
struct Table {
    name: &'static str,
    columns: Vec<(&'static str, C)>,
    rows: Vec<Vec<V>>,
}

impl Table {
    fn new(name: &'static str, columns: &[(&'static str, C)]) -> Table {
        Table {
            name,
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row given by column name; the columns not named are NULL.
    fn row(&mut self, cells: &[(&str, V)]) {
        let row = self
            .columns
            .iter()
            .map(|(name, _)| {
                cells
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or(V::Null)
            })
            .collect();
        self.rows.push(row);
    }

    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|(n, c)| Field::new(*n, c.data_type(), true))
                .collect::<Vec<_>>(),
        ))
    }

    fn batch(&self) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, (_, c))| column(*c, self.rows.iter().map(|r| &r[i])))
            .collect();
        Ok(RecordBatch::try_new(self.schema(), columns)?)
    }
}

fn column<'a>(c: C, cells: impl Iterator<Item = &'a V>) -> ArrayRef {
    let int = |v: &V| match v {
        V::I(i) => Some(*i),
        V::Oid(o) => Some(i64::from(*o)),
        _ => None,
    };
    match c {
        C::Oid => Arc::new(
            cells
                .map(|v| int(v).map(|i| i as u32))
                .collect::<UInt32Array>(),
        ),
        C::I2 => Arc::new(
            cells
                .map(|v| int(v).map(|i| i as i16))
                .collect::<Int16Array>(),
        ),
        C::I4 => Arc::new(
            cells
                .map(|v| int(v).map(|i| i as i32))
                .collect::<Int32Array>(),
        ),
        C::I8 => Arc::new(cells.map(int).collect::<Int64Array>()),
        C::F4 => Arc::new(
            cells
                .map(|v| match v {
                    V::F(f) => Some(*f),
                    _ => None,
                })
                .collect::<Float32Array>(),
        ),
        C::Bool => Arc::new(
            cells
                .map(|v| match v {
                    V::B(b) => Some(*b),
                    _ => None,
                })
                .collect::<BooleanArray>(),
        ),
        C::Text => Arc::new(
            cells
                .map(|v| match v {
                    V::T(s) => Some(s.as_str()),
                    _ => None,
                })
                .collect::<StringArray>(),
        ),
        // The catalog has no rows with these filled in.
        C::OidArray | C::I2Array => {
            datafusion::arrow::array::new_null_array(&c.data_type(), cells.count())
        }
        C::TextArray => {
            let mut b = ListBuilder::new(StringBuilder::new());
            for v in cells {
                match v {
                    V::L(items) => {
                        for item in items {
                            b.values().append_value(item);
                        }
                        b.append(true);
                    }
                    _ => b.append(false),
                }
            }
            Arc::new(b.finish())
        }
    }
}

/// A PostgreSQL type the catalog lists: its oid, name, and how `format_type` spells it.
struct PgType {
    oid: u32,
    name: &'static str,
    spelled: &'static str,
    len: i16,
    category: &'static str,
    elem: u32,
    array: u32,
}

const fn ty(
    oid: u32,
    name: &'static str,
    spelled: &'static str,
    len: i16,
    category: &'static str,
    elem: u32,
    array: u32,
) -> PgType {
    PgType {
        oid,
        name,
        spelled,
        len,
        category,
        elem,
        array,
    }
}

/// PostgreSQL's own oids, for the types runql sends and the catalog uses.
const TYPES: &[PgType] = &[
    ty(16, "bool", "boolean", 1, "B", 0, 1000),
    ty(17, "bytea", "bytea", -1, "U", 0, 1001),
    ty(18, "char", "\"char\"", 1, "Z", 0, 1002),
    ty(19, "name", "name", 64, "S", 0, 1003),
    ty(20, "int8", "bigint", 8, "N", 0, 1016),
    ty(21, "int2", "smallint", 2, "N", 0, 1005),
    ty(22, "int2vector", "int2vector", -1, "A", 21, 1006),
    ty(23, "int4", "integer", 4, "N", 0, 1007),
    ty(24, "regproc", "regproc", 4, "N", 0, 1008),
    ty(25, "text", "text", -1, "S", 0, 1009),
    ty(26, "oid", "oid", 4, "N", 0, 1028),
    ty(30, "oidvector", "oidvector", -1, "A", 26, 1013),
    ty(114, "json", "json", -1, "U", 0, 199),
    ty(194, "pg_node_tree", "pg_node_tree", -1, "Z", 0, 0),
    ty(700, "float4", "real", 4, "N", 0, 1021),
    ty(701, "float8", "double precision", 8, "N", 0, 1022),
    ty(705, "unknown", "unknown", -2, "X", 0, 0),
    ty(1000, "_bool", "boolean[]", -1, "A", 16, 0),
    ty(1005, "_int2", "smallint[]", -1, "A", 21, 0),
    ty(1007, "_int4", "integer[]", -1, "A", 23, 0),
    ty(1009, "_text", "text[]", -1, "A", 25, 0),
    ty(1016, "_int8", "bigint[]", -1, "A", 20, 0),
    ty(1021, "_float4", "real[]", -1, "A", 700, 0),
    ty(1022, "_float8", "double precision[]", -1, "A", 701, 0),
    ty(1028, "_oid", "oid[]", -1, "A", 26, 0),
    ty(1043, "varchar", "character varying", -1, "S", 0, 1015),
    ty(1082, "date", "date", 4, "D", 0, 1182),
    ty(
        1114,
        "timestamp",
        "timestamp without time zone",
        8,
        "D",
        0,
        1115,
    ),
    ty(
        1184,
        "timestamptz",
        "timestamp with time zone",
        8,
        "D",
        0,
        1185,
    ),
    ty(
        1185,
        "_timestamptz",
        "timestamp with time zone[]",
        -1,
        "A",
        1184,
        0,
    ),
    ty(1186, "interval", "interval", 16, "T", 0, 1187),
    ty(1700, "numeric", "numeric", -1, "N", 0, 1231),
    ty(2205, "regclass", "regclass", 4, "N", 0, 2210),
    ty(2206, "regtype", "regtype", 4, "N", 0, 2211),
    ty(2249, "record", "record", -1, "P", 0, 2287),
    ty(2275, "cstring", "cstring", -2, "P", 0, 1263),
    ty(2276, "any", "\"any\"", 4, "P", 0, 0),
    ty(2278, "void", "void", 4, "P", 0, 0),
    ty(2283, "anyelement", "anyelement", 4, "P", 0, 0),
    ty(2950, "uuid", "uuid", 16, "U", 0, 2951),
    ty(4089, "regnamespace", "regnamespace", 4, "N", 0, 4090),
];

fn type_of(data_type: &DataType) -> &'static PgType {
    let oid = pg_type(data_type).oid();
    TYPES.iter().find(|t| t.oid == oid).unwrap_or_else(|| {
        TYPES
            .iter()
            .find(|t| t.oid == Type::TEXT.oid())
            .expect("text")
    })
}

/// A relation the catalog lists.
struct Relation {
    oid: u32,
    namespace: u32,
    name: String,
    /// `r` table, `v` view.
    kind: &'static str,
    schema: SchemaRef,
    description: Option<String>,
    column_descriptions: Vec<Option<String>>,
}

/// A function the catalog lists.
struct Proc {
    oid: u32,
    namespace: u32,
    name: String,
    kind: &'static str,
    returns_set: bool,
    arguments: Vec<(String, &'static PgType)>,
    result: String,
    result_type: u32,
    description: Option<String>,
}

/// What the catalog holds, for the functions that read it (`format_type`,
/// `pg_table_is_visible`, `to_regclass`, `obj_description`, ...).
#[derive(Debug, Default)]
pub struct Lookup {
    /// `name` and `schema.name` → oid.
    relations: HashMap<String, u32>,
    relation_namespace: HashMap<u32, u32>,
    types: HashMap<u32, (&'static str, &'static str)>,
    type_names: HashMap<String, u32>,
    namespaces: HashMap<String, u32>,
    /// oid → (arguments, result, namespace).
    procs: HashMap<u32, (String, String, u32)>,
    /// (objoid, classoid, objsubid) → description.
    descriptions: HashMap<(u32, u32, i32), String>,
}

impl Lookup {
    pub fn relation(&self, name: &str) -> Option<u32> {
        let plain = unquote(name);
        self.relations.get(&plain).copied()
    }

    pub fn type_oid(&self, name: &str) -> Option<u32> {
        let plain = unquote(name);
        let bare = plain.strip_prefix("pg_catalog.").unwrap_or(&plain);
        self.type_names.get(bare).copied()
    }

    pub fn namespace(&self, name: &str) -> Option<u32> {
        self.namespaces.get(&unquote(name)).copied()
    }

    /// How `format_type` writes a type (`NULL` for an oid it does not know, as PostgreSQL
    /// writes `???`).
    pub fn format_type(&self, oid: u32) -> Option<String> {
        self.types.get(&oid).map(|(_, spelled)| spelled.to_string())
    }

    /// Whether an object in namespace `namespace` is found by an unqualified name.
    pub fn visible_namespace(namespace: u32) -> bool {
        namespace == SCHEMA_OID || namespace == PG_CATALOG_OID
    }

    pub fn relation_visible(&self, oid: u32) -> bool {
        self.relation_namespace
            .get(&oid)
            .is_some_and(|n| Self::visible_namespace(*n))
    }

    pub fn type_visible(&self, oid: u32) -> bool {
        self.types.contains_key(&oid)
    }

    pub fn proc_visible(&self, oid: u32) -> bool {
        self.procs
            .get(&oid)
            .is_some_and(|(_, _, n)| Self::visible_namespace(*n))
    }

    pub fn proc_arguments(&self, oid: u32) -> Option<String> {
        self.procs.get(&oid).map(|(a, _, _)| a.clone())
    }

    pub fn proc_result(&self, oid: u32) -> Option<String> {
        self.procs.get(&oid).map(|(_, r, _)| r.clone())
    }

    /// `obj_description(oid, 'pg_class')`, `col_description(oid, n)` and friends.
    pub fn description(&self, objoid: u32, classoid: Option<u32>, subid: i32) -> Option<String> {
        match classoid {
            Some(c) => self.descriptions.get(&(objoid, c, subid)).cloned(),
            None => self
                .descriptions
                .iter()
                .find(|((o, _, s), _)| *o == objoid && *s == subid)
                .map(|(_, d)| d.clone()),
        }
    }

    pub fn class_oid(catalog: &str) -> Option<u32> {
        match catalog.trim_start_matches("pg_catalog.") {
            "pg_class" => Some(PG_CLASS_OID),
            "pg_proc" => Some(PG_PROC_OID),
            "pg_namespace" => Some(PG_NAMESPACE_OID),
            _ => None,
        }
    }
}

/// `"Runs"` → `Runs`, `runs` → `runs`, `zenml."runs"` → `zenml.runs`: a name as the catalog
/// spells it (unquoted parts fold to lower case, as PostgreSQL folds them).
fn unquote(name: &str) -> String {
    name.split('.')
        .map(|part| {
            let part = part.trim();
            match part.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
                Some(quoted) => quoted.replace("\"\"", "\""),
                None => part.to_ascii_lowercase(),
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// The catalog: its tables, registered as the schemas `pg_catalog` and
/// `information_schema`, and what its functions look up.
pub struct Catalog {
    pub lookup: Arc<Lookup>,
    pg_catalog: Vec<Table>,
    information_schema: Vec<Table>,
}

impl Catalog {
    /// The catalog of a session whose functions are `ctx`'s, with `reports` and the
    /// connecting `users` (names only) listed.
    pub fn new(ctx: &SessionContext, reports: &[ReportSignature], users: &[String]) -> Catalog {
        let mut lookup = Lookup::default();
        let (pg_catalog, information_schema) = (catalog_tables(), information_schema_tables());

        // Relations: runql's tables, then the catalog's own.
        let mut relations = Vec::new();
        for (i, def) in TABLES.iter().enumerate() {
            let schema = def.schema();
            relations.push(Relation {
                oid: FIRST_USER_OID + i as u32,
                namespace: SCHEMA_OID,
                name: def.name.to_string(),
                kind: "r",
                column_descriptions: schema
                    .fields()
                    .iter()
                    .map(|f| def.meaning(f.name()))
                    .collect(),
                schema,
                description: Some(def.summary().to_string()).filter(|s| !s.is_empty()),
            });
        }
        let mut next = FIRST_OTHER_OID;
        for (tables, namespace, kind) in [
            (&pg_catalog, PG_CATALOG_OID, "r"),
            (&information_schema, INFORMATION_SCHEMA_OID, "v"),
        ] {
            for table in tables {
                let oid = known_catalog_oid(table.name).unwrap_or_else(|| {
                    next += 1;
                    next
                });
                relations.push(Relation {
                    oid,
                    namespace,
                    name: table.name.to_string(),
                    kind,
                    schema: table.schema(),
                    description: None,
                    column_descriptions: vec![None; table.columns.len()],
                });
            }
        }

        let namespaces = [
            (PG_CATALOG_OID, "pg_catalog"),
            (SCHEMA_OID, SCHEMA),
            (INFORMATION_SCHEMA_OID, "information_schema"),
        ];
        for (oid, name) in namespaces {
            lookup.namespaces.insert(name.to_string(), oid);
        }
        for r in &relations {
            let schema = namespaces
                .iter()
                .find(|(o, _)| *o == r.namespace)
                .map_or("", |(_, n)| n);
            lookup
                .relations
                .insert(format!("{schema}.{}", r.name), r.oid);
            if Lookup::visible_namespace(r.namespace) {
                lookup.relations.entry(r.name.clone()).or_insert(r.oid);
            }
            lookup.relation_namespace.insert(r.oid, r.namespace);
            if let Some(d) = &r.description {
                lookup
                    .descriptions
                    .insert((r.oid, PG_CLASS_OID, 0), d.clone());
            }
            for (i, d) in r.column_descriptions.iter().enumerate() {
                if let Some(d) = d {
                    lookup
                        .descriptions
                        .insert((r.oid, PG_CLASS_OID, i as i32 + 1), d.clone());
                }
            }
        }
        for pt in TYPES {
            lookup.types.insert(pt.oid, (pt.name, pt.spelled));
            lookup.type_names.insert(pt.name.to_string(), pt.oid);
            lookup.type_names.insert(pt.spelled.to_string(), pt.oid);
        }
        lookup.descriptions.insert(
            (SCHEMA_OID, PG_NAMESPACE_OID, 0),
            "ZenML's pipeline run history, as runql's tables".to_string(),
        );

        let procs = procs(ctx, reports, &mut next);
        for p in &procs {
            let arguments = p
                .arguments
                .iter()
                .map(|(n, t)| {
                    if n.is_empty() {
                        t.spelled.to_string()
                    } else {
                        format!("{n} {}", t.spelled)
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            lookup
                .procs
                .insert(p.oid, (arguments, p.result.clone(), p.namespace));
            if let Some(d) = &p.description {
                lookup
                    .descriptions
                    .insert((p.oid, PG_PROC_OID, 0), d.clone());
            }
        }

        let mut catalog = Catalog {
            lookup: Arc::new(Lookup::default()),
            pg_catalog,
            information_schema,
        };
        catalog.fill(&relations, &procs, &lookup, users);
        catalog.lookup = Arc::new(lookup);
        catalog
    }

    /// Whether a bare table name means a catalog table (and not one of runql's).
    pub fn is_catalog_table(&self, name: &str) -> bool {
        TABLES.iter().all(|t| t.name != name) && self.pg_catalog.iter().any(|t| t.name == name)
    }

    /// Whether `name` is a catalog table with no rows (`pg_publication_rel`, `pg_index`, ...).
    pub fn is_empty_catalog_table(&self, name: &str) -> bool {
        self.pg_catalog
            .iter()
            .any(|t| t.name == name && t.rows.is_empty())
            && TABLES.iter().all(|t| t.name != name)
    }

    /// Registers `pg_catalog` and `information_schema` in `ctx`'s catalog `DATABASE`.
    pub fn register(&self, ctx: &SessionContext) -> Result<()> {
        let catalog = ctx.catalog(DATABASE).ok_or_else(|| {
            datafusion::error::DataFusionError::Plan(format!("no catalog {DATABASE}"))
        })?;
        for (name, tables) in [
            ("pg_catalog", &self.pg_catalog),
            ("information_schema", &self.information_schema),
        ] {
            let schema = MemorySchemaProvider::new();
            for table in tables {
                let batch = table.batch()?;
                let mem = MemTable::try_new(table.schema(), vec![vec![batch]])?;
                schema.register_table(table.name.to_string(), Arc::new(mem))?;
            }
            catalog.register_schema(name, Arc::new(schema))?;
        }
        Ok(())
    }

    fn table(&mut self, name: &str) -> &mut Table {
        self.pg_catalog
            .iter_mut()
            .chain(self.information_schema.iter_mut())
            .find(|t| t.name == name)
            .expect("catalog table")
    }

    fn fill(&mut self, relations: &[Relation], procs: &[Proc], lookup: &Lookup, users: &[String]) {
        let ns_name = |oid: u32| match oid {
            PG_CATALOG_OID => "pg_catalog",
            INFORMATION_SCHEMA_OID => "information_schema",
            _ => SCHEMA,
        };
        for (oid, name) in [
            (PG_CATALOG_OID, "pg_catalog"),
            (SCHEMA_OID, SCHEMA),
            (INFORMATION_SCHEMA_OID, "information_schema"),
        ] {
            self.table("pg_namespace").row(&[
                ("oid", V::Oid(oid)),
                ("nspname", t(name)),
                ("nspowner", V::Oid(OWNER_OID)),
            ]);
            self.table("schemata").row(&[
                ("catalog_name", t(DATABASE)),
                ("schema_name", t(name)),
                ("schema_owner", t(OWNER)),
            ]);
        }
        self.table("pg_database").row(&[
            ("oid", V::Oid(DATABASE_OID)),
            ("datname", t(DATABASE)),
            ("datdba", V::Oid(OWNER_OID)),
            ("encoding", V::I(6)),
            ("datlocprovider", t("c")),
            ("datistemplate", V::B(false)),
            ("datallowconn", V::B(true)),
            ("datconnlimit", V::I(-1)),
            ("dattablespace", V::Oid(1663)),
            ("datcollate", t("C")),
            ("datctype", t("C")),
        ]);
        let mut role_oid = OWNER_OID;
        for name in std::iter::once(OWNER.to_string()).chain(users.iter().cloned()) {
            let login = name != OWNER;
            let row = [
                ("oid", V::Oid(role_oid)),
                ("rolname", t(name.clone())),
                ("rolsuper", V::B(false)),
                ("rolinherit", V::B(true)),
                ("rolcreaterole", V::B(false)),
                ("rolcreatedb", V::B(false)),
                ("rolcanlogin", V::B(login)),
                ("rolreplication", V::B(false)),
                ("rolconnlimit", V::I(-1)),
                ("rolpassword", t("********")),
                ("rolbypassrls", V::B(false)),
            ];
            self.table("pg_roles").row(&row);
            self.table("pg_user").row(&[
                ("usename", t(name.clone())),
                ("usesysid", V::Oid(role_oid)),
                ("usecreatedb", V::B(false)),
                ("usesuper", V::B(false)),
                ("userepl", V::B(false)),
                ("usebypassrls", V::B(false)),
                ("passwd", t("********")),
            ]);
            role_oid = if role_oid == OWNER_OID {
                FIRST_OTHER_OID - 1000
            } else {
                role_oid + 1
            };
        }
        for (name, value) in super::functions::default_settings() {
            self.table("pg_settings").row(&[
                ("name", t(name)),
                ("setting", t(value.clone())),
                ("category", t("runql serve")),
                ("context", t("user")),
                ("vartype", t("string")),
                ("source", t("default")),
                ("boot_val", t(value.clone())),
                ("reset_val", t(value)),
                ("pending_restart", V::B(false)),
            ]);
        }
        for (oid, name) in [(1663, "pg_default"), (1664, "pg_global")] {
            self.table("pg_tablespace").row(&[
                ("oid", V::Oid(oid)),
                ("spcname", t(name)),
                ("spcowner", V::Oid(OWNER_OID)),
            ]);
        }
        for (oid, name) in [(12, "internal"), (13, "c"), (14, "sql")] {
            self.table("pg_language").row(&[
                ("oid", V::Oid(oid)),
                ("lanname", t(name)),
                ("lanowner", V::Oid(OWNER_OID)),
                ("lanispl", V::B(false)),
                ("lanpltrusted", V::B(name == "sql")),
            ]);
        }
        for (oid, name, kind) in [(HEAP_AM, "heap", "t"), (403, "btree", "i")] {
            self.table("pg_am").row(&[
                ("oid", V::Oid(oid)),
                ("amname", t(name)),
                ("amtype", t(kind)),
            ]);
        }
        for (oid, name) in [(100, "default"), (950, "C"), (951, "POSIX")] {
            self.table("pg_collation").row(&[
                ("oid", V::Oid(oid)),
                ("collname", t(name)),
                ("collnamespace", V::Oid(PG_CATALOG_OID)),
                ("collowner", V::Oid(OWNER_OID)),
                ("collprovider", t("c")),
                ("collencoding", V::I(-1)),
            ]);
        }
        for pt in TYPES {
            let kind = if pt.category == "P" { "p" } else { "b" };
            self.table("pg_type").row(&[
                ("oid", V::Oid(pt.oid)),
                ("typname", t(pt.name)),
                ("typnamespace", V::Oid(PG_CATALOG_OID)),
                ("typowner", V::Oid(OWNER_OID)),
                ("typlen", V::I(pt.len.into())),
                ("typbyval", V::B(matches!(pt.len, 1 | 2 | 4 | 8))),
                ("typtype", t(kind)),
                ("typcategory", t(pt.category)),
                ("typispreferred", V::B(false)),
                ("typisdefined", V::B(true)),
                ("typdelim", t(",")),
                ("typrelid", V::Oid(0)),
                ("typelem", V::Oid(pt.elem)),
                ("typarray", V::Oid(pt.array)),
                (
                    "typinput",
                    t(if pt.elem != 0 {
                        "array_in".to_string()
                    } else {
                        format!("{}in", pt.name)
                    }),
                ),
                (
                    "typoutput",
                    t(if pt.elem != 0 {
                        "array_out".to_string()
                    } else {
                        format!("{}out", pt.name)
                    }),
                ),
                ("typreceive", t(format!("{}recv", pt.name))),
                ("typsend", t(format!("{}send", pt.name))),
                ("typmodin", t("-")),
                ("typmodout", t("-")),
                ("typanalyze", t("-")),
                ("typalign", t(if pt.len == 8 { "d" } else { "i" })),
                ("typstorage", t(if pt.len < 0 { "x" } else { "p" })),
                ("typnotnull", V::B(false)),
                ("typbasetype", V::Oid(0)),
                ("typtypmod", V::I(-1)),
                ("typndims", V::I(0)),
                (
                    "typcollation",
                    V::Oid(if pt.category == "S" { 100 } else { 0 }),
                ),
            ]);
        }

        for r in relations {
            let kind_name = if r.kind == "v" { "VIEW" } else { "BASE TABLE" };
            self.table("pg_class").row(&[
                ("oid", V::Oid(r.oid)),
                ("relname", t(r.name.clone())),
                ("relnamespace", V::Oid(r.namespace)),
                ("reltype", V::Oid(0)),
                ("reloftype", V::Oid(0)),
                ("relowner", V::Oid(OWNER_OID)),
                ("relam", V::Oid(if r.kind == "r" { HEAP_AM } else { 0 })),
                ("relfilenode", V::Oid(r.oid)),
                ("reltablespace", V::Oid(0)),
                ("relpages", V::I(0)),
                ("reltuples", V::F(-1.0)),
                ("relallvisible", V::I(0)),
                ("reltoastrelid", V::Oid(0)),
                ("relhasindex", V::B(false)),
                ("relisshared", V::B(false)),
                ("relpersistence", t("p")),
                ("relkind", t(r.kind)),
                ("relnatts", V::I(r.schema.fields().len() as i64)),
                ("relchecks", V::I(0)),
                ("relhasrules", V::B(false)),
                ("relhastriggers", V::B(false)),
                ("relhassubclass", V::B(false)),
                ("relrowsecurity", V::B(false)),
                ("relforcerowsecurity", V::B(false)),
                ("relispopulated", V::B(true)),
                ("relreplident", t("d")),
                ("relispartition", V::B(false)),
                ("relrewrite", V::Oid(0)),
                ("relfrozenxid", V::Oid(0)),
                ("relminmxid", V::Oid(0)),
                // Reading, for everyone (PUBLIC) and the owner: pgjdbc's getTablePrivileges
                // and DBeaver read the ACL; no one may write.
                (
                    "relacl",
                    V::L(vec![format!("{OWNER}=r/{OWNER}"), format!("=r/{OWNER}")]),
                ),
            ]);
            let schema = ns_name(r.namespace);
            self.table("tables").row(&[
                ("table_catalog", t(DATABASE)),
                ("table_schema", t(schema)),
                ("table_name", t(r.name.clone())),
                ("table_type", t(kind_name)),
                ("is_insertable_into", t("NO")),
                ("is_typed", t("NO")),
            ]);
            if r.kind == "r" {
                self.table("pg_tables").row(&[
                    ("schemaname", t(schema)),
                    ("tablename", t(r.name.clone())),
                    ("tableowner", t(OWNER)),
                    ("hasindexes", V::B(false)),
                    ("hasrules", V::B(false)),
                    ("hastriggers", V::B(false)),
                    ("rowsecurity", V::B(false)),
                ]);
            }
            if r.namespace == SCHEMA_OID {
                self.table("pg_stat_user_tables").row(&[
                    ("relid", V::Oid(r.oid)),
                    ("schemaname", t(schema)),
                    ("relname", t(r.name.clone())),
                ]);
                self.table("table_privileges").row(&[
                    ("grantor", t(OWNER)),
                    ("grantee", t("PUBLIC")),
                    ("table_catalog", t(DATABASE)),
                    ("table_schema", t(schema)),
                    ("table_name", t(r.name.clone())),
                    ("privilege_type", t("SELECT")),
                    ("is_grantable", t("NO")),
                    ("with_hierarchy", t("NO")),
                ]);
            }
            for (i, field) in r.schema.fields().iter().enumerate() {
                let pt = type_of(field.data_type());
                let num = i as i64 + 1;
                self.table("pg_attribute").row(&[
                    ("attrelid", V::Oid(r.oid)),
                    ("attname", t(field.name().clone())),
                    ("atttypid", V::Oid(pt.oid)),
                    ("attstattarget", V::I(-1)),
                    ("attlen", V::I(pt.len.into())),
                    ("attnum", V::I(num)),
                    ("attndims", V::I(i64::from(pt.elem != 0))),
                    ("attcacheoff", V::I(-1)),
                    ("atttypmod", V::I(-1)),
                    ("attbyval", V::B(matches!(pt.len, 1 | 2 | 4 | 8))),
                    ("attalign", t("i")),
                    ("attstorage", t("x")),
                    ("attcompression", t("")),
                    ("attnotnull", V::B(false)),
                    ("atthasdef", V::B(false)),
                    ("atthasmissing", V::B(false)),
                    ("attidentity", t("")),
                    ("attgenerated", t("")),
                    ("attisdropped", V::B(false)),
                    ("attislocal", V::B(true)),
                    ("attinhcount", V::I(0)),
                    (
                        "attcollation",
                        V::Oid(if pt.category == "S" { 100 } else { 0 }),
                    ),
                ]);
                let (data_type, udt) = if pt.elem != 0 {
                    ("ARRAY".to_string(), pt.name)
                } else {
                    (pt.spelled.to_string(), pt.name)
                };
                let numeric = |bits: i64| (V::I(bits), V::I(2), V::I(0));
                let (precision, radix, scale) = match pt.oid {
                    20 => numeric(64),
                    21 => numeric(16),
                    23 => numeric(32),
                    700 => numeric(24),
                    701 => numeric(53),
                    _ => (V::Null, V::Null, V::Null),
                };
                self.table("columns").row(&[
                    ("table_catalog", t(DATABASE)),
                    ("table_schema", t(schema)),
                    ("table_name", t(r.name.clone())),
                    ("column_name", t(field.name().clone())),
                    ("ordinal_position", V::I(num)),
                    ("is_nullable", t("YES")),
                    ("data_type", t(data_type)),
                    ("numeric_precision", precision),
                    ("numeric_precision_radix", radix),
                    ("numeric_scale", scale),
                    (
                        "datetime_precision",
                        if pt.category == "D" { V::I(6) } else { V::Null },
                    ),
                    ("udt_catalog", t(DATABASE)),
                    ("udt_schema", t("pg_catalog")),
                    ("udt_name", t(udt)),
                    ("dtd_identifier", t(num.to_string())),
                    ("is_self_referencing", t("NO")),
                    ("is_identity", t("NO")),
                    ("is_generated", t("NEVER")),
                    ("is_updatable", t("NO")),
                ]);
            }
        }
        for (key, description) in &lookup.descriptions {
            let (objoid, classoid, objsubid) = *key;
            self.table("pg_description").row(&[
                ("objoid", V::Oid(objoid)),
                ("classoid", V::Oid(classoid)),
                ("objsubid", V::I(objsubid.into())),
                ("description", t(description.clone())),
            ]);
        }
        for p in procs {
            let arg_types: Vec<String> =
                p.arguments.iter().map(|(_, t)| t.oid.to_string()).collect();
            let names: Vec<String> = p.arguments.iter().map(|(n, _)| n.clone()).collect();
            self.table("pg_proc").row(&[
                ("oid", V::Oid(p.oid)),
                ("proname", t(p.name.clone())),
                ("pronamespace", V::Oid(p.namespace)),
                ("proowner", V::Oid(OWNER_OID)),
                ("prolang", V::Oid(12)),
                ("procost", V::F(1.0)),
                ("prorows", V::F(if p.returns_set { 1000.0 } else { 0.0 })),
                ("provariadic", V::Oid(0)),
                ("prosupport", t("-")),
                ("prokind", t(p.kind)),
                ("prosecdef", V::B(false)),
                ("proleakproof", V::B(false)),
                ("proisstrict", V::B(false)),
                ("proretset", V::B(p.returns_set)),
                ("provolatile", t("s")),
                ("proparallel", t("s")),
                ("pronargs", V::I(p.arguments.len() as i64)),
                ("pronargdefaults", V::I(0)),
                ("prorettype", V::Oid(p.result_type)),
                ("proargtypes", t(arg_types.join(" "))),
                (
                    "proargnames",
                    if names.iter().any(|n| !n.is_empty()) {
                        V::L(names)
                    } else {
                        V::Null
                    },
                ),
                ("prosrc", t(p.name.clone())),
            ]);
            let schema = ns_name(p.namespace);
            self.table("routines").row(&[
                ("specific_catalog", t(DATABASE)),
                ("specific_schema", t(schema)),
                ("specific_name", t(format!("{}_{}", p.name, p.oid))),
                ("routine_catalog", t(DATABASE)),
                ("routine_schema", t(schema)),
                ("routine_name", t(p.name.clone())),
                ("routine_type", t("FUNCTION")),
                ("data_type", t(p.result.clone())),
                ("external_language", t("INTERNAL")),
            ]);
        }
    }
}

/// The oids PostgreSQL gives its catalog tables, which clients sometimes write as numbers.
fn known_catalog_oid(name: &str) -> Option<u32> {
    Some(match name {
        "pg_type" => 1247,
        "pg_attribute" => 1249,
        "pg_proc" => PG_PROC_OID,
        "pg_class" => PG_CLASS_OID,
        "pg_database" => 1262,
        "pg_namespace" => PG_NAMESPACE_OID,
        "pg_description" => 2609,
        "pg_index" => 2610,
        "pg_inherits" => 2611,
        "pg_constraint" => 2606,
        "pg_attrdef" => 2604,
        "pg_am" => 2601,
        "pg_trigger" => 2620,
        "pg_rewrite" => 2618,
        "pg_depend" => 2608,
        "pg_collation" => 3456,
        "pg_tablespace" => 1213,
        "pg_extension" => 3079,
        "pg_enum" => 3501,
        "pg_range" => 3541,
        "pg_policy" => 3256,
        "pg_statistic_ext" => 3381,
        "pg_publication" => 6104,
        "pg_shdescription" => 2396,
        "pg_sequence" => 2224,
        "pg_event_trigger" => 3466,
        "pg_foreign_table" => 3118,
        "pg_partitioned_table" => 3350,
        _ => return None,
    })
}

/// The functions the catalog lists: runql's (with their signatures), its reports
/// (set-returning), and DataFusion's built-ins in `pg_catalog`.
fn procs(ctx: &SessionContext, reports: &[ReportSignature], next: &mut u32) -> Vec<Proc> {
    let text = TYPES.iter().find(|t| t.oid == 25).expect("text");
    let mut out = Vec::new();
    let mut add = |p: Proc| out.push(p);
    let mut oid = || {
        *next += 1;
        *next
    };
    for report in reports {
        let columns: Vec<String> = report
            .columns
            .fields()
            .iter()
            .map(|f| format!("{} {}", f.name(), type_of(f.data_type()).spelled))
            .collect();
        add(Proc {
            oid: oid(),
            namespace: SCHEMA_OID,
            name: report.name.clone(),
            kind: "f",
            returns_set: true,
            arguments: report
                .parameters
                .iter()
                .map(|(n, dt)| (n.clone(), type_of(dt)))
                .collect(),
            result: format!("TABLE({})", columns.join(", ")),
            result_type: 2249,
            description: Some(report.description.clone()),
        });
    }
    let state = ctx.state();
    let own =
        |name: &str| name.starts_with("json_") || matches!(name, "read_output" | "output_value");
    let mut names: Vec<(String, &'static str, bool)> = Vec::new();
    for name in state.udfs() {
        names.push((name, "f", false));
    }
    for name in state.udafs() {
        names.push((name, "a", false));
    }
    for name in state.udwfs() {
        names.push((name, "w", false));
    }
    for name in state.table_functions().keys() {
        if reports.iter().all(|r| &r.name != name) {
            names.push((name.clone(), "f", true));
        }
    }
    names.sort();
    names.dedup();
    for (name, kind, set) in names {
        let (arguments, result, result_type) = signature(&state, &name, text);
        add(Proc {
            oid: oid(),
            namespace: if own(&name) {
                SCHEMA_OID
            } else {
                PG_CATALOG_OID
            },
            name,
            kind,
            returns_set: set,
            arguments,
            result,
            result_type,
            description: None,
        });
    }
    out
}

/// A scalar function's arguments and result, when its signature is one list of types.
fn signature(
    state: &datafusion::execution::SessionState,
    name: &str,
    text: &'static PgType,
) -> (Vec<(String, &'static PgType)>, String, u32) {
    use datafusion::logical_expr::TypeSignature;
    if let Ok(udf) = state.udf(name)
        && let TypeSignature::Exact(types) = &udf.signature().type_signature
    {
        let arguments: Vec<(String, &'static PgType)> = types
            .iter()
            .map(|dt| (String::new(), type_of(dt)))
            .collect();
        #[allow(deprecated)]
        if let Ok(result) = udf.return_type(types) {
            let pt = type_of(&result);
            return (arguments, pt.spelled.to_string(), pt.oid);
        }
        return (arguments, text.spelled.to_string(), text.oid);
    }
    (Vec::new(), "\"any\"".to_string(), 2276)
}

use C::*;

/// pg_catalog's tables: the columns clients read, in PostgreSQL 15's order.
fn catalog_tables() -> Vec<Table> {
    vec![
        Table::new(
            "pg_namespace",
            &[
                ("oid", Oid),
                ("nspname", Text),
                ("nspowner", Oid),
                ("nspacl", TextArray),
            ],
        ),
        Table::new(
            "pg_class",
            &[
                ("oid", Oid),
                ("relname", Text),
                ("relnamespace", Oid),
                ("reltype", Oid),
                ("reloftype", Oid),
                ("relowner", Oid),
                ("relam", Oid),
                ("relfilenode", Oid),
                ("reltablespace", Oid),
                ("relpages", I4),
                ("reltuples", F4),
                ("relallvisible", I4),
                ("reltoastrelid", Oid),
                ("relhasindex", Bool),
                ("relisshared", Bool),
                ("relpersistence", Text),
                ("relkind", Text),
                ("relnatts", I2),
                ("relchecks", I2),
                ("relhasrules", Bool),
                ("relhastriggers", Bool),
                ("relhassubclass", Bool),
                ("relrowsecurity", Bool),
                ("relforcerowsecurity", Bool),
                ("relispopulated", Bool),
                ("relreplident", Text),
                ("relispartition", Bool),
                ("relrewrite", Oid),
                ("relfrozenxid", Oid),
                ("relminmxid", Oid),
                ("relacl", TextArray),
                ("reloptions", TextArray),
                ("relpartbound", Text),
            ],
        ),
        Table::new(
            "pg_attribute",
            &[
                ("attrelid", Oid),
                ("attname", Text),
                ("atttypid", Oid),
                ("attstattarget", I4),
                ("attlen", I2),
                ("attnum", I2),
                ("attndims", I4),
                ("attcacheoff", I4),
                ("atttypmod", I4),
                ("attbyval", Bool),
                ("attalign", Text),
                ("attstorage", Text),
                ("attcompression", Text),
                ("attnotnull", Bool),
                ("atthasdef", Bool),
                ("atthasmissing", Bool),
                ("attidentity", Text),
                ("attgenerated", Text),
                ("attisdropped", Bool),
                ("attislocal", Bool),
                ("attinhcount", I4),
                ("attcollation", Oid),
                ("attacl", TextArray),
                ("attoptions", TextArray),
                ("attfdwoptions", TextArray),
                ("attmissingval", Text),
            ],
        ),
        Table::new(
            "pg_type",
            &[
                ("oid", Oid),
                ("typname", Text),
                ("typnamespace", Oid),
                ("typowner", Oid),
                ("typlen", I2),
                ("typbyval", Bool),
                ("typtype", Text),
                ("typcategory", Text),
                ("typispreferred", Bool),
                ("typisdefined", Bool),
                ("typdelim", Text),
                ("typrelid", Oid),
                ("typsubscript", Text),
                ("typelem", Oid),
                ("typarray", Oid),
                ("typinput", Text),
                ("typoutput", Text),
                ("typreceive", Text),
                ("typsend", Text),
                ("typmodin", Text),
                ("typmodout", Text),
                ("typanalyze", Text),
                ("typalign", Text),
                ("typstorage", Text),
                ("typnotnull", Bool),
                ("typbasetype", Oid),
                ("typtypmod", I4),
                ("typndims", I4),
                ("typcollation", Oid),
                ("typdefaultbin", Text),
                ("typdefault", Text),
                ("typacl", TextArray),
            ],
        ),
        Table::new(
            "pg_proc",
            &[
                ("oid", Oid),
                ("proname", Text),
                ("pronamespace", Oid),
                ("proowner", Oid),
                ("prolang", Oid),
                ("procost", F4),
                ("prorows", F4),
                ("provariadic", Oid),
                ("prosupport", Text),
                ("prokind", Text),
                ("prosecdef", Bool),
                ("proleakproof", Bool),
                ("proisstrict", Bool),
                ("proretset", Bool),
                ("provolatile", Text),
                ("proparallel", Text),
                ("pronargs", I2),
                ("pronargdefaults", I2),
                ("prorettype", Oid),
                ("proargtypes", Text),
                ("proallargtypes", TextArray),
                ("proargmodes", TextArray),
                ("proargnames", TextArray),
                ("proargdefaults", Text),
                ("protrftypes", TextArray),
                ("prosrc", Text),
                ("probin", Text),
                ("prosqlbody", Text),
                ("proconfig", TextArray),
                ("proacl", TextArray),
            ],
        ),
        Table::new(
            "pg_database",
            &[
                ("oid", Oid),
                ("datname", Text),
                ("datdba", Oid),
                ("encoding", I4),
                ("datlocprovider", Text),
                ("datistemplate", Bool),
                ("datallowconn", Bool),
                ("datconnlimit", I4),
                ("datfrozenxid", Oid),
                ("datminmxid", Oid),
                ("dattablespace", Oid),
                ("datcollate", Text),
                ("datctype", Text),
                ("daticulocale", Text),
                ("datcollversion", Text),
                ("datacl", TextArray),
            ],
        ),
        Table::new(
            "pg_roles",
            &[
                ("rolname", Text),
                ("rolsuper", Bool),
                ("rolinherit", Bool),
                ("rolcreaterole", Bool),
                ("rolcreatedb", Bool),
                ("rolcanlogin", Bool),
                ("rolreplication", Bool),
                ("rolconnlimit", I4),
                ("rolpassword", Text),
                ("rolvaliduntil", Text),
                ("rolbypassrls", Bool),
                ("rolconfig", TextArray),
                ("oid", Oid),
            ],
        ),
        Table::new(
            "pg_user",
            &[
                ("usename", Text),
                ("usesysid", Oid),
                ("usecreatedb", Bool),
                ("usesuper", Bool),
                ("userepl", Bool),
                ("usebypassrls", Bool),
                ("passwd", Text),
                ("valuntil", Text),
                ("useconfig", TextArray),
            ],
        ),
        Table::new(
            "pg_description",
            &[
                ("objoid", Oid),
                ("classoid", Oid),
                ("objsubid", I4),
                ("description", Text),
            ],
        ),
        Table::new(
            "pg_shdescription",
            &[("objoid", Oid), ("classoid", Oid), ("description", Text)],
        ),
        Table::new(
            "pg_tablespace",
            &[
                ("oid", Oid),
                ("spcname", Text),
                ("spcowner", Oid),
                ("spcacl", TextArray),
                ("spcoptions", TextArray),
            ],
        ),
        Table::new(
            "pg_am",
            &[
                ("oid", Oid),
                ("amname", Text),
                ("amhandler", Text),
                ("amtype", Text),
            ],
        ),
        Table::new(
            "pg_collation",
            &[
                ("oid", Oid),
                ("collname", Text),
                ("collnamespace", Oid),
                ("collowner", Oid),
                ("collprovider", Text),
                ("collisdeterministic", Bool),
                ("collencoding", I4),
                ("collcollate", Text),
                ("collctype", Text),
            ],
        ),
        Table::new(
            "pg_index",
            &[
                ("indexrelid", Oid),
                ("indrelid", Oid),
                ("indnatts", I2),
                ("indnkeyatts", I2),
                ("indisunique", Bool),
                ("indnullsnotdistinct", Bool),
                ("indisprimary", Bool),
                ("indisexclusion", Bool),
                ("indimmediate", Bool),
                ("indisclustered", Bool),
                ("indisvalid", Bool),
                ("indcheckxmin", Bool),
                ("indisready", Bool),
                ("indislive", Bool),
                ("indisreplident", Bool),
                ("indkey", I2Array),
                ("indcollation", OidArray),
                ("indclass", OidArray),
                ("indoption", I2Array),
                ("indexprs", Text),
                ("indpred", Text),
            ],
        ),
        Table::new(
            "pg_constraint",
            &[
                ("oid", Oid),
                ("conname", Text),
                ("connamespace", Oid),
                ("contype", Text),
                ("condeferrable", Bool),
                ("condeferred", Bool),
                ("convalidated", Bool),
                ("conrelid", Oid),
                ("contypid", Oid),
                ("conindid", Oid),
                ("conparentid", Oid),
                ("confrelid", Oid),
                ("confupdtype", Text),
                ("confdeltype", Text),
                ("confmatchtype", Text),
                ("conislocal", Bool),
                ("coninhcount", I4),
                ("connoinherit", Bool),
                ("conkey", I2Array),
                ("confkey", I2Array),
                ("conbin", Text),
            ],
        ),
        Table::new(
            "pg_attrdef",
            &[
                ("oid", Oid),
                ("adrelid", Oid),
                ("adnum", I2),
                ("adbin", Text),
            ],
        ),
        Table::new(
            "pg_inherits",
            &[
                ("inhrelid", Oid),
                ("inhparent", Oid),
                ("inhseqno", I4),
                ("inhdetachpending", Bool),
            ],
        ),
        Table::new(
            "pg_trigger",
            &[
                ("oid", Oid),
                ("tgrelid", Oid),
                ("tgparentid", Oid),
                ("tgname", Text),
                ("tgfoid", Oid),
                ("tgtype", I2),
                ("tgenabled", Text),
                ("tgisinternal", Bool),
                ("tgconstrrelid", Oid),
                ("tgconstrindid", Oid),
                ("tgconstraint", Oid),
                ("tgdeferrable", Bool),
                ("tginitdeferred", Bool),
                ("tgnargs", I2),
            ],
        ),
        Table::new(
            "pg_rewrite",
            &[
                ("oid", Oid),
                ("rulename", Text),
                ("ev_class", Oid),
                ("ev_type", Text),
                ("ev_enabled", Text),
                ("is_instead", Bool),
            ],
        ),
        Table::new(
            "pg_depend",
            &[
                ("classid", Oid),
                ("objid", Oid),
                ("objsubid", I4),
                ("refclassid", Oid),
                ("refobjid", Oid),
                ("refobjsubid", I4),
                ("deptype", Text),
            ],
        ),
        Table::new(
            "pg_policy",
            &[
                ("oid", Oid),
                ("polname", Text),
                ("polrelid", Oid),
                ("polcmd", Text),
                ("polpermissive", Bool),
                ("polroles", OidArray),
                ("polqual", Text),
                ("polwithcheck", Text),
            ],
        ),
        Table::new(
            "pg_statistic_ext",
            &[
                ("oid", Oid),
                ("stxrelid", Oid),
                ("stxname", Text),
                ("stxnamespace", Oid),
                ("stxowner", Oid),
                ("stxstattarget", I4),
                ("stxkeys", Text),
                ("stxkind", TextArray),
                ("stxexprs", Text),
            ],
        ),
        Table::new(
            "pg_publication",
            &[
                ("oid", Oid),
                ("pubname", Text),
                ("pubowner", Oid),
                ("puballtables", Bool),
                ("pubinsert", Bool),
                ("pubupdate", Bool),
                ("pubdelete", Bool),
                ("pubtruncate", Bool),
                ("pubviaroot", Bool),
            ],
        ),
        Table::new(
            "pg_publication_rel",
            &[
                ("oid", Oid),
                ("prpubid", Oid),
                ("prrelid", Oid),
                ("prqual", Text),
                ("prattrs", Text),
            ],
        ),
        Table::new(
            "pg_publication_namespace",
            &[("oid", Oid), ("pnpubid", Oid), ("pnnspid", Oid)],
        ),
        Table::new(
            "pg_extension",
            &[
                ("oid", Oid),
                ("extname", Text),
                ("extowner", Oid),
                ("extnamespace", Oid),
                ("extrelocatable", Bool),
                ("extversion", Text),
                ("extconfig", TextArray),
                ("extcondition", TextArray),
            ],
        ),
        Table::new(
            "pg_enum",
            &[
                ("oid", Oid),
                ("enumtypid", Oid),
                ("enumsortorder", F4),
                ("enumlabel", Text),
            ],
        ),
        Table::new(
            "pg_range",
            &[
                ("rngtypid", Oid),
                ("rngsubtype", Oid),
                ("rngmultitypid", Oid),
                ("rngcollation", Oid),
                ("rngsubopc", Oid),
                ("rngcanonical", Text),
                ("rngsubdiff", Text),
            ],
        ),
        Table::new(
            "pg_sequence",
            &[
                ("seqrelid", Oid),
                ("seqtypid", Oid),
                ("seqstart", I8),
                ("seqincrement", I8),
                ("seqmax", I8),
                ("seqmin", I8),
                ("seqcache", I8),
                ("seqcycle", Bool),
            ],
        ),
        Table::new(
            "pg_event_trigger",
            &[
                ("oid", Oid),
                ("evtname", Text),
                ("evtevent", Text),
                ("evtowner", Oid),
                ("evtfoid", Oid),
                ("evtenabled", Text),
                ("evttags", TextArray),
            ],
        ),
        Table::new(
            "pg_foreign_table",
            &[
                ("ftrelid", Oid),
                ("ftserver", Oid),
                ("ftoptions", TextArray),
            ],
        ),
        Table::new(
            "pg_partitioned_table",
            &[
                ("partrelid", Oid),
                ("partstrat", Text),
                ("partnatts", I2),
                ("partdefid", Oid),
                ("partattrs", Text),
            ],
        ),
        Table::new(
            "pg_tables",
            &[
                ("schemaname", Text),
                ("tablename", Text),
                ("tableowner", Text),
                ("tablespace", Text),
                ("hasindexes", Bool),
                ("hasrules", Bool),
                ("hastriggers", Bool),
                ("rowsecurity", Bool),
            ],
        ),
        Table::new(
            "pg_views",
            &[
                ("schemaname", Text),
                ("viewname", Text),
                ("viewowner", Text),
                ("definition", Text),
            ],
        ),
        Table::new(
            "pg_matviews",
            &[
                ("schemaname", Text),
                ("matviewname", Text),
                ("matviewowner", Text),
                ("tablespace", Text),
                ("hasindexes", Bool),
                ("ispopulated", Bool),
                ("definition", Text),
            ],
        ),
        Table::new(
            "pg_indexes",
            &[
                ("schemaname", Text),
                ("tablename", Text),
                ("indexname", Text),
                ("tablespace", Text),
                ("indexdef", Text),
            ],
        ),
        Table::new(
            "pg_stat_user_tables",
            &[
                ("relid", Oid),
                ("schemaname", Text),
                ("relname", Text),
                ("seq_scan", I8),
                ("n_live_tup", I8),
                ("n_dead_tup", I8),
            ],
        ),
        Table::new(
            "pg_settings",
            &[
                ("name", Text),
                ("setting", Text),
                ("unit", Text),
                ("category", Text),
                ("short_desc", Text),
                ("extra_desc", Text),
                ("context", Text),
                ("vartype", Text),
                ("source", Text),
                ("min_val", Text),
                ("max_val", Text),
                ("enumvals", TextArray),
                ("boot_val", Text),
                ("reset_val", Text),
                ("pending_restart", Bool),
            ],
        ),
        Table::new(
            "pg_auth_members",
            &[
                ("oid", Oid),
                ("roleid", Oid),
                ("member", Oid),
                ("grantor", Oid),
                ("admin_option", Bool),
            ],
        ),
        Table::new(
            "pg_language",
            &[
                ("oid", Oid),
                ("lanname", Text),
                ("lanowner", Oid),
                ("lanispl", Bool),
                ("lanpltrusted", Bool),
                ("lanplcallfoid", Oid),
                ("laninline", Oid),
                ("lanvalidator", Oid),
                ("lanacl", TextArray),
            ],
        ),
        Table::new(
            "pg_conversion",
            &[
                ("oid", Oid),
                ("conname", Text),
                ("connamespace", Oid),
                ("conowner", Oid),
                ("conforencoding", I4),
                ("contoencoding", I4),
                ("conproc", Text),
                ("condefault", Bool),
            ],
        ),
        Table::new(
            "pg_policies",
            &[
                ("schemaname", Text),
                ("tablename", Text),
                ("policyname", Text),
                ("permissive", Text),
                ("roles", TextArray),
                ("cmd", Text),
                ("qual", Text),
                ("with_check", Text),
            ],
        ),
        Table::new(
            "pg_stat_activity",
            &[
                ("datid", Oid),
                ("datname", Text),
                ("pid", I4),
                ("usesysid", Oid),
                ("usename", Text),
                ("application_name", Text),
                ("client_addr", Text),
                ("client_port", I4),
                ("state", Text),
                ("query", Text),
            ],
        ),
        Table::new(
            "pg_opclass",
            &[
                ("oid", Oid),
                ("opcmethod", Oid),
                ("opcname", Text),
                ("opcnamespace", Oid),
                ("opcowner", Oid),
                ("opcfamily", Oid),
                ("opcintype", Oid),
                ("opcdefault", Bool),
                ("opckeytype", Oid),
            ],
        ),
        Table::new(
            "pg_locks",
            &[
                ("locktype", Text),
                ("database", Oid),
                ("relation", Oid),
                ("pid", I4),
                ("mode", Text),
                ("granted", Bool),
            ],
        ),
    ]
}

/// information_schema's views: the columns clients read.
fn information_schema_tables() -> Vec<Table> {
    vec![
        Table::new(
            "schemata",
            &[
                ("catalog_name", Text),
                ("schema_name", Text),
                ("schema_owner", Text),
                ("default_character_set_catalog", Text),
                ("default_character_set_schema", Text),
                ("default_character_set_name", Text),
                ("sql_path", Text),
            ],
        ),
        Table::new(
            "tables",
            &[
                ("table_catalog", Text),
                ("table_schema", Text),
                ("table_name", Text),
                ("table_type", Text),
                ("self_referencing_column_name", Text),
                ("reference_generation", Text),
                ("user_defined_type_catalog", Text),
                ("user_defined_type_schema", Text),
                ("user_defined_type_name", Text),
                ("is_insertable_into", Text),
                ("is_typed", Text),
                ("commit_action", Text),
            ],
        ),
        Table::new(
            "columns",
            &[
                ("table_catalog", Text),
                ("table_schema", Text),
                ("table_name", Text),
                ("column_name", Text),
                ("ordinal_position", I4),
                ("column_default", Text),
                ("is_nullable", Text),
                ("data_type", Text),
                ("character_maximum_length", I4),
                ("character_octet_length", I4),
                ("numeric_precision", I4),
                ("numeric_precision_radix", I4),
                ("numeric_scale", I4),
                ("datetime_precision", I4),
                ("interval_type", Text),
                ("interval_precision", I4),
                ("character_set_catalog", Text),
                ("character_set_schema", Text),
                ("character_set_name", Text),
                ("collation_catalog", Text),
                ("collation_schema", Text),
                ("collation_name", Text),
                ("domain_catalog", Text),
                ("domain_schema", Text),
                ("domain_name", Text),
                ("udt_catalog", Text),
                ("udt_schema", Text),
                ("udt_name", Text),
                ("scope_catalog", Text),
                ("scope_schema", Text),
                ("scope_name", Text),
                ("maximum_cardinality", I4),
                ("dtd_identifier", Text),
                ("is_self_referencing", Text),
                ("is_identity", Text),
                ("identity_generation", Text),
                ("identity_start", Text),
                ("identity_increment", Text),
                ("identity_maximum", Text),
                ("identity_minimum", Text),
                ("identity_cycle", Text),
                ("is_generated", Text),
                ("generation_expression", Text),
                ("is_updatable", Text),
            ],
        ),
        Table::new(
            "views",
            &[
                ("table_catalog", Text),
                ("table_schema", Text),
                ("table_name", Text),
                ("view_definition", Text),
                ("check_option", Text),
                ("is_updatable", Text),
                ("is_insertable_into", Text),
            ],
        ),
        Table::new(
            "table_constraints",
            &[
                ("constraint_catalog", Text),
                ("constraint_schema", Text),
                ("constraint_name", Text),
                ("table_catalog", Text),
                ("table_schema", Text),
                ("table_name", Text),
                ("constraint_type", Text),
                ("is_deferrable", Text),
                ("initially_deferred", Text),
                ("enforced", Text),
                ("nulls_distinct", Text),
            ],
        ),
        Table::new(
            "key_column_usage",
            &[
                ("constraint_catalog", Text),
                ("constraint_schema", Text),
                ("constraint_name", Text),
                ("table_catalog", Text),
                ("table_schema", Text),
                ("table_name", Text),
                ("column_name", Text),
                ("ordinal_position", I4),
                ("position_in_unique_constraint", I4),
            ],
        ),
        Table::new(
            "referential_constraints",
            &[
                ("constraint_catalog", Text),
                ("constraint_schema", Text),
                ("constraint_name", Text),
                ("unique_constraint_catalog", Text),
                ("unique_constraint_schema", Text),
                ("unique_constraint_name", Text),
                ("match_option", Text),
                ("update_rule", Text),
                ("delete_rule", Text),
            ],
        ),
        Table::new(
            "routines",
            &[
                ("specific_catalog", Text),
                ("specific_schema", Text),
                ("specific_name", Text),
                ("routine_catalog", Text),
                ("routine_schema", Text),
                ("routine_name", Text),
                ("routine_type", Text),
                ("data_type", Text),
                ("external_language", Text),
            ],
        ),
        Table::new(
            "table_privileges",
            &[
                ("grantor", Text),
                ("grantee", Text),
                ("table_catalog", Text),
                ("table_schema", Text),
                ("table_name", Text),
                ("privilege_type", Text),
                ("is_grantable", Text),
                ("with_hierarchy", Text),
            ],
        ),
        Table::new(
            "character_sets",
            &[
                ("character_set_catalog", Text),
                ("character_set_schema", Text),
                ("character_set_name", Text),
                ("character_repertoire", Text),
                ("form_of_use", Text),
                ("default_collate_catalog", Text),
                ("default_collate_schema", Text),
                ("default_collate_name", Text),
            ],
        ),
    ]
}
