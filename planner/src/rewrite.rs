//! The secure-scan rewrite: an analyzer rule, first of all rules, that opens every sealed
//! dataset in a plan for one principal. Every scan of a bureau table — in the query, in a
//! subquery, a CTE, a UNION arm or inside a topic library's view — becomes
//!
//! ```text
//! SecurityBarrier            the user's query sees only this
//!   Projection: masks        masked values keep their column's name and type
//!     RowFilterBarrier       (with a row filter) what moves below SecurityBarrier stops here
//!       Filter: row filter   on raw rows, restrictions ANDed; evaluated first and alone
//!         TableScan: source
//! ```
//!
//! and every inlined view dataset (topic, open) gets its own policy the same way above its
//! view. Datasets without a policy for the principal become plain scans. A scan of
//! anything else than a sealed dataset or information_schema is refused (fail closed).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use bund_catalogs::Catalog;
use datafusion::catalog::cte_worktable::CteWorkTable;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, Result, ScalarValue, TableReference, internal_err, plan_err};
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, TableScan, lit};
use datafusion::optimizer::AnalyzerRule;

use crate::access::{Access, DatasetScan, ScanPolicy, SealedTable};
use crate::barrier::{BarrierKind, SecurityBarrier};
use crate::scope::Scope;
use crate::statement::TABLE_FUNCTIONS;

/// What a rewrite touched, for the audit log.
#[derive(Debug, Default, Clone)]
pub struct Touched {
    /// `schema.name` of every dataset scanned, directly or through a view.
    pub datasets: BTreeSet<String>,
    /// Policy and rule ids applied.
    pub policies: BTreeSet<String>,
}

#[derive(Debug)]
pub(crate) struct SecureScanRule {
    catalog: Arc<Catalog>,
    access: Arc<Access>,
    touched: Arc<Mutex<Touched>>,
}

impl SecureScanRule {
    pub(crate) fn new(
        catalog: Arc<Catalog>,
        access: Arc<Access>,
        touched: Arc<Mutex<Touched>>,
    ) -> Self {
        Self {
            catalog,
            access,
            touched,
        }
    }

    fn record(&self, key: &str, policy: Option<&ScanPolicy>) {
        if let Ok(mut t) = self.touched.lock() {
            t.datasets.insert(key.to_string());
            if let Some(p) = policy {
                t.policies.extend(p.applied.iter().cloned());
            }
        }
    }

    fn rewrite_scan(&self, scan: TableScan) -> Result<Transformed<LogicalPlan>> {
        let provider = source_as_provider(&scan.source)?;
        let Some(sealed) = provider.downcast_ref::<SealedTable>() else {
            // A recursive CTE's work table holds rows the query itself produced.
            let harmless = provider.is::<CteWorkTable>()
                || match &scan.table_name {
                    TableReference::Bare { table } => {
                        // Table function scans are named `generate_series()` and the like.
                        let name = table.split('(').next().unwrap_or_default();
                        TABLE_FUNCTIONS.contains(&name)
                    }
                    other => other.schema() == Some("information_schema"),
                };
            if harmless {
                return Ok(Transformed::no(LogicalPlan::TableScan(scan)));
            }
            return plan_err!("{} is not a dataset of this catalog", scan.table_name);
        };
        if !scan.filters.is_empty() || scan.fetch.is_some() {
            return internal_err!(
                "{} reached the security rewrite with pushed-down work",
                sealed.key()
            );
        }
        let Some(dataset) = self
            .catalog
            .datasets
            .iter()
            .find(|d| d.key() == sealed.key())
        else {
            return plan_err!("{} is not a dataset of this catalog", sealed.key());
        };
        if dataset.view.is_some() {
            // Views are inlined by the SQL planner; a scan of one would bypass its policy.
            return internal_err!("the view {} was not inlined", sealed.key());
        }
        let policy = self.access.policy(sealed.key()).map(Arc::as_ref);
        self.record(sealed.key(), policy);

        let raw = LogicalPlanBuilder::scan(
            scan.table_name.clone(),
            provider_as_source(Arc::clone(&dataset.provider)),
            None,
        )?
        .build()?;
        let qualifier = Some(scan.table_name.clone());
        let outputs: Vec<(Option<TableReference>, String)> = scan
            .projected_schema
            .fields()
            .iter()
            .map(|f| (qualifier.clone(), f.name().clone()))
            .collect();
        self.behind_barrier(sealed.key(), raw, policy, &outputs)
            .map(Transformed::yes)
    }

    fn rewrite_view(&self, marker: &DatasetScan) -> Result<Transformed<LogicalPlan>> {
        let key: &str = &marker.key;
        let policy = self.access.policy(key).map(Arc::as_ref);
        self.record(key, policy);
        let outputs: Vec<(Option<TableReference>, String)> = marker
            .input
            .schema()
            .iter()
            .map(|(q, f)| (q.cloned(), f.name().clone()))
            .collect();
        self.behind_barrier(key, marker.input.clone(), policy, &outputs)
            .map(Transformed::yes)
    }

    /// `input` under the policy, producing `outputs` (qualifier, name) in order.
    fn behind_barrier(
        &self,
        key: &str,
        input: LogicalPlan,
        policy: Option<&ScanPolicy>,
        outputs: &[(Option<TableReference>, String)],
    ) -> Result<LogicalPlan> {
        let same_columns = outputs.len() == input.schema().fields().len()
            && outputs
                .iter()
                .zip(input.schema().iter())
                .all(|((_, name), (_, f))| name == f.name());
        let policy = match policy {
            Some(p) if !p.is_identity() => p,
            _ if same_columns => return Ok(input),
            _ => {
                let exprs = outputs
                    .iter()
                    .map(|(q, name)| column(input.schema(), q, name))
                    .collect::<Result<Vec<_>>>()?;
                return LogicalPlanBuilder::from(input).project(exprs)?.build();
            }
        };
        let mut builder = LogicalPlanBuilder::from(input);
        if let Some(filter) = &policy.row_filter {
            let filtered = builder.filter(filter.clone())?.build()?;
            builder = LogicalPlanBuilder::from(SecurityBarrier::wrap(
                key,
                BarrierKind::RowFilter,
                filtered,
            ));
        }
        let schema = Arc::clone(builder.schema());
        let mut exprs = Vec::with_capacity(outputs.len());
        for (q, name) in outputs {
            let value = if policy.denied.contains(name) {
                // Only inside views: the principal's own catalog does not list the column.
                let (_, field) = schema.qualified_field_with_unqualified_name(name)?;
                lit(ScalarValue::try_from(field.data_type())?)
            } else if let Some(mask) = policy.masks.get(name) {
                mask.clone().unalias()
            } else {
                column(&schema, q, name)?
            };
            exprs.push(value.alias_qualified(q.clone(), name));
        }
        let masked = builder.project(exprs)?.build()?;
        Ok(SecurityBarrier::wrap(key, BarrierKind::Policy, masked))
    }
}

/// A column of `schema` by name, qualified as `q` where that resolves.
fn column(
    schema: &datafusion::common::DFSchema,
    q: &Option<TableReference>,
    name: &str,
) -> Result<Expr> {
    let qualified = Column::new(q.clone(), name);
    if schema.has_column(&qualified) {
        return Ok(Expr::Column(qualified));
    }
    let (q, field) = schema.qualified_field_with_unqualified_name(name)?;
    Ok(Expr::Column(Column::from((q, field))))
}

/// The secure-scan rewrite of the session every statement is planned in a copy of: the
/// principal is the statement's [`Scope`]; a plan analysed without one is refused.
#[derive(Debug)]
pub(crate) struct ScopedSecureScan {
    catalog: Arc<Catalog>,
}

impl ScopedSecureScan {
    pub(crate) fn new(catalog: Arc<Catalog>) -> Self {
        Self { catalog }
    }
}

impl AnalyzerRule for ScopedSecureScan {
    fn analyze(&self, plan: LogicalPlan, config: &ConfigOptions) -> Result<LogicalPlan> {
        let Some(scope) = Scope::of(config) else {
            return internal_err!("a statement was planned without a principal's scope");
        };
        SecureScanRule::new(
            Arc::clone(&self.catalog),
            Arc::clone(&scope.access),
            Arc::clone(&scope.touched),
        )
        .analyze(plan, config)
    }

    fn name(&self) -> &str {
        "bund_secure_scan"
    }
}

impl AnalyzerRule for SecureScanRule {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| match node {
            LogicalPlan::TableScan(scan) => self.rewrite_scan(scan),
            LogicalPlan::Extension(e) => match e.node.as_any().downcast_ref::<DatasetScan>() {
                Some(marker) => self.rewrite_view(marker),
                None => Ok(Transformed::no(LogicalPlan::Extension(e))),
            },
            LogicalPlan::Values(_) | LogicalPlan::EmptyRelation(_) => Ok(Transformed::no(node)),
            // Masks may change a column's nullability: parents recompute their schemas.
            other => other.recompute_schema().map(Transformed::yes),
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "bund_secure_scan"
    }
}
