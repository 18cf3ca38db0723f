//! Work of several plan nodes run in the database as one SELECT, written by Bund: an
//! aggregate over one table, or an inner equi-join of two tables of the same database (the
//! planner's `PushToSource` decides when: only above scans whose policy lets the needed
//! columns through unmasked and whose every filter the database evaluates exactly as Bund
//! does).
//!
//! What the database computes here is the answer, not a superset Bund filters again, so
//! only exact work is sent: COUNT, and SUM / MIN / MAX of types the database adds and
//! orders exactly like Bund (integers, decimals, dates; text only where it compares bytes),
//! grouped by such columns. Floats (NaN, -0), text under collations, and everything else
//! stay in Bund.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::Result;
use datafusion::datasource::TableType;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use super::dialect::{self, Dialect};
use super::{Database, RemoteTable, exec};

/// An aggregate function as the database computes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregateFn {
    /// `COUNT(*)`
    CountRows,
    Count,
    Sum,
    Min,
    Max,
}

/// One aggregate of a column of the table (by its Arrow name), or of rows.
#[derive(Debug, Clone)]
pub struct RemoteAggregate {
    pub func: AggregateFn,
    pub column: Option<String>,
}

/// A SELECT that runs in one database and whose rows are the answer of the plan it stands
/// for. Its columns are named `c0`, `c1`, … in the order of [`RemoteQuery::schema`].
#[derive(Debug)]
pub struct RemoteQuery {
    database: Arc<dyn Database>,
    /// `expr AS "c<i>"`, one per column of the schema
    items: Vec<String>,
    /// ` FROM … [WHERE …] [GROUP BY …] [ORDER BY …]`
    rest: String,
    /// The query's own limit (a top-n); a scan's limit can only lower it.
    limit: Option<usize>,
    schema: SchemaRef,
}

impl RemoteQuery {
    /// The SELECT of the columns at `projection` (all when `None`), with a limit.
    pub fn sql(&self, projection: Option<&[usize]>, limit: Option<usize>) -> String {
        let mut items: Vec<&str> = match projection {
            Some(p) => p
                .iter()
                .filter_map(|&i| self.items.get(i))
                .map(String::as_str)
                .collect(),
            None => self.items.iter().map(String::as_str).collect(),
        };
        if items.is_empty() && !self.database.dialect().selects_nothing() {
            items.push("NULL"); // rows without columns: one expression, not read
        }
        let mut sql = format!("SELECT {}{}", items.join(", "), self.rest);
        let limit = match (self.limit, limit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(n) = limit {
            sql.push_str(&format!(" LIMIT {n}"));
        }
        sql
    }
}

impl RemoteTable {
    /// True when the database evaluates `filter` exactly as Bund does (not only a
    /// superset): required of every filter under work that runs there.
    pub fn filter_is_exact(&self, filter: &Expr) -> bool {
        dialect::remote_exact(self, filter)
    }

    /// `SELECT group…, aggregate… FROM table WHERE filters GROUP BY group…` as a
    /// [`RemoteQuery`] whose columns have `output`'s types (the plan's aggregate output),
    /// or `None` when a part of it would not mean the same in the database.
    pub fn aggregate(
        &self,
        filters: &[Expr],
        group_by: &[String],
        aggregates: &[RemoteAggregate],
        output: &[Field],
    ) -> Result<Option<RemoteQuery>> {
        let dialect = self.database.dialect();
        if !self.database.settings().filter_pushdown
            || output.len() != group_by.len() + aggregates.len()
            || !filters.iter().all(|f| self.filter_is_exact(f))
        {
            return Ok(None);
        }
        let mut select = Vec::with_capacity(output.len());
        let mut group = Vec::with_capacity(group_by.len());
        for (name, field) in group_by.iter().zip(output) {
            let Some((remote, t)) = self.exact_column(name) else {
                return Ok(None);
            };
            if !groups_exactly(dialect, t, self.text_is_exact(name)) || t != field.data_type() {
                return Ok(None);
            }
            select.push(remote.clone());
            group.push(remote);
        }
        for agg in aggregates {
            let text_exact = agg.column.as_deref().is_some_and(|n| self.text_is_exact(n));
            let arg = match &agg.column {
                Some(name) => match self.exact_column(name) {
                    Some(c) => Some(c),
                    None => return Ok(None),
                },
                None => None,
            };
            let sql = match (agg.func, arg) {
                (AggregateFn::CountRows, None) => "COUNT(*)".to_string(),
                (AggregateFn::Count, Some((c, _))) => format!("COUNT({c})"),
                (AggregateFn::Sum, Some((c, t))) if sums_exactly(dialect, t) => dialect.sum(&c, t),
                (AggregateFn::Min | AggregateFn::Max, Some((c, t)))
                    if orders_exactly(dialect, t, text_exact) =>
                {
                    let f = if agg.func == AggregateFn::Min {
                        "MIN"
                    } else {
                        "MAX"
                    };
                    format!("{f}({c})")
                }
                _ => return Ok(None),
            };
            select.push(sql);
        }
        let mut fields = Vec::with_capacity(output.len());
        let mut items = Vec::with_capacity(output.len());
        for (i, (expr, field)) in select.into_iter().zip(output).enumerate() {
            if dialect.reads(field.data_type()).is_err() {
                return Ok(None);
            }
            let name = format!("c{i}");
            let expr = dialect.cast_compound(&expr, field.data_type())?;
            items.push(format!("{expr} AS {}", dialect.quote_ident(&name)));
            fields.push(Field::new(
                name,
                field.data_type().clone(),
                field.is_nullable(),
            ));
        }
        let mut rest = format!(" FROM {}", self.source.sql_from_item(dialect));
        dialect::push_where(self, filters, &mut rest)?;
        if !group.is_empty() {
            rest.push_str(" GROUP BY ");
            rest.push_str(&group.join(", "));
        }
        Ok(Some(RemoteQuery {
            database: Arc::clone(&self.database),
            items,
            rest,
            limit: None,
            schema: Arc::new(Schema::new(fields)),
        }))
    }

    /// `SELECT columns FROM table WHERE filters ORDER BY keys LIMIT n`: the first `n` rows
    /// in an order the database sorts exactly as Bund (keys of types it orders alike, NULLs
    /// placed as asked). `columns` are (column, the plan's field); `order` is (column,
    /// ascending, NULLs first). Ties may be broken differently, as Bund's own top-n may.
    pub fn top(
        &self,
        filters: &[Expr],
        columns: &[(String, Field)],
        order: &[(String, bool, bool)],
        n: usize,
    ) -> Result<Option<RemoteQuery>> {
        let dialect = self.database.dialect();
        if !self.database.settings().filter_pushdown
            || order.is_empty()
            || !filters.iter().all(|f| self.filter_is_exact(f))
        {
            return Ok(None);
        }
        let mut keys = Vec::with_capacity(order.len());
        for (name, asc, nulls_first) in order {
            let Some((c, t)) = self.exact_column(name) else {
                return Ok(None);
            };
            if !orders_exactly(dialect, t, self.text_is_exact(name)) {
                return Ok(None);
            }
            keys.push(dialect.order_key(&c, *asc, *nulls_first));
        }
        let mut items = Vec::with_capacity(columns.len());
        let mut fields = Vec::with_capacity(columns.len());
        for (i, (name, field)) in columns.iter().enumerate() {
            let Some((c, t)) = self.exact_column(name) else {
                return Ok(None);
            };
            if t != field.data_type() || dialect.reads(t).is_err() {
                return Ok(None);
            }
            let alias = dialect.quote_ident(&format!("c{i}"));
            items.push(format!("{} AS {alias}", dialect.cast(&c, t)?));
            fields.push(Field::new(format!("c{i}"), t.clone(), field.is_nullable()));
        }
        let mut rest = format!(" FROM {}", self.source.sql_from_item(dialect));
        dialect::push_where(self, filters, &mut rest)?;
        rest.push_str(" ORDER BY ");
        rest.push_str(&keys.join(", "));
        Ok(Some(RemoteQuery {
            database: Arc::clone(&self.database),
            items,
            rest,
            limit: Some(n),
            schema: Arc::new(Schema::new(fields)),
        }))
    }

    /// True when both tables are in the same database (one connection can join them).
    pub fn same_database(&self, other: &RemoteTable) -> bool {
        Arc::ptr_eq(&self.database, &other.database)
    }

    /// True when the database compares the column's text byte for byte (SQLite's BINARY
    /// collation, a deterministic PostgreSQL collation), as Bund does.
    pub(crate) fn text_is_exact(&self, name: &str) -> bool {
        self.schema
            .index_of(name)
            .is_ok_and(|i| self.columns[i].exact_text)
    }

    /// A column read as its own type (not as text), quoted, with its Arrow type.
    fn exact_column(&self, name: &str) -> Option<(String, &DataType)> {
        let i = self.schema.index_of(name).ok()?;
        if self.columns[i].as_text {
            return None;
        }
        Some((
            self.database.dialect().quote_ident(&self.columns[i].name),
            self.schema.field(i).data_type(),
        ))
    }
}

/// One side of a join: a table and the filters its scan sends.
#[derive(Debug, Clone, Copy)]
pub struct JoinSide<'a> {
    pub table: &'a RemoteTable,
    pub filters: &'a [Expr],
}

/// `SELECT t0.a, t1.b … FROM left AS t0 JOIN right AS t1 ON t0.k = t1.k WHERE …` for an
/// inner equi-join of two tables of one database. `on` pairs a left and a right column;
/// `output` lists (0 = left / 1 = right, column) with the plan's output field. `None` when
/// a key would not compare exactly there, or a filter is not exact.
pub fn inner_join(
    left: JoinSide<'_>,
    right: JoinSide<'_>,
    on: &[(String, String)],
    output: &[(usize, String, Field)],
) -> Result<Option<RemoteQuery>> {
    let (l, r) = (left.table, right.table);
    let dialect = l.database.dialect();
    if !l.same_database(r) || on.is_empty() || !l.database.settings().filter_pushdown {
        return Ok(None);
    }
    let sides = [left, right];
    if !sides
        .iter()
        .all(|s| s.filters.iter().all(|f| s.table.filter_is_exact(f)))
    {
        return Ok(None);
    }
    let mut conditions = Vec::with_capacity(on.len());
    for (a, b) in on {
        let (Some((ca, ta)), Some((cb, tb))) = (l.exact_column(a), r.exact_column(b)) else {
            return Ok(None);
        };
        if ta != tb || !groups_exactly(dialect, ta, l.text_is_exact(a) && r.text_is_exact(b)) {
            return Ok(None);
        }
        conditions.push(format!("t0.{ca} = t1.{cb}"));
    }
    let mut items = Vec::with_capacity(output.len());
    let mut fields = Vec::with_capacity(output.len());
    for (i, (side, column, field)) in output.iter().enumerate() {
        let Some(s) = sides.get(*side) else {
            return Ok(None);
        };
        let Some((c, t)) = s.table.exact_column(column) else {
            return Ok(None);
        };
        if t != field.data_type() || dialect.reads(t).is_err() {
            return Ok(None);
        }
        let name = format!("c{i}");
        let expr = dialect.cast(&format!("t{side}.{c}"), t)?;
        items.push(format!("{expr} AS {}", dialect.quote_ident(&name)));
        fields.push(Field::new(name, t.clone(), field.is_nullable()));
    }
    let mut filters = Vec::new();
    dialect::push_conditions(l, left.filters, Some("t0"), &mut filters)?;
    dialect::push_conditions(r, right.filters, Some("t1"), &mut filters)?;
    let mut rest = format!(
        " FROM {} AS t0 JOIN {} AS t1 ON {}",
        l.source.join_item(dialect),
        r.source.join_item(dialect),
        conditions.join(" AND ")
    );
    if !filters.is_empty() {
        rest.push_str(" WHERE ");
        rest.push_str(&filters.join(" AND "));
    }
    Ok(Some(RemoteQuery {
        database: Arc::clone(&l.database),
        items,
        rest,
        limit: None,
        schema: Arc::new(Schema::new(fields)),
    }))
}

fn is_integer(t: &DataType) -> bool {
    matches!(t, DataType::Int16 | DataType::Int32 | DataType::Int64)
}

/// Equal in the database exactly when equal in Bund (`exact_text`: see
/// [`RemoteTable::text_is_exact`]). PostgreSQL's deterministic collations, SQLite's BINARY
/// and MySQL's binary ones that do not pad compare bytes for equality; NOCASE, RTRIM,
/// non-deterministic collations and MySQL's usual ones do not, a Flight SQL service's are
/// unknown (their columns are never exact).
fn groups_exactly(dialect: &dyn Dialect, t: &DataType, exact_text: bool) -> bool {
    match t {
        DataType::Date32 => dialect.exact_dates(),
        DataType::Decimal128(..) | DataType::Decimal256(..) => dialect.exact_decimals(),
        DataType::Utf8 => exact_text,
        DataType::Boolean => dialect.exact_booleans(),
        t => is_integer(t),
    }
}

/// Ordered in the database exactly as in Bund (for MIN and MAX): PostgreSQL's collations
/// order by language even where they are deterministic.
fn orders_exactly(dialect: &dyn Dialect, t: &DataType, exact_text: bool) -> bool {
    match t {
        DataType::Date32 => dialect.exact_dates(),
        DataType::Decimal128(..) | DataType::Decimal256(..) => dialect.exact_decimals(),
        DataType::Utf8 => dialect.orders_text_by_bytes() && exact_text,
        t => is_integer(t),
    }
}

/// Summed in the database exactly as in Bund.
fn sums_exactly(dialect: &dyn Dialect, t: &DataType) -> bool {
    match t {
        DataType::Decimal128(..) | DataType::Decimal256(..) => dialect.exact_decimals(),
        t => is_integer(t),
    }
}

#[async_trait]
impl TableProvider for RemoteQuery {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = match projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => Arc::clone(&self.schema),
        };
        let sql = self.sql(projection.map(Vec::as_slice), limit);
        Ok(Arc::new(exec::RemoteScanExec::new(
            Arc::clone(&self.database),
            sql,
            schema,
            state.config().batch_size(),
        )))
    }
}
