//! The validated catalog: bureaus, their datasets, topic libraries, principals and limits.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::view::ViewTable;
use datafusion::catalog::{
    CatalogProvider, MemoryCatalogProvider, MemorySchemaProvider, SchemaProvider, TableProvider,
};
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::SessionState;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::error::{ConfigErrors, Error, Result};
use crate::raw::RawCatalogFile;
use crate::security::SecurityCatalog;
use crate::server::ServerSettings;
use crate::source;

/// The one catalog clients see.
pub const BUND_CATALOG: &str = "bund";
/// The schema that holds the topic libraries.
pub const TOPIC_SCHEMA: &str = "topic";
/// Schema names that bureaus cannot take.
const RESERVED_SCHEMAS: &[&str] = &[
    TOPIC_SCHEMA,
    "open",
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

impl OpenLevel {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "unconditional" => Some(Self::Unconditional),
            "conditional" => Some(Self::Conditional),
            "not_open" => Some(Self::NotOpen),
            _ => None,
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
    /// The topic's SQL, for topic libraries.
    pub sql: Option<String>,
    pub provider: Arc<dyn TableProvider>,
}

impl Dataset {
    pub fn arrow_schema(&self) -> SchemaRef {
        self.provider.schema()
    }
}

/// Where to read the configuration and the data from.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub config_dir: PathBuf,
    /// Relative file locations in `catalog.toml` are resolved against this directory.
    pub data_dir: PathBuf,
}

/// Everything loaded from one configuration directory, validated.
pub struct Catalog {
    pub bureaus: Vec<Bureau>,
    /// Bureau tables in file order, then topic libraries.
    pub datasets: Vec<Arc<Dataset>>,
    pub security: SecurityCatalog,
    pub settings: ServerSettings,
    runtime: Arc<RuntimeEnv>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("bureaus", &self.bureaus.len())
            .field("datasets", &self.datasets.len())
            .field("principals", &self.security.len())
            .finish()
    }
}

/// Session settings every Bund session shares: one `bund` catalog, no default catalog of
/// DataFusion's own, no file statistics (they would answer COUNT/MIN/MAX from metadata).
pub fn session_config() -> SessionConfig {
    let mut config = SessionConfig::new()
        .with_default_catalog_and_schema(BUND_CATALOG, TOPIC_SCHEMA)
        .with_create_default_catalog_and_schema(false)
        .with_information_schema(true)
        .with_collect_statistics(false);
    config
        .options_mut()
        .execution
        .parquet
        .schema_force_view_types = false;
    config.options_mut().sql_parser.map_string_types_to_utf8view = false;
    config
}

fn valid_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && s.len() <= 63
}

impl Catalog {
    /// Reads `catalog.toml`, `security.toml` and the optional `server.toml` from the config
    /// directory, opens every source and plans every topic. Returns every problem at once.
    pub async fn load(opts: &LoadOptions) -> Result<Self> {
        let mut errors = ConfigErrors::default();
        let catalog_path = opts.config_dir.join("catalog.toml");
        let security = SecurityCatalog::load(&opts.config_dir.join("security.toml"), &mut errors);
        let settings = ServerSettings::load(&opts.config_dir.join("server.toml"), &mut errors);

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
                match source::s3_store(s3) {
                    Ok(store) => stores.push(store),
                    Err(e) => errors.push(&catalog_path, &entry, e.field, e.message),
                }
            }
        }
        let memory_limit = usize::try_from(settings.memory_limit_bytes).unwrap_or(usize::MAX);
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(memory_limit, 1.0)
            .build_arc()
            .map_err(|e| {
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

        let mut state = SessionStateBuilder::new()
            .with_config(session_config())
            .with_runtime_env(Arc::clone(&runtime))
            .with_default_features()
            .build();
        bund_udfs::register_all(&mut state);

        let mut bureaus = Vec::new();
        let mut datasets = Vec::new();
        if let Some(raw) = raw {
            Self::load_bureaus(
                &raw,
                &catalog_path,
                &opts.data_dir,
                &buckets,
                &state,
                &mut errors,
                &mut bureaus,
                &mut datasets,
            )
            .await;
            Self::load_topics(
                &raw,
                &catalog_path,
                &state,
                &bureaus,
                &mut errors,
                &mut datasets,
            )
            .await;
        }

        if errors.is_empty() {
            Ok(Self {
                bureaus,
                datasets,
                security,
                settings,
                runtime,
            })
        } else {
            Err(Error::Invalid(errors))
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn load_bureaus(
        raw: &RawCatalogFile,
        path: &Path,
        data_dir: &Path,
        buckets: &[String],
        state: &SessionState,
        errors: &mut ConfigErrors,
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
                if !valid_identifier(&t.name) {
                    errors.push(
                        path,
                        &entry,
                        "name",
                        "must be lower-case letters, digits and _, starting with a letter",
                    );
                }
                if !names.insert(t.name.as_str()) {
                    errors.push(path, &entry, "name", "duplicate table name in this bureau");
                    continue;
                }
                let Some(open_level) = OpenLevel::parse(&t.open_level) else {
                    errors.push(
                        path,
                        &entry,
                        "open_level",
                        format!(
                            "unknown open level `{}`; use unconditional, conditional or not_open",
                            t.open_level
                        ),
                    );
                    continue;
                };
                match source::file_table(state, &t.source, t.columns.as_deref(), data_dir, buckets)
                    .await
                {
                    Ok(provider) => datasets.push(Arc::new(Dataset {
                        schema: b.id.clone(),
                        name: t.name.clone(),
                        kind: DatasetKind::Table,
                        description: t.description.clone(),
                        owner: b.id.clone(),
                        tags: t.tags.clone(),
                        open_level,
                        sql: None,
                        provider,
                    })),
                    Err(e) => errors.push(path, &entry, e.field, e.message),
                }
            }
        }
    }

    async fn load_topics(
        raw: &RawCatalogFile,
        path: &Path,
        state: &SessionState,
        bureaus: &[Bureau],
        errors: &mut ConfigErrors,
        datasets: &mut Vec<Arc<Dataset>>,
    ) {
        // Topics are planned against the bureau tables only: a topic cannot read another.
        let ctx = SessionContext::new_with_state(state.clone());
        ctx.register_catalog(BUND_CATALOG, catalog_provider(datasets));
        let mut names = HashSet::new();
        for t in &raw.topic {
            let entry = format!("topic \"{}\"", t.name);
            if !valid_identifier(&t.name) {
                errors.push(
                    path,
                    &entry,
                    "name",
                    "must be lower-case letters, digits and _, starting with a letter",
                );
            }
            if !names.insert(t.name.as_str()) {
                errors.push(path, &entry, "name", "duplicate topic name");
                continue;
            }
            if !bureaus.iter().any(|b| b.id == t.owner) {
                errors.push(
                    path,
                    &entry,
                    "owner",
                    format!("unknown bureau `{}`", t.owner),
                );
            }
            let Some(open_level) = OpenLevel::parse(&t.open_level) else {
                errors.push(
                    path,
                    &entry,
                    "open_level",
                    format!(
                        "unknown open level `{}`; use unconditional, conditional or not_open",
                        t.open_level
                    ),
                );
                continue;
            };
            let dialect = ctx.state().config().options().sql_parser.dialect;
            let statement = match ctx.state().sql_to_statement(&t.sql, &dialect) {
                Ok(datafusion::sql::parser::Statement::Statement(s))
                    if matches!(*s, datafusion::sql::sqlparser::ast::Statement::Query(_)) =>
                {
                    datafusion::sql::parser::Statement::Statement(s)
                }
                Ok(_) => {
                    errors.push(path, &entry, "sql", "must be a query (SELECT … or WITH …)");
                    continue;
                }
                Err(e) => {
                    errors.push(
                        path,
                        &entry,
                        "sql",
                        format!("does not parse: {}", e.strip_backtrace()),
                    );
                    continue;
                }
            };
            let plan = match ctx.state().statement_to_plan(statement).await {
                Ok(plan) => plan,
                Err(e) => {
                    errors.push(
                        path,
                        &entry,
                        "sql",
                        format!("does not plan: {}", e.strip_backtrace()),
                    );
                    continue;
                }
            };
            datasets.push(Arc::new(Dataset {
                schema: TOPIC_SCHEMA.to_string(),
                name: t.name.clone(),
                kind: DatasetKind::Topic,
                description: t.description.clone(),
                owner: t.owner.clone(),
                tags: t.tags.clone(),
                open_level,
                sql: Some(t.sql.clone()),
                provider: Arc::new(ViewTable::new(plan, Some(t.sql.clone()))),
            }));
        }
    }

    /// The runtime (object stores, memory pool) every session shares.
    pub fn runtime(&self) -> Arc<RuntimeEnv> {
        Arc::clone(&self.runtime)
    }

    /// The `bund` catalog with every dataset, as DataFusion sees it.
    pub fn catalog_provider(&self) -> Arc<dyn CatalogProvider> {
        catalog_provider(&self.datasets)
    }

    /// A dataset by schema and name.
    pub fn dataset(&self, schema: &str, name: &str) -> Option<&Arc<Dataset>> {
        self.datasets
            .iter()
            .find(|d| d.schema == schema && d.name == name)
    }

    /// Schema names in display order: bureaus, then `topic`.
    pub fn schema_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.bureaus.iter().map(|b| b.id.clone()).collect();
        if self.datasets.iter().any(|d| d.kind == DatasetKind::Topic) {
            names.push(TOPIC_SCHEMA.to_string());
        }
        names
    }
}

fn catalog_provider(datasets: &[Arc<Dataset>]) -> Arc<dyn CatalogProvider> {
    let mut schemas: BTreeMap<&str, Arc<MemorySchemaProvider>> = BTreeMap::new();
    for d in datasets {
        let schema = schemas
            .entry(d.schema.as_str())
            .or_insert_with(|| Arc::new(MemorySchemaProvider::new()));
        // Names were checked for duplicates during load.
        let _ = schema.register_table(d.name.clone(), Arc::clone(&d.provider));
    }
    let catalog = MemoryCatalogProvider::new();
    for (name, schema) in schemas {
        let _ = catalog.register_schema(name, schema);
    }
    Arc::new(catalog)
}
