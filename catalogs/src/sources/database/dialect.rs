//! What a scan of a database table sends: the columns read (cast to the type Bund decodes),
//! the filters that mean the same in the database as in Bund, and the limit.
//!
//! A filter is sent only when it is built from the table's columns, literals, comparisons,
//! AND / OR / NOT, IS [NOT] NULL, IN lists and BETWEEN — no function call of any kind (so
//! no masking or policy-only function, and no built-in whose remote namesake behaves
//! differently), no cast, no arithmetic. Text columns are compared for (in)equality only:
//! `<` on text follows the database's collation, not Bund's byte order. MySQL's usual
//! collations ignore case and trailing spaces, so there a text column is only compared
//! for equality where a match keeps the row (`=` and `IN`, not under NOT): the database
//! then sends a superset of the rows, never fewer. Columns fetched as text because their
//! remote type has no Arrow counterpart are never filtered remotely. Every pushed filter is
//! also applied again by Bund (Inexact).

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{Column, DataFusionError, Result, ScalarValue, plan_err};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};

use super::{DatabaseKind, RemoteTable};

/// `"name"` (MySQL: `` `name` ``) with embedded quotes doubled: always quoted, so any name
/// is taken literally.
pub(crate) fn quote_ident(kind: DatabaseKind, name: &str) -> String {
    match kind {
        DatabaseKind::Mysql => format!("`{}`", name.replace('`', "``")),
        _ => format!("\"{}\"", name.replace('"', "\"\"")),
    }
}

/// True when `expr` may be sent to the table's database.
pub(crate) fn remote_safe(table: &RemoteTable, expr: &Expr) -> bool {
    table.database.settings().filter_pushdown && safe(table, expr, true)
}

fn column_type<'a>(table: &'a RemoteTable, c: &Column) -> Option<&'a DataType> {
    let i = table.schema.index_of(&c.name).ok()?;
    if table.columns[i].as_text {
        return None;
    }
    let t = table.schema.field(i).data_type();
    filterable(table.database.kind(), t).then_some(t)
}

/// Column types whose values the database compares with literals as Bund does.
fn filterable(kind: DatabaseKind, t: &DataType) -> bool {
    use DataType::*;
    let number = matches!(t, Int16 | Int32 | Int64 | Float64);
    match kind {
        DatabaseKind::Postgres => true,
        // SQLite stores what it is given: integers, floats, booleans and text compare
        // like DataFusion's values there
        DatabaseKind::Sqlite => number || matches!(t, Boolean | Utf8),
        // MySQL's BOOL is TINYINT(1), where 2 is true to Bund but not `= TRUE`; TIMESTAMP
        // and TIME compare in the session's time zone and range
        DatabaseKind::Mysql => {
            number || matches!(t, Decimal128(..) | Decimal256(..) | Utf8 | Date32)
        }
        // a Flight SQL service parses `1.50` as it likes (a float, in DataFusion), and its
        // time zone is unknown
        DatabaseKind::FlightSql => number || matches!(t, Boolean | Utf8 | Date32),
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn literal_ok(v: &ScalarValue) -> bool {
    matches!(
        v,
        ScalarValue::Boolean(Some(_))
            | ScalarValue::Int8(Some(_))
            | ScalarValue::Int16(Some(_))
            | ScalarValue::Int32(Some(_))
            | ScalarValue::Int64(Some(_))
            | ScalarValue::UInt8(Some(_))
            | ScalarValue::UInt16(Some(_))
            | ScalarValue::UInt32(Some(_))
            | ScalarValue::Float64(Some(_))
            | ScalarValue::Decimal128(Some(_), _, _)
            | ScalarValue::Utf8(Some(_))
            | ScalarValue::LargeUtf8(Some(_))
            | ScalarValue::Utf8View(Some(_))
            | ScalarValue::Date32(Some(_))
    ) && !matches!(v, ScalarValue::Float64(Some(f)) if !f.is_finite())
        // NUL cannot be in a PostgreSQL text value
        && !matches!(v, ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) if s.contains('\0'))
}

/// A column compared with literals: the operand kinds that are sent.
fn operand(table: &RemoteTable, e: &Expr) -> Option<Operand> {
    match e {
        Expr::Column(c) => column_type(table, c).map(|t| Operand::Column {
            text: is_text(t),
            exact: table.text_is_exact(&c.name),
        }),
        Expr::Literal(v, _)
            if literal_ok(v)
                && (table.database.kind() != DatabaseKind::Sqlite
                    || !matches!(v, ScalarValue::Decimal128(..) | ScalarValue::Date32(_))) =>
        {
            Some(Operand::Literal)
        }
        _ => None,
    }
}

enum Operand {
    /// `exact`: the database compares the column's text byte for byte.
    Column {
        text: bool,
        exact: bool,
    },
    Literal,
}

impl Operand {
    fn is_column(&self) -> bool {
        matches!(self, Self::Column { .. })
    }

    /// A text column whose comparison in the database may match more than Bund's.
    fn loose_text(&self) -> bool {
        matches!(
            self,
            Self::Column {
                text: true,
                exact: false
            }
        )
    }
}

/// `positive`: the expression is not under a NOT, so where it holds the row is kept.
///
/// A text column the database does not compare byte for byte (a collation that ignores
/// case or trailing spaces, an unknown one) is only compared for equality where a match
/// keeps the row: the database then sends a superset of the rows, never fewer.
fn safe(table: &RemoteTable, expr: &Expr, positive: bool) -> bool {
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::And | Operator::Or => {
                safe(table, left, positive) && safe(table, right, positive)
            }
            Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq => {
                let (Some(l), Some(r)) = (operand(table, left), operand(table, right)) else {
                    return false;
                };
                let text = matches!(l, Operand::Column { text: true, .. })
                    || matches!(r, Operand::Column { text: true, .. });
                let text_ok = if l.loose_text() || r.loose_text() {
                    positive && *op == Operator::Eq
                } else {
                    matches!(op, Operator::Eq | Operator::NotEq)
                };
                (l.is_column() || r.is_column()) && (!text || text_ok)
            }
            _ => false,
        },
        Expr::Not(e) => safe(table, e, !positive),
        Expr::IsNull(e) | Expr::IsNotNull(e) => {
            matches!(e.as_ref(), Expr::Column(c) if column_type(table, c).is_some())
        }
        Expr::InList(l) => {
            let loose = operand(table, &l.expr).is_some_and(|o| o.loose_text());
            (!loose || (positive && !l.negated))
                && operand(table, &l.expr).is_some_and(|o| o.is_column())
                && !l.list.is_empty()
                && l.list
                    .iter()
                    .all(|e| matches!(operand(table, e), Some(Operand::Literal)))
        }
        Expr::Between(b) => {
            matches!(
                operand(table, &b.expr),
                Some(Operand::Column { text: false, .. })
            ) && matches!(operand(table, &b.low), Some(Operand::Literal))
                && matches!(operand(table, &b.high), Some(Operand::Literal))
        }
        _ => false,
    }
}

/// Whether a declared column type can be read from this kind of database.
pub(crate) fn check_declared(kind: DatabaseKind, t: &DataType) -> Result<()> {
    match kind {
        DatabaseKind::Postgres => pg_type(t).map(|_| ()),
        DatabaseKind::Mysql => match t {
            DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Float32
            | DataType::Float64
            | DataType::Boolean
            | DataType::Decimal128(..)
            | DataType::Decimal256(..)
            | DataType::Utf8
            | DataType::Binary
            | DataType::Date32
            | DataType::Time64(TimeUnit::Microsecond)
            | DataType::Timestamp(TimeUnit::Microsecond, _) => Ok(()),
            other => Err(DataFusionError::Plan(format!(
                "Bund cannot read a MySQL column as {other}"
            ))),
        },
        // batches arrive as Arrow and are cast to the declared type
        DatabaseKind::FlightSql => Ok(()),
        DatabaseKind::Sqlite => match t {
            DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Float32
            | DataType::Float64
            | DataType::Boolean
            | DataType::Decimal128(..)
            | DataType::Utf8
            | DataType::Binary
            | DataType::Date32
            | DataType::Timestamp(_, None) => Ok(()),
            other => Err(DataFusionError::Plan(format!(
                "Bund cannot read a SQLite column as {other}"
            ))),
        },
    }
}

/// The PostgreSQL type Bund reads a column of Arrow type `t` as.
pub(crate) fn pg_type(t: &DataType) -> Result<String> {
    Ok(match t {
        DataType::Boolean => "bool".into(),
        DataType::Int16 => "int2".into(),
        DataType::Int32 => "int4".into(),
        DataType::Int64 => "int8".into(),
        DataType::Float32 => "float4".into(),
        DataType::Float64 => "float8".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("numeric({p},{s})"),
        DataType::Utf8 => "text".into(),
        DataType::Binary => "bytea".into(),
        DataType::Date32 => "date".into(),
        DataType::Time64(_) => "time".into(),
        DataType::Timestamp(_, None) => "timestamp".into(),
        DataType::Timestamp(_, Some(_)) => "timestamptz".into(),
        DataType::List(f) => format!("{}[]", pg_type(f.data_type())?),
        other => {
            return Err(DataFusionError::Plan(format!(
                "Bund cannot read a PostgreSQL column as {other}"
            )));
        }
    })
}

/// `SELECT "a"::t AS "a", … FROM source WHERE … LIMIT n`.
pub(crate) fn select_sql(
    table: &RemoteTable,
    projection: Option<&Vec<usize>>,
    filters: &[Expr],
    limit: Option<usize>,
) -> Result<String> {
    let indices: Vec<usize> = match projection {
        Some(p) => p.clone(),
        None => (0..table.schema.fields().len()).collect(),
    };
    let mut select = Vec::with_capacity(indices.len());
    let kind = table.database.kind();
    for i in indices {
        let field = table.schema.field(i);
        let column = &table.columns[i];
        let name = quote_ident(kind, &column.name);
        let alias = quote_ident(kind, field.name());
        match kind {
            DatabaseKind::Postgres => {
                let ty = pg_type(field.data_type())?;
                select.push(format!("{name}::{ty} AS {alias}"));
            }
            // MySQL's binary protocol and SQLite's values are converted while reading
            // (mysql.rs, sqlite.rs); an unmapped MySQL type is turned into text there
            DatabaseKind::Mysql => match column.text_fn {
                Some("CAST_CHAR") => select.push(format!("CAST({name} AS CHAR) AS {alias}")),
                Some(f) => select.push(format!("{f}({name}) AS {alias}")),
                None => select.push(format!("{name} AS {alias}")),
            },
            DatabaseKind::Sqlite | DatabaseKind::FlightSql => {
                select.push(format!("{name} AS {alias}"));
            }
        }
    }
    if select.is_empty() && kind != DatabaseKind::Postgres {
        // rows without columns (count(*)): one expression is needed; it is not read
        select.push("NULL".to_string());
    }
    let mut sql = format!(
        "SELECT {} FROM {}",
        select.join(", "),
        table.source.sql_from_item(kind)
    );
    push_where(table, filters, &mut sql)?;
    if let Some(n) = limit {
        sql.push_str(&format!(" LIMIT {n}"));
    }
    Ok(sql)
}

/// Appends ` WHERE (f1) AND (f2) …` for filters that passed [`remote_safe`], if any.
pub(crate) fn push_where(table: &RemoteTable, filters: &[Expr], sql: &mut String) -> Result<()> {
    let mut conditions = Vec::with_capacity(filters.len());
    push_conditions(table, filters, None, &mut conditions)?;
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    Ok(())
}

/// True when `expr` may be sent and the database keeps exactly the rows Bund keeps: a
/// filter that names a text column the database does not compare byte for byte (MySQL's
/// usual collations, SQLite's NOCASE, a non-deterministic PostgreSQL collation, any Flight
/// SQL service) selects a superset only.
pub(crate) fn remote_exact(table: &RemoteTable, expr: &Expr) -> bool {
    remote_safe(table, expr)
        && expr.column_refs().iter().all(|c| {
            table
                .schema
                .field_with_name(&c.name)
                .is_ok_and(|f| !is_text(f.data_type()) || table.text_is_exact(&c.name))
        })
}

/// Each filter as `(sql)`, its columns prefixed with `alias.` when given (in a join).
pub(crate) fn push_conditions(
    table: &RemoteTable,
    filters: &[Expr],
    alias: Option<&str>,
    out: &mut Vec<String>,
) -> Result<()> {
    for f in filters {
        let mut one = String::new();
        render(table, f, alias, &mut one)?;
        out.push(format!("({one})"));
    }
    Ok(())
}

/// Writes a filter that passed [`remote_safe`] as SQL. Bund renders it itself rather than
/// through an unparser: every literal is written here, strings with their quotes doubled
/// and nothing else interpreted (PostgreSQL runs with standard_conforming_strings on, MySQL
/// with NO_BACKSLASH_ESCAPES, SQLite has no backslash escapes), so no value can end its
/// string early.
fn render(table: &RemoteTable, e: &Expr, alias: Option<&str>, out: &mut String) -> Result<()> {
    let render = |e: &Expr, out: &mut String| render(table, e, alias, out);
    match e {
        Expr::Column(c) => {
            let Ok(i) = table.schema.index_of(&c.name) else {
                return plan_err!("internal: column {} is not in the remote table", c.name);
            };
            if let Some(a) = alias {
                out.push_str(a);
                out.push('.');
            }
            out.push_str(&quote_ident(table.database.kind(), &table.columns[i].name));
        }
        Expr::Literal(v, _) => out.push_str(&literal(table.database.kind(), v)?),
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let op = match op {
                Operator::And => "AND",
                Operator::Or => "OR",
                Operator::Eq => "=",
                Operator::NotEq => "<>",
                Operator::Lt => "<",
                Operator::LtEq => "<=",
                Operator::Gt => ">",
                Operator::GtEq => ">=",
                other => return plan_err!("internal: operator {other} is not sent"),
            };
            out.push('(');
            render(left, out)?;
            out.push_str(&format!(" {op} "));
            render(right, out)?;
            out.push(')');
        }
        Expr::Not(inner) => {
            out.push_str("(NOT ");
            render(inner, out)?;
            out.push(')');
        }
        Expr::IsNull(inner) | Expr::IsNotNull(inner) => {
            out.push('(');
            render(inner, out)?;
            out.push_str(if matches!(e, Expr::IsNull(_)) {
                " IS NULL)"
            } else {
                " IS NOT NULL)"
            });
        }
        Expr::InList(l) => {
            out.push('(');
            render(&l.expr, out)?;
            out.push_str(if l.negated { " NOT IN (" } else { " IN (" });
            for (i, item) in l.list.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                render(item, out)?;
            }
            out.push_str("))");
        }
        Expr::Between(b) => {
            out.push('(');
            render(&b.expr, out)?;
            out.push_str(if b.negated {
                " NOT BETWEEN "
            } else {
                " BETWEEN "
            });
            render(&b.low, out)?;
            out.push_str(" AND ");
            render(&b.high, out)?;
            out.push(')');
        }
        other => return plan_err!("internal: {other} is not sent to a database"),
    }
    Ok(())
}

/// A literal as SQL text for this kind of database.
fn literal(kind: DatabaseKind, v: &ScalarValue) -> Result<String> {
    Ok(match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => {
            if s.contains('\0') {
                return plan_err!("internal: NUL in a literal sent to a database");
            }
            format!("'{}'", s.replace('\'', "''"))
        }
        ScalarValue::Boolean(Some(b)) => if *b { "TRUE" } else { "FALSE" }.to_string(),
        ScalarValue::Int8(Some(i)) => i.to_string(),
        ScalarValue::Int16(Some(i)) => i.to_string(),
        ScalarValue::Int32(Some(i)) => i.to_string(),
        ScalarValue::Int64(Some(i)) => i.to_string(),
        ScalarValue::UInt8(Some(i)) => i.to_string(),
        ScalarValue::UInt16(Some(i)) => i.to_string(),
        ScalarValue::UInt32(Some(i)) => i.to_string(),
        ScalarValue::Float64(Some(f)) if f.is_finite() => format!("{f:?}"),
        ScalarValue::Decimal128(Some(x), _, scale) => decimal(*x, *scale),
        ScalarValue::Date32(Some(d)) if kind != DatabaseKind::Sqlite => {
            let (y, m, day) = bund_udfs::domain::civil_from_days(*d);
            if !(1..=9999).contains(&y) {
                return plan_err!("internal: date out of range for a literal");
            }
            format!("DATE '{y:04}-{m:02}-{day:02}'")
        }
        other => return plan_err!("internal: literal {other} is not sent to a database"),
    })
}

/// A scaled integer as a decimal number: 10050 at scale 2 is `100.50`.
fn decimal(x: i128, scale: i8) -> String {
    let digits = x.unsigned_abs().to_string();
    let sign = if x < 0 { "-" } else { "" };
    if scale <= 0 {
        return format!(
            "{sign}{digits}{}",
            "0".repeat(scale.unsigned_abs() as usize)
        );
    }
    let scale = scale as usize;
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> String {
        literal(DatabaseKind::Postgres, &ScalarValue::Utf8(Some(s.into()))).unwrap()
    }

    #[test]
    fn string_literals_cannot_end_early() {
        for (value, sql) in [
            ("310115", "'310115'"),
            ("it's", "'it''s'"),
            (r"\'); DROP TABLE t; --", r"'\''); DROP TABLE t; --'"),
            ("a''b", "'a''''b'"),
            (r"back\", r"'back\'"),
        ] {
            let got = text(value);
            assert_eq!(got, sql, "{value}");
            // between the outer quotes there are only doubled quotes
            let inner = &got[1..got.len() - 1];
            assert!(!inner.replace("''", "").contains('\''), "{got}");
        }
        let nul = ScalarValue::Utf8(Some("a\0b".into()));
        assert!(literal(DatabaseKind::Postgres, &nul).is_err());
    }

    #[test]
    fn numbers_and_dates_are_written_exactly() {
        assert_eq!(decimal(10050, 2), "100.50");
        assert_eq!(decimal(-5, 2), "-0.05");
        assert_eq!(decimal(7, 0), "7");
        assert_eq!(decimal(12, -2), "1200");
        let date = ScalarValue::Date32(Some(19_782));
        assert_eq!(
            literal(DatabaseKind::Postgres, &date).unwrap(),
            "DATE '2024-02-29'"
        );
        assert!(literal(DatabaseKind::Sqlite, &date).is_err());
        let f = ScalarValue::Float64(Some(1.5));
        assert_eq!(literal(DatabaseKind::Postgres, &f).unwrap(), "1.5");
    }
}
