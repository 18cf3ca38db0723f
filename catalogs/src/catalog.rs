//! The validated catalog: bureaus, their datasets, topic libraries, principals and limits.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::SessionState;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionConfig;

use crate::config::files::{RawCatalogFile, RawSource, RawTopic, Word};
use crate::config::security::{SecurityCatalog, sha256_hex};
use crate::error::{ConfigErrors, Error, Result};
use crate::sources::database::{self, Database, DatabaseSettings, TableLoadError};
use crate::sources::files as source;

/// The one catalog clients see.
pub const BUND_CATALOG: &str = "bund";
/// The schema that holds the topic libraries.
pub const TOPIC_SCHEMA: &str = "topic";
/// The schema that holds open-data datasets.
pub const OPEN_SCHEMA: &str = "open";
/// The schema of Bund's own tables (the audit log).
pub const SYSTEM_SCHEMA: &str = "system";
/// The audit log's table name in [`SYSTEM_SCHEMA`].
pub const AUDIT_LOG_TABLE: &str = "audit_log";

/// The columns of `system.audit_log`: one JSON object per line in the audit files.
pub fn audit_log_schema() -> SchemaRef {
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    let list = |name: &str| {
        Field::new(
            name,
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        )
    };
    Arc::new(Schema::new(vec![
        Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Millisecond, Some("+00:00".into())),
            false,
        ),
        text("request_id", false),
        text("principal", false),
        list("roles"),
        text("rpc", false),
        text("client", true),
        text("statement", true),
        Field::new("statement_bytes", DataType::Int64, true),
        text("statement_sha256", true),
        list("datasets"),
        list("policies"),
        Field::new("rows", DataType::Int64, true),
        Field::new("bytes", DataType::Int64, true),
        Field::new("duration_ms", DataType::Float64, true),
        text("outcome", false),
        text("code", true),
        text("error", true),
        Field::new("suppressed", DataType::Int64, true),
        text("replica", true),
    ]))
}
/// Schema names that bureaus cannot take.
const RESERVED_SCHEMAS: &[&str] = &[
    TOPIC_SCHEMA,
    OPEN_SCHEMA,
    "system",
    "information_schema",
    "public",
];

/// The city's open-data classes (无条件开放 / 有条件开放 / 不予开放).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenLevel {
    Unconditional,
    Conditional,
    NotOpen,
}

impl std::str::FromStr for OpenLevel {
    type Err = ();

    fn from_str(s: &str) -> std::result::Result<Self, ()> {
        match s {
            "unconditional" => Ok(Self::Unconditional),
            "conditional" => Ok(Self::Conditional),
            "not_open" => Ok(Self::NotOpen),
            _ => Err(()),
        }
    }
}

impl OpenLevel {
    /// The level of an entry, or the error that names the unknown word.
    pub(crate) fn of(word: &Word<Self>) -> std::result::Result<Self, String> {
        match word {
            Word::Known(level) => Ok(*level),
            Word::Unknown(w) => Err(format!(
                "unknown open level `{w}`; use unconditional, conditional or not_open"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unconditional => "unconditional",
            Self::Conditional => "conditional",
            Self::NotOpen => "not_open",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatasetKind {
    /// A bureau's table, read from its source.
    Table,
    /// A topic library: a view over bureau tables.
    Topic,
    /// An open-data dataset (schema `open`): a view over bureau tables and topics.
    Open,
}

#[derive(Debug, Clone)]
pub struct Bureau {
    pub id: String,
    pub name_zh: String,
    pub name_en: String,
}

/// A dataset clients can query: `<schema>.<name>`.
#[derive(Debug)]
pub struct Dataset {
    pub schema: String,
    pub name: String,
    pub kind: DatasetKind,
    pub description: String,
    /// The bureau that owns the data.
    pub owner: String,
    pub tags: Vec<String>,
    pub open_level: OpenLevel,
    /// The view's SQL, for topic libraries and open datasets.
    pub sql: Option<String>,
    /// The view's plan, over sealed tables (the security rewrite opens them per principal).
    pub view: Option<LogicalPlan>,
    /// Bureau tables: the source. Views: a sealed table (never scanned).
    pub provider: Arc<dyn TableProvider>,
}

impl Dataset {
    /// `schema.name`, how grants and policies name the dataset.
    pub fn key(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    pub fn arrow_schema(&self) -> SchemaRef {
        self.provider.schema()
    }
}

/// A topic library or an open dataset as `catalog.toml` declares it, its names checked.
#[derive(Debug, Clone)]
pub struct ViewDefinition {
    pub kind: DatasetKind,
    pub name: String,
    pub owner: String,
    pub open_level: OpenLevel,
    pub sql: String,
    pub description: String,
    pub tags: Vec<String>,
    /// How errors name it: `topic "x"` or `open "x"`.
    pub entry: String,
}

impl ViewDefinition {
    /// The schema it is served in: `topic` or `open`.
    pub fn schema(&self) -> &'static str {
        match self.kind {
            DatasetKind::Open => OPEN_SCHEMA,
            _ => TOPIC_SCHEMA,
        }
    }
}

/// Where to read the configuration and the data from, and what the server allows the
/// query runtime (from its `server.toml`).
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub config_dir: PathBuf,
    /// Relative file locations in `catalog.toml` are resolved against this directory.
    pub data_dir: PathBuf,
    /// Memory all running queries may hold together; `None`: no limit.
    pub memory_limit_bytes: Option<u64>,
    /// Where the audit log is, served as `system.audit_log`.
    pub audit_dir: PathBuf,
    /// Where the `*_env` settings (database URLs, S3 credentials, secrets) are read.
    pub env: Environment,
}

/// The environment variables a configuration's `*_env` settings name: the process's, with
/// values set here taking precedence. A server started in-process (tests, an embedding
/// application) passes its sources' URLs here instead of changing the process's
/// environment, which other threads read.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    set: Arc<BTreeMap<String, String>>,
}

impl Environment {
    /// This environment with `name` set to `value`.
    #[must_use]
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.set).insert(name.into(), value.into());
        self
    }

    /// The value of `name`: set here, or else the process's.
    pub fn var(&self, name: &str) -> Option<String> {
        match self.set.get(name) {
            Some(v) => Some(v.clone()),
            None => std::env::var(name).ok(),
        }
    }
}

impl LoadOptions {
    /// `config_dir` with its data in `data_dir`, no memory limit and the audit log in
    /// `data_dir/audit`.
    pub fn new(config_dir: PathBuf, data_dir: PathBuf) -> Self {
        let audit_dir = data_dir.join("audit");
        Self {
            config_dir,
            data_dir,
            memory_limit_bytes: None,
            audit_dir,
            env: Environment::default(),
        }
    }
}

/// Everything loaded from one configuration directory, validated.
pub struct Catalog {
    pub bureaus: Vec<Bureau>,
    /// Bureau tables in file order, then topic libraries.
    pub datasets: Vec<Arc<Dataset>>,
    pub security: SecurityCatalog,
    /// Topic libraries, then open datasets, as written: the planner plans them over the
    /// datasets above and adds them to `datasets` (`bund_planner::access`).
    pub views: Vec<ViewDefinition>,
    /// `schema.name` of tables left out because their source could not be reached at load:
    /// grants and policies naming them are skipped (the warnings say why), not refused.
    pub unavailable: HashSet<String>,
    /// Identifies this version of the configuration: a hash of the files' contents. Tickets
    /// and prepared handles carry it and are refused under another version.
    pub version: String,
    runtime: Arc<RuntimeEnv>,
    /// Sources that could not be reached while loading (each names the file, the entry and
    /// the source): their tables with declared columns are served and fail until the source
    /// answers; those without are left out until a reload finds the source up. `bund check`
    /// reports these as errors, `bund serve` logs them and serves the rest.
    pub warnings: Vec<String>,
}

/// Database sources while loading.
#[derive(Default)]
struct Sources {
    databases: HashMap<String, Arc<dyn Database>>,
    /// `schema.name` of tables left out because their database could not be asked.
    unavailable: HashSet<String>,
    warnings: Vec<String>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("bureaus", &self.bureaus.len())
            .field("datasets", &self.datasets.len())
            .field("principals", &self.security.len())
            .field("version", &self.version)
            .finish()
    }
}

/// Session settings every Bund session shares: one `bund` catalog, no default catalog of
/// DataFusion's own, no file statistics (they would answer COUNT/MIN/MAX from metadata),
/// and Parquet late materialisation: a scan's predicate is evaluated while its columns are
/// decoded, so a lookup decodes the other columns of the matching rows only. Under a
/// policy that predicate is the row filter alone; the security barriers keep every
/// predicate of the user's above it.
pub fn session_config() -> SessionConfig {
    let mut config = SessionConfig::new()
        .with_default_catalog_and_schema(BUND_CATALOG, TOPIC_SCHEMA)
        .with_create_default_catalog_and_schema(false)
        .with_information_schema(true)
        .with_collect_statistics(false);
    let parquet = &mut config.options_mut().execution.parquet;
    parquet.schema_force_view_types = false;
    parquet.pushdown_filters = true;
    parquet.reorder_filters = true;
    config.options_mut().sql_parser.map_string_types_to_utf8view = false;
    config
}

/// Checks a name that becomes part of SQL (a schema, table or database name); false, with
/// the error pushed, when it is not one.
fn check_identifier(
    name: &str,
    path: &Path,
    entry: &str,
    field: &str,
    errors: &mut ConfigErrors,
) -> bool {
    let valid = valid_identifier(name);
    if !valid {
        errors.push(
            path,
            entry,
            field,
            "must be lower-case letters, digits and _, starting with a letter",
        );
    }
    valid
}

fn valid_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && s.len() <= 63
}

/// A session with Bund's configuration and every Bund function (those that only policies
/// may call included): what loading plans with.
fn load_state(runtime: &Arc<RuntimeEnv>, security: &SecurityCatalog) -> SessionState {
    let mut state = SessionStateBuilder::new()
        .with_config(session_config())
        .with_runtime_env(Arc::clone(runtime))
        .with_default_features()
        .build();
    bund_udfs::register_all(&mut state, security.secrets());
    state
}

impl Catalog {
    /// Reads `catalog.toml` and `security.toml` from the config directory and opens every
    /// source (`server.toml` is the server's; it only enters the configuration's version). Problems go to `errors`, all of them, and the
    /// catalog is returned with what could be read, so that the planner, which plans the
    /// views and resolves the policies (`bund_planner::Engine::load`), reports its own
    /// problems beside these. `Err` only when not even that is possible.
    pub async fn read(opts: &LoadOptions, errors: &mut ConfigErrors) -> Result<Self> {
        let catalog_path = opts.config_dir.join("catalog.toml");
        let security =
            SecurityCatalog::load(&opts.config_dir.join("security.toml"), &opts.env, errors);

        let raw: Option<RawCatalogFile> = match std::fs::read_to_string(&catalog_path) {
            Ok(text) => match toml::from_str(&text) {
                Ok(r) => Some(r),
                Err(e) => {
                    errors.push(&catalog_path, "", "", e.to_string());
                    None
                }
            },
            Err(e) => {
                errors.push(&catalog_path, "", "", format!("cannot read: {e}"));
                None
            }
        };

        let mut stores = Vec::new();
        let mut buckets = Vec::new();
        if let Some(raw) = &raw {
            for s3 in &raw.s3 {
                let entry = format!("s3 \"{}\"", s3.bucket);
                if buckets.contains(&s3.bucket) {
                    errors.push(&catalog_path, &entry, "bucket", "duplicate bucket");
                    continue;
                }
                buckets.push(s3.bucket.clone());
                match source::s3_store(s3, &opts.env) {
                    Ok(store) => stores.push(store),
                    Err(e) => errors.push(&catalog_path, &entry, e.field, e.message),
                }
            }
        }
        let mut runtime = RuntimeEnvBuilder::new();
        if let Some(limit) = opts.memory_limit_bytes {
            runtime = runtime.with_memory_limit(usize::try_from(limit).unwrap_or(usize::MAX), 1.0);
        }
        let runtime = runtime.build_arc().map_err(|e| {
            let mut errs = ConfigErrors::default();
            errs.push(
                &catalog_path,
                "",
                "",
                format!("cannot start the query runtime: {e}"),
            );
            Error::Invalid(errs)
        })?;
        for (url, store) in stores {
            runtime.register_object_store(&url, store);
        }

        let state = load_state(&runtime, &security);

        let mut bureaus = Vec::new();
        let mut datasets = Vec::new();
        let mut sources = Sources::default();
        let mut views = Vec::new();
        if let Some(raw) = &raw {
            sources.databases = Self::load_databases(raw, &catalog_path, opts, errors);
            Self::load_bureaus(
                raw,
                &catalog_path,
                &opts.data_dir,
                &buckets,
                &state,
                errors,
                &mut sources,
                &mut bureaus,
                &mut datasets,
            )
            .await;
            match source::json_lines_dir(&opts.audit_dir, audit_log_schema()) {
                Ok(provider) => datasets.push(Arc::new(Dataset {
                    schema: SYSTEM_SCHEMA.to_string(),
                    name: AUDIT_LOG_TABLE.to_string(),
                    kind: DatasetKind::Table,
                    description: "Every query and refusal: who, what, which datasets and policies, rows, bytes, time, outcome.".to_string(),
                    owner: String::new(),
                    tags: vec!["audit".to_string()],
                    open_level: OpenLevel::NotOpen,
                    sql: None,
                    view: None,
                    provider,
                })),
                Err(m) => errors.push(
                    &opts.config_dir.join("server.toml"),
                    "",
                    "audit_dir",
                    m,
                ),
            }
            views = Self::view_definitions(raw, &catalog_path, &bureaus, errors);
        }

        Ok(Self {
            bureaus,
            datasets,
            security,
            views,
            unavailable: sources.unavailable,
            version: config_version(&opts.config_dir),
            runtime,
            warnings: sources.warnings,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn load_bureaus(
        raw: &RawCatalogFile,
        path: &Path,
        data_dir: &Path,
        buckets: &[String],
        state: &SessionState,
        errors: &mut ConfigErrors,
        sources: &mut Sources,
        bureaus: &mut Vec<Bureau>,
        datasets: &mut Vec<Arc<Dataset>>,
    ) {
        let mut ids = HashSet::new();
        for b in &raw.bureau {
            let entry = format!("bureau \"{}\"", b.id);
            if !valid_identifier(&b.id) {
                errors.push(
                    path,
                    &entry,
                    "id",
                    "must be lower-case letters, digits and _, starting with a letter",
                );
            } else if RESERVED_SCHEMAS.contains(&b.id.as_str()) {
                errors.push(path, &entry, "id", format!("`{}` is reserved", b.id));
            }
            if !ids.insert(b.id.as_str()) {
                errors.push(path, &entry, "id", "duplicate bureau id");
                continue;
            }
            bureaus.push(Bureau {
                id: b.id.clone(),
                name_zh: b.name_zh.clone(),
                name_en: b.name_en.clone(),
            });
            let mut names = HashSet::new();
            for t in &b.table {
                let entry = format!("bureau \"{}\" table \"{}\"", b.id, t.name);
                check_identifier(&t.name, path, &entry, "name", errors);
                if !names.insert(t.name.as_str()) {
                    errors.push(path, &entry, "name", "duplicate table name in this bureau");
                    continue;
                }
                let open_level = match OpenLevel::of(&t.open_level) {
                    Ok(level) => level,
                    Err(m) => {
                        errors.push(path, &entry, "open_level", m);
                        continue;
                    }
                };
                let provider = match &t.source {
                    RawSource::Database {
                        database,
                        table,
                        query,
                    } => {
                        let declared = match t.columns.as_deref().map(source::declared_schema) {
                            None => None,
                            Some(Ok(s)) => Some(s),
                            Some(Err(e)) => {
                                errors.push(path, &entry, e.field, e.message);
                                continue;
                            }
                        };
                        match database::remote_table(
                            &sources.databases,
                            database,
                            table.as_deref(),
                            query.as_deref(),
                            declared,
                        )
                        .await
                        {
                            Ok((provider, warning)) => {
                                if let Some(w) = warning {
                                    sources.warnings.push(format!(
                                        "{}: {entry}: {w} (listed with its declared columns; its queries fail until the source answers)",
                                        path.display()
                                    ));
                                }
                                Ok(provider as Arc<dyn TableProvider>)
                            }
                            Err(TableLoadError::Config(field, message)) => {
                                Err(source::FieldError { field, message })
                            }
                            Err(TableLoadError::Unavailable(m)) => {
                                sources.warnings.push(format!(
                                    "{}: {entry}: {m} (left out until a reload finds the source; declare its columns to keep it listed)",
                                    path.display()
                                ));
                                sources.unavailable.insert(format!("{}.{}", b.id, t.name));
                                continue;
                            }
                        }
                    }
                    file => {
                        source::file_table(state, file, t.columns.as_deref(), data_dir, buckets)
                            .await
                    }
                };
                match provider {
                    Ok(provider) => datasets.push(Arc::new(Dataset {
                        schema: b.id.clone(),
                        name: t.name.clone(),
                        kind: DatasetKind::Table,
                        description: t.description.clone(),
                        owner: b.id.clone(),
                        tags: t.tags.clone(),
                        open_level,
                        sql: None,
                        view: None,
                        provider,
                    })),
                    Err(e) => errors.push(path, &entry, e.field, e.message),
                }
            }
        }
    }

    /// The `[[database]]` entries, checked; nothing is connected yet.
    fn load_databases(
        raw: &RawCatalogFile,
        path: &Path,
        opts: &LoadOptions,
        errors: &mut ConfigErrors,
    ) -> HashMap<String, Arc<dyn Database>> {
        let mut out = HashMap::new();
        for d in &raw.database {
            let entry = format!("database \"{}\"", d.name);
            if !check_identifier(&d.name, path, &entry, "name", errors) {
                continue;
            }
            if out.contains_key(&d.name) {
                errors.push(path, &entry, "name", "duplicate database name");
                continue;
            }
            match DatabaseSettings::from_raw(d, &opts.data_dir, &opts.env).and_then(database::open)
            {
                Ok(db) => {
                    out.insert(d.name.clone(), db);
                }
                Err((field, message)) => errors.push(path, &entry, field, message),
            }
        }
        out
    }

    /// The `[[topic]]` entries, then the `[[open]]` ones, their names, owners and open levels
    /// checked; their SQL is the planner's to check.
    fn view_definitions(
        raw: &RawCatalogFile,
        path: &Path,
        bureaus: &[Bureau],
        errors: &mut ConfigErrors,
    ) -> Vec<ViewDefinition> {
        let mut out = Vec::new();
        for (entries, kind, what) in [
            (&raw.topic, DatasetKind::Topic, "topic"),
            (&raw.open, DatasetKind::Open, "open"),
        ] {
            let mut names = HashSet::new();
            for t in entries.iter() {
                if let Some(v) =
                    Self::view_definition(t, kind, what, path, bureaus, &mut names, errors)
                {
                    out.push(v);
                }
            }
        }
        out
    }

    fn view_definition<'a>(
        t: &'a RawTopic,
        kind: DatasetKind,
        what: &str,
        path: &Path,
        bureaus: &[Bureau],
        names: &mut HashSet<&'a str>,
        errors: &mut ConfigErrors,
    ) -> Option<ViewDefinition> {
        let entry = format!("{what} \"{}\"", t.name);
        check_identifier(&t.name, path, &entry, "name", errors);
        if !names.insert(t.name.as_str()) {
            errors.push(path, &entry, "name", format!("duplicate {what} name"));
            return None;
        }
        if !bureaus.iter().any(|b| b.id == t.owner) {
            errors.push(
                path,
                &entry,
                "owner",
                format!("unknown bureau `{}`", t.owner),
            );
        }
        let open_level = match OpenLevel::of(&t.open_level) {
            Ok(level) => level,
            Err(m) => {
                errors.push(path, &entry, "open_level", m);
                return None;
            }
        };
        if kind == DatasetKind::Open && open_level == OpenLevel::NotOpen {
            errors.push(
                path,
                &entry,
                "open_level",
                "an open dataset must be unconditional or conditional",
            );
        }
        Some(ViewDefinition {
            kind,
            name: t.name.clone(),
            owner: t.owner.clone(),
            open_level,
            sql: t.sql.clone(),
            description: t.description.clone(),
            tags: t.tags.clone(),
            entry,
        })
    }

    /// A session with every Bund function over this catalog's runtime, for planning the
    /// views and parsing the policies' filters.
    pub fn load_state(&self) -> SessionState {
        load_state(&self.runtime, &self.security)
    }

    /// The runtime (object stores, memory pool) every session shares.
    pub fn runtime(&self) -> Arc<RuntimeEnv> {
        Arc::clone(&self.runtime)
    }

    /// A dataset by schema and name.
    pub fn dataset(&self, schema: &str, name: &str) -> Option<&Arc<Dataset>> {
        self.datasets
            .iter()
            .find(|d| d.schema == schema && d.name == name)
    }

    /// Schema names in display order: bureaus, `system`, `topic`, `open`.
    pub fn schema_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for d in &self.datasets {
            if !names.contains(&d.schema) {
                names.push(d.schema.clone());
            }
        }
        names
    }
}

/// A short hash of the configuration files' contents (`server.toml` included: the server's
/// limits are part of the configuration a ticket was issued under).
fn config_version(dir: &Path) -> String {
    let mut bytes = Vec::new();
    for name in ["catalog.toml", "security.toml", "server.toml"] {
        bytes.extend_from_slice(name.as_bytes());
        bytes.extend(std::fs::read(dir.join(name)).unwrap_or_default());
    }
    sha256_hex(&bytes)[..16].to_string()
}
