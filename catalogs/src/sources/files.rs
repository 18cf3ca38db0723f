//! File sources on object storage: one `ListingTable` per dataset, its schema declared or
//! inferred once at load so that no query pays for inference.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::config::TableParquetOptions;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::context::SessionState;
use object_store::aws::AmazonS3Builder;
use url::Url;

use crate::config::files::{RawColumn, RawS3, RawSource};
use crate::config::types::parse_type;

/// A problem with one field of a table entry.
pub(crate) struct FieldError {
    pub(crate) field: &'static str,
    pub(crate) message: String,
}

fn field_err(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

/// Builds the S3 store for one `[[s3]]` entry, reading every setting from the environment
/// variable the file names. Errors name the variable, never its value.
pub(crate) fn s3_store(
    raw: &RawS3,
    vars: &crate::Environment,
) -> Result<(Url, Arc<dyn object_store::ObjectStore>), FieldError> {
    let url = Url::parse(&format!("s3://{}", raw.bucket))
        .map_err(|e| field_err("bucket", format!("not a bucket name: {e}")))?;
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(&raw.bucket)
        .with_allow_http(raw.allow_http);
    let env = |field: &'static str, name: &Option<String>| -> Result<Option<String>, FieldError> {
        match name {
            None => Ok(None),
            Some(var) => vars.var(var).map(Some).ok_or_else(|| {
                field_err(field, format!("environment variable `{var}` is not set"))
            }),
        }
    };
    if let Some(v) = env("endpoint_env", &raw.endpoint_env)? {
        builder = builder.with_endpoint(v);
    }
    if let Some(v) = env("region_env", &raw.region_env)? {
        builder = builder.with_region(v);
    }
    if let Some(v) = env("access_key_id_env", &raw.access_key_id_env)? {
        builder = builder.with_access_key_id(v);
    }
    if let Some(v) = env("secret_access_key_env", &raw.secret_access_key_env)? {
        builder = builder.with_secret_access_key(v);
    }
    let store = builder
        .build()
        .map_err(|e| field_err("bucket", format!("cannot configure S3 access: {e}")))?;
    Ok((url, Arc::new(store)))
}

/// Where a source's files are: a local path (relative to the data directory) or `s3://…`.
fn resolve_location(
    location: &str,
    data_dir: &Path,
    s3_buckets: &[String],
) -> Result<ListingTableUrl, FieldError> {
    if let Some(rest) = location.strip_prefix("s3://") {
        let bucket = rest.split('/').next().unwrap_or_default();
        if !s3_buckets.iter().any(|b| b == bucket) {
            return Err(field_err(
                "location",
                format!("bucket `{bucket}` has no [[s3]] entry in catalog.toml"),
            ));
        }
        return ListingTableUrl::parse(location)
            .map_err(|e| field_err("location", format!("bad S3 location: {e}")));
    }
    if location.contains("://") {
        return Err(field_err(
            "location",
            "only local paths and s3:// locations are supported",
        ));
    }
    let path: PathBuf = if Path::new(location).is_absolute() {
        PathBuf::from(location)
    } else {
        data_dir.join(location)
    };
    if !path.exists() {
        return Err(field_err(
            "location",
            format!("missing files: {} does not exist", path.display()),
        ));
    }
    let path = path.canonicalize().map_err(|e| {
        field_err(
            "location",
            format!("cannot resolve {}: {e}", path.display()),
        )
    })?;
    ListingTableUrl::parse(path.to_string_lossy())
        .map_err(|e| field_err("location", format!("bad path: {e}")))
}

fn listing_options(source: &RawSource) -> Result<(ListingOptions, &str), FieldError> {
    Ok(match source {
        RawSource::Parquet { location } => {
            let mut opts = TableParquetOptions::default();
            // Utf8View would have to be cast back for Flight SQL clients (the JDBC driver
            // cannot read it); reading plain Utf8 is cheaper than converting every batch.
            opts.global.schema_force_view_types = false;
            let format: Arc<dyn FileFormat> = Arc::new(ParquetFormat::default().with_options(opts));
            (
                ListingOptions::new(format).with_file_extension(".parquet"),
                location,
            )
        }
        RawSource::Csv {
            location,
            has_header,
            delimiter,
        } => {
            let &[d] = delimiter.as_bytes() else {
                return Err(field_err(
                    "source.delimiter",
                    "must be a single ASCII character",
                ));
            };
            let format = CsvFormat::default()
                .with_has_header(*has_header)
                .with_delimiter(d);
            (
                ListingOptions::new(Arc::new(format)).with_file_extension(".csv"),
                location,
            )
        }
        RawSource::Ndjson { location } => {
            let format = JsonFormat::default();
            (
                ListingOptions::new(Arc::new(format)).with_file_extension(".ndjson"),
                location,
            )
        }
        RawSource::Database { .. } => {
            return Err(field_err(
                "source",
                "internal: a database source is not a file source",
            ));
        }
    })
}

pub(crate) fn declared_schema(columns: &[RawColumn]) -> Result<SchemaRef, FieldError> {
    let mut fields = Vec::with_capacity(columns.len());
    let mut seen = std::collections::HashSet::new();
    for c in columns {
        if !seen.insert(c.name.as_str()) {
            return Err(field_err(
                "columns",
                format!("duplicate column `{}`", c.name),
            ));
        }
        let dt = parse_type(&c.data_type)
            .map_err(|m| field_err("columns", format!("column `{}`: {m}", c.name)))?;
        let mut f = Field::new(&c.name, dt, c.nullable);
        if let Some(d) = &c.description {
            f = f.with_metadata([("description".to_string(), d.clone())].into());
        }
        fields.push(f);
    }
    if fields.is_empty() {
        return Err(field_err(
            "columns",
            "a declared schema needs at least one column",
        ));
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// Builds the table provider of a file source, inferring its schema unless one is declared.
pub(crate) async fn file_table(
    state: &SessionState,
    source: &RawSource,
    columns: Option<&[RawColumn]>,
    data_dir: &Path,
    s3_buckets: &[String],
) -> Result<Arc<dyn TableProvider>, FieldError> {
    let (options, location) = listing_options(source)?;
    let url = resolve_location(location, data_dir, s3_buckets)?;
    let schema = match columns {
        Some(cols) => declared_schema(cols)?,
        None => options
            .infer_schema(state, &url)
            .await
            .map_err(|e| field_err("source", format!("unreadable schema at {url}: {e}")))?,
    };
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(schema);
    let table = ListingTable::try_new(config)
        .map_err(|e| field_err("source", format!("cannot open: {e}")))?;
    Ok(Arc::new(table))
}

/// A directory of JSON Lines files with a fixed schema (the audit log).
pub(crate) fn json_lines_dir(
    dir: &Path,
    schema: SchemaRef,
) -> Result<Arc<dyn TableProvider>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .map_err(|e| format!("cannot resolve {}: {e}", dir.display()))?;
    let mut location = dir.to_string_lossy().to_string();
    if !location.ends_with('/') {
        location.push('/');
    }
    let url = ListingTableUrl::parse(&location).map_err(|e| format!("bad path: {e}"))?;
    let options =
        ListingOptions::new(Arc::new(JsonFormat::default())).with_file_extension(".jsonl");
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(schema);
    let table = ListingTable::try_new(config).map_err(|e| format!("cannot open: {e}"))?;
    Ok(Arc::new(table))
}
