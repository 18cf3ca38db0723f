//! Static Flight SQL metadata: what the server supports (GetSqlInfo), the SQL types it
//! speaks (GetXdbcTypeInfo) and the (empty) key listings with their standard schemas.

use std::sync::{Arc, LazyLock};

use arrow_flight::sql::metadata::{
    SqlInfoData, SqlInfoDataBuilder, XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder,
};
use arrow_flight::sql::{Nullable, Searchable, SqlInfo, XdbcDataType, XdbcDatetimeSubcode};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

pub(crate) const SERVER_NAME: &str = "Bund";

pub(crate) static SQL_INFO: LazyLock<SqlInfoData> = LazyLock::new(|| {
    let mut b = SqlInfoDataBuilder::new();
    b.append(SqlInfo::FlightSqlServerName, SERVER_NAME);
    b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    b.append(SqlInfo::FlightSqlServerArrowVersion, "1.5");
    b.append(SqlInfo::FlightSqlServerReadOnly, true);
    b.append(SqlInfo::FlightSqlServerSql, true);
    b.append(SqlInfo::FlightSqlServerSubstrait, false);
    b.append(SqlInfo::FlightSqlServerTransaction, 0i32); // SQL_SUPPORTED_TRANSACTION_NONE
    b.append(SqlInfo::FlightSqlServerCancel, true);
    b.append(SqlInfo::FlightSqlServerBulkIngestion, false);
    b.append(SqlInfo::SqlDdlCatalog, false);
    b.append(SqlInfo::SqlDdlSchema, false);
    b.append(SqlInfo::SqlDdlTable, false);
    b.append(SqlInfo::SqlIdentifierCase, 3i32); // lower case: unquoted names are folded
    b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    b.append(SqlInfo::SqlAllTablesAreSelectable, true);
    b.append(SqlInfo::SqlNullOrdering, 0i32); // NULLs sort high
    b.append(SqlInfo::SqlSearchStringEscape, "\\");
    b.append(SqlInfo::SqlExtraNameCharacters, "");
    b.append(SqlInfo::SqlSupportsColumnAliasing, true);
    b.append(SqlInfo::SqlNullPlusNullIsNull, true);
    b.append(SqlInfo::SqlSupportsTableCorrelationNames, true);
    b.append(SqlInfo::SqlSupportsDifferentTableCorrelationNames, false);
    b.append(SqlInfo::SqlSupportsExpressionsInOrderBy, true);
    b.append(SqlInfo::SqlSupportsOrderByUnrelated, true);
    b.append(SqlInfo::SqlSupportsLikeEscapeClause, true);
    b.append(SqlInfo::SqlSupportsNonNullableColumns, true);
    b.append(SqlInfo::SqlSchemaTerm, "schema");
    b.append(SqlInfo::SqlCatalogTerm, "catalog");
    b.append(SqlInfo::SqlProcedureTerm, "procedure");
    b.append(SqlInfo::SqlCatalogAtStart, true);
    b.append(SqlInfo::SqlSelectForUpdateSupported, false);
    b.append(SqlInfo::SqlStoredProceduresSupported, false);
    b.append(SqlInfo::SqlCorrelatedSubqueriesSupported, true);
    b.append(SqlInfo::SqlTransactionsSupported, false);
    b.append(SqlInfo::SqlBatchUpdatesSupported, false);
    b.append(SqlInfo::SqlSavepointsSupported, false);
    b.append(SqlInfo::SqlNamedParametersSupported, false);
    b.append(SqlInfo::SqlLocatorsUpdateCopy, false);
    b.append(SqlInfo::SqlStoredFunctionsUsingCallSyntaxSupported, false);
    b.append(
        SqlInfo::SqlKeywords,
        &["EXPLAIN", "DESCRIBE", "SHOW", "QUALIFY"][..],
    );
    b.append(
        SqlInfo::SqlNumericFunctions,
        &[
            "abs", "ceil", "floor", "round", "trunc", "power", "sqrt", "ln", "log10", "exp",
            "sign", "random",
        ][..],
    );
    b.append(
        SqlInfo::SqlStringFunctions,
        &[
            "length",
            "lower",
            "upper",
            "substr",
            "trim",
            "ltrim",
            "rtrim",
            "concat",
            "replace",
            "strpos",
            "left",
            "right",
            "lpad",
            "rpad",
            "regexp_replace",
            "split_part",
        ][..],
    );
    b.append(
        SqlInfo::SqlDatetimeFunctions,
        &[
            "now",
            "current_date",
            "date_trunc",
            "date_part",
            "extract",
            "to_timestamp",
            "to_date",
        ][..],
    );
    b.build().expect("static SqlInfo is well formed")
});

fn xdbc(
    name: &str,
    data_type: XdbcDataType,
    prefix: Option<&str>,
    subcode: Option<XdbcDatetimeSubcode>,
    radix: Option<i32>,
) -> XdbcTypeInfo {
    XdbcTypeInfo {
        type_name: name.to_string(),
        data_type,
        column_size: None,
        literal_prefix: prefix.map(str::to_string),
        literal_suffix: prefix.map(str::to_string),
        create_params: None,
        nullable: Nullable::NullabilityNullable,
        case_sensitive: matches!(data_type, XdbcDataType::XdbcVarchar),
        searchable: Searchable::Full,
        unsigned_attribute: radix.map(|_| false),
        fixed_prec_scale: matches!(data_type, XdbcDataType::XdbcDecimal),
        auto_increment: radix.map(|_| false),
        local_type_name: Some(name.to_string()),
        minimum_scale: None,
        maximum_scale: None,
        sql_data_type: data_type,
        datetime_subcode: subcode,
        num_prec_radix: radix,
        interval_precision: None,
    }
}

pub(crate) static XDBC_TYPES: LazyLock<XdbcTypeInfoData> = LazyLock::new(|| {
    use XdbcDataType as T;
    let mut b = XdbcTypeInfoDataBuilder::new();
    b.append(xdbc("BOOLEAN", T::XdbcBit, None, None, None));
    b.append(xdbc("TINYINT", T::XdbcTinyint, None, None, Some(10)));
    b.append(xdbc("BIGINT", T::XdbcBigint, None, None, Some(10)));
    b.append(xdbc("VARBINARY", T::XdbcVarbinary, None, None, None));
    b.append(xdbc("VARCHAR", T::XdbcVarchar, Some("'"), None, None));
    b.append(xdbc("DECIMAL", T::XdbcDecimal, None, None, Some(10)));
    b.append(xdbc("INTEGER", T::XdbcInteger, None, None, Some(10)));
    b.append(xdbc("SMALLINT", T::XdbcSmallint, None, None, Some(10)));
    b.append(xdbc("FLOAT", T::XdbcFloat, None, None, Some(2)));
    b.append(xdbc("DOUBLE", T::XdbcDouble, None, None, Some(2)));
    b.append(xdbc(
        "DATE",
        T::XdbcDate,
        Some("'"),
        Some(XdbcDatetimeSubcode::XdbcSubcodeYear), /* = XDBC_SUBCODE_DATE (1) */
        None,
    ));
    b.append(xdbc(
        "TIME",
        T::XdbcTime,
        Some("'"),
        Some(XdbcDatetimeSubcode::XdbcSubcodeTime),
        None,
    ));
    b.append(xdbc(
        "TIMESTAMP",
        T::XdbcTimestamp,
        Some("'"),
        Some(XdbcDatetimeSubcode::XdbcSubcodeTimestamp),
        None,
    ));
    b.build().expect("static XDBC type info is well formed")
});

/// The schema of CommandGetPrimaryKeys results (Flight SQL spec).
pub(crate) static PRIMARY_KEYS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ]))
});

/// The schema of CommandGetExportedKeys / GetImportedKeys / GetCrossReference results.
pub(crate) static FOREIGN_KEYS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("pk_catalog_name", DataType::Utf8, true),
        Field::new("pk_db_schema_name", DataType::Utf8, true),
        Field::new("pk_table_name", DataType::Utf8, false),
        Field::new("pk_column_name", DataType::Utf8, false),
        Field::new("fk_catalog_name", DataType::Utf8, true),
        Field::new("fk_db_schema_name", DataType::Utf8, true),
        Field::new("fk_table_name", DataType::Utf8, false),
        Field::new("fk_column_name", DataType::Utf8, false),
        Field::new("key_sequence", DataType::Int32, false),
        Field::new("fk_key_name", DataType::Utf8, true),
        Field::new("pk_key_name", DataType::Utf8, true),
        Field::new("update_rule", DataType::UInt8, false),
        Field::new("delete_rule", DataType::UInt8, false),
    ]))
});
