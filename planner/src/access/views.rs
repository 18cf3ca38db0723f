//! Topic libraries and open datasets: each view's SQL planned over sealed tables of the
//! datasets before it, so that the security rewrite later opens every table it reads under
//! the invoking principal's policy. A topic reads bureau tables; an open dataset reads
//! bureau tables and topics, and when it reads personal data it must aggregate it.

use std::path::Path;
use std::sync::Arc;

use bund_catalogs::{BUND_CATALOG, ConfigErrors, Dataset, DatasetKind, ViewDefinition};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::source_as_provider;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::{Extension, LogicalPlan};
use datafusion::prelude::SessionContext;

use super::policy::{VisibleDataset, sealed_catalog};
use super::sealed::{DatasetScan, SealedTable};

/// Plans the views, topics first, and adds each that plans to `datasets`.
pub(super) async fn plan(
    definitions: &[ViewDefinition],
    path: &Path,
    state: &SessionState,
    datasets: &mut Vec<Arc<Dataset>>,
    errors: &mut ConfigErrors,
) {
    for kind in [DatasetKind::Topic, DatasetKind::Open] {
        // Views are planned over sealed tables of what is loaded so far: a topic cannot read
        // another topic, an open dataset can read topics.
        let everything: Vec<VisibleDataset> = datasets
            .iter()
            .map(|d| VisibleDataset {
                dataset: Arc::clone(d),
                schema: d.arrow_schema(),
            })
            .collect();
        let ctx = SessionContext::new_with_state(state.clone());
        match sealed_catalog(&everything) {
            Ok(c) => {
                ctx.register_catalog(BUND_CATALOG, c);
            }
            Err(m) => {
                errors.push(path, "", "", m);
                return;
            }
        }
        for t in definitions.iter().filter(|d| d.kind == kind) {
            if let Some(dataset) = plan_one(&ctx, t, path, datasets, errors).await {
                datasets.push(Arc::new(dataset));
            }
        }
    }
}

async fn plan_one(
    ctx: &SessionContext,
    t: &ViewDefinition,
    path: &Path,
    datasets: &[Arc<Dataset>],
    errors: &mut ConfigErrors,
) -> Option<Dataset> {
    let entry = &t.entry;
    let dialect = ctx.state().config().options().sql_parser.dialect;
    let statement = match ctx.state().sql_to_statement(&t.sql, &dialect) {
        Ok(datafusion::sql::parser::Statement::Statement(s))
            if matches!(*s, datafusion::sql::sqlparser::ast::Statement::Query(_)) =>
        {
            datafusion::sql::parser::Statement::Statement(s)
        }
        Ok(_) => {
            errors.push(path, entry, "sql", "must be a query (SELECT … or WITH …)");
            return None;
        }
        Err(e) => {
            errors.push(
                path,
                entry,
                "sql",
                format!("does not parse: {}", e.strip_backtrace()),
            );
            return None;
        }
    };
    let plan = match ctx.state().statement_to_plan(statement).await {
        Ok(plan) => plan,
        Err(e) => {
            errors.push(
                path,
                entry,
                "sql",
                format!("does not plan: {}", e.strip_backtrace()),
            );
            return None;
        }
    };
    if t.kind == DatasetKind::Open
        && let Some(personal) = reads_personal(&plan, datasets)
        && !is_aggregate(&plan)
    {
        errors.push(
            path,
            entry,
            "sql",
            format!(
                "reads personal data ({personal}) but does not aggregate it; open data built from personal data must be an aggregate (GROUP BY …)"
            ),
        );
        return None;
    }
    let key: Arc<str> = Arc::from(format!("{}.{}", t.schema(), t.name));
    let arrow_schema = Arc::new(plan.schema().as_arrow().clone());
    let marked = LogicalPlan::Extension(Extension {
        node: Arc::new(DatasetScan {
            key: Arc::clone(&key),
            input: plan.clone(),
        }),
    });
    Some(Dataset {
        schema: t.schema().to_string(),
        name: t.name.clone(),
        kind: t.kind,
        description: t.description.clone(),
        owner: t.owner.clone(),
        tags: t.tags.clone(),
        open_level: t.open_level,
        sql: Some(t.sql.clone()),
        view: Some(plan),
        provider: Arc::new(SealedTable::new(key, arrow_schema, Some(marked))),
    })
}

/// The datasets a view reads that are tagged personal, by key; `None` when there are none.
fn reads_personal(plan: &LogicalPlan, datasets: &[Arc<Dataset>]) -> Option<String> {
    let mut found = Vec::new();
    let _ = plan.apply_with_subqueries(|node| {
        let key = match node {
            LogicalPlan::TableScan(scan) => source_as_provider(&scan.source)
                .ok()
                .and_then(|p| p.downcast_ref::<SealedTable>().map(|s| s.key().to_string())),
            LogicalPlan::Extension(e) => e
                .node
                .as_any()
                .downcast_ref::<DatasetScan>()
                .map(|m| m.key.to_string()),
            _ => None,
        };
        if let Some(key) = key
            && datasets
                .iter()
                .any(|d| d.key() == key && d.tags.iter().any(|t| t == "personal"))
            && !found.contains(&key)
        {
            found.push(key);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    (!found.is_empty()).then(|| found.join(", "))
}

/// True when the plan's rows are groups: an aggregate under projections, sorts, limits and
/// filters only.
fn is_aggregate(plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::Aggregate(_) => true,
        LogicalPlan::Projection(_)
        | LogicalPlan::Sort(_)
        | LogicalPlan::Limit(_)
        | LogicalPlan::Filter(_)
        | LogicalPlan::SubqueryAlias(_) => plan.inputs().first().is_some_and(|i| is_aggregate(i)),
        _ => false,
    }
}
