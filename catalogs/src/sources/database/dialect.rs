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

//!
//! What differs between kinds of database is the [`Dialect`] each kind implements in its own
//! module; the rules above are written once, here, against it.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Column, Result, ScalarValue, internal_err};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};

use super::{RemoteColumn, RemoteTable};

/// What one kind of database evaluates exactly as Bund does, and how its SQL is written.
/// The defaults are standard SQL; a kind overrides where it differs.
pub(crate) trait Dialect: Send + Sync {
    /// `"name"` with embedded quotes doubled: always quoted, so any name is taken literally.
    fn quote_ident(&self, name: &str) -> String {
        format!("\"{}\"", name.replace('"', "\"\""))
    }

    /// Column types whose values the database compares with literals as Bund does.
    fn compares(&self, t: &DataType) -> bool;

    /// Literals the database compares with a column as Bund does.
    fn compares_literal(&self, _v: &ScalarValue) -> bool {
        true
    }

    /// Whether a declared column type can be read from this kind of database.
    fn reads(&self, t: &DataType) -> Result<()>;

    /// What the SELECT list reads for a column of Arrow type `t` whose quoted remote name
    /// is `name`: the column itself where values are converted while reading.
    fn select_item(&self, name: &str, _column: &RemoteColumn, t: &DataType) -> Result<String> {
        self.cast(name, t)
    }

    /// `expr` converted by the database to the type Bund decodes `t` as; as it is where
    /// values are converted while reading.
    fn cast(&self, expr: &str, _t: &DataType) -> Result<String> {
        Ok(expr.to_string())
    }

    /// [`Dialect::cast`] of an expression that is not a plain column (an aggregate).
    fn cast_compound(&self, expr: &str, t: &DataType) -> Result<String> {
        self.cast(expr, t)
    }

    /// False where a SELECT may have no columns (rows without columns, for `count(*)`);
    /// elsewhere Bund selects a NULL it does not read.
    fn selects_nothing(&self) -> bool {
        false
    }

    /// What ends a subquery so that the database evaluates it on its own: it neither
    /// merges it into the outer query nor pushes the outer query's conditions into it
    /// (`fence.rs`). None where no such form is known: the user's predicates under a row
    /// filter are then not sent.
    fn fence(&self) -> Option<&'static str> {
        None
    }

    /// Dates group, order and compare as in Bund.
    fn exact_dates(&self) -> bool {
        true
    }

    /// Decimals group, order and sum as in Bund.
    fn exact_decimals(&self) -> bool {
        true
    }

    /// Booleans group as in Bund.
    fn exact_booleans(&self) -> bool {
        true
    }

    /// Text that compares byte for byte also orders byte for byte (for MIN, MAX, ORDER BY).
    fn orders_text_by_bytes(&self) -> bool {
        false
    }

    /// `SUM(c)` of a column of type `t`, returning a value of that type.
    fn sum(&self, c: &str, _t: &DataType) -> String {
        format!("SUM({c})")
    }

    /// One ORDER BY key with NULLs placed as asked.
    fn order_key(&self, c: &str, ascending: bool, nulls_first: bool) -> String {
        format!(
            "{c} {} NULLS {}",
            if ascending { "ASC" } else { "DESC" },
            if nulls_first { "FIRST" } else { "LAST" }
        )
    }
}

/// True when `expr` may be sent to the table's database.
pub(crate) fn remote_safe(table: &RemoteTable, expr: &Expr) -> bool {
    if let Some(user) = super::fence::marked(expr) {
        return table.database.dialect().fence().is_some() && remote_safe(table, user);
    }
    table.database.settings().filter_pushdown && safe(table, expr, true)
}

fn column_type<'a>(table: &'a RemoteTable, c: &Column) -> Option<&'a DataType> {
    let i = table.schema.index_of(&c.name).ok()?;
    if table.columns[i].as_text {
        return None;
    }
    let t = table.schema.field(i).data_type();
    table.database.dialect().compares(t).then_some(t)
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
        Expr::Literal(v, _) if literal_ok(v) && table.database.dialect().compares_literal(v) => {
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
    let dialect = table.database.dialect();
    for i in indices {
        let field = table.schema.field(i);
        let column = &table.columns[i];
        let name = dialect.quote_ident(&column.name);
        let alias = dialect.quote_ident(field.name());
        let item = dialect.select_item(&name, column, field.data_type())?;
        select.push(format!("{item} AS {alias}"));
    }
    if select.is_empty() && !dialect.selects_nothing() {
        // rows without columns (count(*)): one expression is needed; it is not read
        select.push("NULL".to_string());
    }
    // the user's predicates under a row filter go behind the fence (`fence.rs`)
    let mut row_filter = Vec::with_capacity(filters.len());
    let mut users = Vec::new();
    for f in filters {
        match super::fence::marked(f) {
            Some(user) => users.push(user.clone()),
            None => row_filter.push(f.clone()),
        }
    }
    let from = table.source.sql_from_item(dialect);
    let mut sql = format!("SELECT {} FROM ", select.join(", "));
    match dialect.fence() {
        Some(fence) if !users.is_empty() => {
            sql.push_str(&format!("(SELECT * FROM {from}"));
            push_where(table, &row_filter, &mut sql)?;
            sql.push_str(&format!("{fence}) AS bund_rows"));
            push_where(table, &users, &mut sql)?;
        }
        _ => {
            sql.push_str(&from);
            push_where(table, &row_filter, &mut sql)?;
        }
    }
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
    // the user's predicates under a row filter are sent behind the fence of a scan only:
    // work that needs every filter in its WHERE (aggregates, joins, top-n) stays in Bund
    super::fence::marked(expr).is_none()
        && remote_safe(table, expr)
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
                return internal_err!("column {} is not in the remote table", c.name);
            };
            if let Some(a) = alias {
                out.push_str(a);
                out.push('.');
            }
            out.push_str(&table.database.dialect().quote_ident(&table.columns[i].name));
        }
        Expr::Literal(v, _) => out.push_str(&literal(table.database.dialect(), v)?),
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
                other => return internal_err!("operator {other} is not sent"),
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
        other => return internal_err!("{other} is not sent to a database"),
    }
    Ok(())
}

/// A literal as SQL text for this kind of database.
fn literal(dialect: &dyn Dialect, v: &ScalarValue) -> Result<String> {
    Ok(match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => {
            if s.contains('\0') {
                return internal_err!("NUL in a literal sent to a database");
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
        ScalarValue::Date32(Some(d)) if dialect.compares_literal(v) => {
            let (y, m, day) = bund_udfs::domain::civil_from_days(*d);
            if !(1..=9999).contains(&y) {
                return internal_err!("date out of range for a literal");
            }
            format!("DATE '{y:04}-{m:02}-{day:02}'")
        }
        other => return internal_err!("literal {other} is not sent to a database"),
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
    use crate::sources::database::postgres::PostgresDialect;
    use crate::sources::database::sqlite::SqliteDialect;

    fn text(s: &str) -> String {
        literal(&PostgresDialect, &ScalarValue::Utf8(Some(s.into()))).unwrap()
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
        assert!(literal(&PostgresDialect, &nul).is_err());
    }

    #[test]
    fn numbers_and_dates_are_written_exactly() {
        assert_eq!(decimal(10050, 2), "100.50");
        assert_eq!(decimal(-5, 2), "-0.05");
        assert_eq!(decimal(7, 0), "7");
        assert_eq!(decimal(12, -2), "1200");
        let date = ScalarValue::Date32(Some(19_782));
        assert_eq!(
            literal(&PostgresDialect, &date).unwrap(),
            "DATE '2024-02-29'"
        );
        assert!(literal(&SqliteDialect, &date).is_err());
        let f = ScalarValue::Float64(Some(1.5));
        assert_eq!(literal(&PostgresDialect, &f).unwrap(), "1.5");
    }
}
