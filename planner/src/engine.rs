//! Planning a principal's statement, from SQL text to an executable physical plan.

use std::ops::ControlFlow;
use std::sync::Arc;

use std::sync::Mutex;
use std::time::Instant;

use datafusion::execution::runtime_env::RuntimeEnv;

use std::collections::HashMap;

use bund_catalogs::{BUND_CATALOG, Catalog, LoadOptions, Principal, session_config};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{CatalogProviderList, MemoryCatalogProviderList};
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::execution::TaskContext;
use datafusion::execution::context::SessionState;
use datafusion::execution::{FunctionRegistry, SessionStateBuilder};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, cast};
use datafusion::optimizer::{Analyzer, Optimizer, OptimizerRule};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{Expr as SqlExpr, Value, visit_expressions_mut};

use crate::access::{Access, Resolved};
use crate::barrier::BundQueryPlanner;
use crate::below_barrier::PushSafePredicates;
use crate::bounded::{BoundConcatenation, check_broadcast_literals};
use crate::error::{Error, Result};
use crate::in_source::PushToSource;
use crate::limits::{Deadline, Limits, PlannerSettings, check_plan_size, check_text, interleave};
use crate::memory::CappedPool;
use crate::redact::{Show, redact};
use crate::rewrite::{ScopedSecureScan, SecureScanRule, Touched};
use crate::scope::Scope;
use crate::statement::{StatementKind, check_statement};
use crate::yields::YieldBetweenBatches;

/// Schemas DataFusion answers itself; every other name must be a catalog dataset.
const INFORMATION_SCHEMA: &str = "information_schema";

/// Plans statements against one loaded catalog. Cheap to share; one per catalog version.
pub struct Engine {
    catalog: Arc<Catalog>,
    /// Each principal's resolved access, by principal id (`anonymous` included when granted).
    access: HashMap<String, Arc<Access>>,
    settings: PlannerSettings,
    /// The session each statement is planned in a copy of (`scope.rs`): Bund's functions,
    /// the secure-scan rewrite first among the analyzer's rules, and a deadline check
    /// between each two rules. `sessions[1]` runs on the runtime of queries without
    /// credentials: the catalog's, with a memory pool capped at
    /// `anonymous_memory_limit_bytes` inside the shared one.
    sessions: [SessionState; 2],
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("catalog", &self.catalog)
            .finish()
    }
}

/// A statement planned for one principal, ready to execute.
#[derive(Debug)]
pub struct PlannedQuery {
    pub kind: StatementKind,
    /// The schema clients are told and sent: no view types.
    pub schema: SchemaRef,
    pub physical: Arc<dyn ExecutionPlan>,
    pub task_ctx: Arc<TaskContext>,
    /// Datasets read and policies applied, for the audit log.
    pub touched: Touched,
}

/// A principal's session for one statement.
struct PrincipalSession {
    state: SessionState,
    access: Arc<Access>,
    touched: Arc<Mutex<Touched>>,
}

/// What a client learns when it prepares a statement.
#[derive(Debug)]
pub struct PreparedInfo {
    pub dataset_schema: SchemaRef,
    /// One field per positional parameter (`$1`, `$2`, … or `?` in order).
    pub parameter_schema: SchemaRef,
}

/// The type a client is sent for a column of this type: view types become their plain
/// counterparts (the Flight SQL JDBC driver cannot read Utf8View or BinaryView).
pub fn client_type(dt: &DataType) -> DataType {
    match dt {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        other => other.clone(),
    }
}

/// DataFusion's optimizer rules with Bund's safe-predicate pushdown right after
/// `PushDownFilter`, which brings the user's filters down to the barriers it then inspects.
/// Last of all, `||` on text becomes `bounded_concat` (`bounded.rs`).
fn optimizer_rules(function_output_limit: u64) -> Vec<Arc<dyn OptimizerRule + Send + Sync>> {
    let mut rules = Optimizer::new().rules;
    let at = rules
        .iter()
        .position(|r| r.name() == "push_down_filter")
        .map_or(rules.len(), |i| i + 1);
    rules.insert(at, Arc::new(PushSafePredicates));
    // Last: sees the filters already in the scans.
    rules.push(Arc::new(PushToSource));
    rules.push(Arc::new(BoundConcatenation::new(function_output_limit)));
    rules
}

/// DataFusion's physical optimizer rules, then Bund's: yield points after operators that
/// multiply their input (`yields.rs`).
fn physical_optimizer_rules() -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    let mut rules = PhysicalOptimizer::new().rules;
    rules.push(Arc::new(YieldBetweenBatches));
    rules
}

impl Engine {
    /// Reads the configuration directory, opens every source, plans every view and resolves
    /// every principal's access (`access.rs`). Returns every problem at once.
    pub async fn load(
        opts: &LoadOptions,
        settings: PlannerSettings,
    ) -> std::result::Result<Self, bund_catalogs::Error> {
        Ok(Self::new(crate::access::load(opts).await?, settings))
    }

    fn new(resolved: Resolved, settings: PlannerSettings) -> Self {
        let Resolved { catalog, access } = resolved;
        let catalog = Arc::new(catalog);
        let limit = settings.max_function_output_bytes;
        let optimizer_rules = optimizer_rules(limit);
        let physical_rules = physical_optimizer_rules();
        let mut base = SessionStateBuilder::new()
            .with_config(session_config())
            .with_runtime_env(catalog.runtime())
            .with_default_features()
            .with_query_planner(Arc::new(BundQueryPlanner))
            .with_optimizer_rules(optimizer_rules.clone())
            .with_physical_optimizer_rules(physical_rules.clone())
            .build();
        // Users' sessions know every Bund function except those that carry secrets: policies
        // hold those as planned expressions, users cannot name them.
        bund_udfs::register_all(&mut base, catalog.security.secrets());
        for name in bund_udfs::POLICY_ONLY {
            let _removed = base.deregister_udf(name);
        }
        if let Err(e) = crate::bounded::install(&mut base, limit) {
            tracing::error!(error = %e, "cannot bound the functions whose output the statement sizes");
        }
        let shared = catalog.runtime();
        let public_runtime = Arc::new(RuntimeEnv {
            memory_pool: Arc::new(CappedPool::new(
                Arc::clone(&shared.memory_pool),
                usize::try_from(settings.anonymous_memory_limit_bytes).unwrap_or(usize::MAX),
            )),
            disk_manager: Arc::clone(&shared.disk_manager),
            cache_manager: Arc::clone(&shared.cache_manager),
            object_store_registry: Arc::clone(&shared.object_store_registry),
        });
        let session = |runtime: Arc<RuntimeEnv>| {
            let mut rules = Analyzer::new().rules;
            rules.insert(0, Arc::new(ScopedSecureScan::new(Arc::clone(&catalog))));
            SessionStateBuilder::new_from_existing(base.clone())
                .with_runtime_env(runtime)
                .with_analyzer_rules(interleave(rules, Arc::new(Deadline)))
                .with_optimizer_rules(interleave(optimizer_rules.clone(), Arc::new(Deadline)))
                .with_physical_optimizer_rules(interleave(
                    physical_rules.clone(),
                    Arc::new(Deadline),
                ))
                .build()
        };
        let sessions = [session(shared), session(public_runtime)];
        Self {
            catalog,
            access,
            settings,
            sessions,
        }
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// What the principal may see, or an error when it is no longer in the catalog.
    pub fn access(&self, principal: &Principal) -> Result<Arc<Access>> {
        self.access
            .get(&principal.id)
            .cloned()
            .ok_or_else(|| Error::UnknownPrincipal {
                id: principal.id.clone(),
            })
    }

    /// Every mask that another column of the same principal's view undoes, one line per
    /// finding (`bund check` prints them as warnings).
    pub fn derivable_masks(&self) -> Vec<String> {
        crate::access::derivable_masks(&self.catalog, &self.access)
    }

    /// The session a principal's statement is planned in: a copy of the engine's with a
    /// catalog of the datasets granted to it, with the columns it may see, and the statement's
    /// [`Scope`] (its access for the secure-scan rewrite, first among the analyzer rules).
    fn session(
        &self,
        principal: &Principal,
        deadline: Option<Instant>,
    ) -> Result<PrincipalSession> {
        let access = self.access(principal)?;
        let catalogs = MemoryCatalogProviderList::new();
        let _previous = catalogs.register_catalog(BUND_CATALOG.to_string(), access.catalog());
        let touched = Arc::new(Mutex::new(Touched::default()));
        let mut state = self.sessions[usize::from(principal.is_anonymous())].clone();
        // the statement's start: what now() and current_date() are, once for the statement
        state.mark_start_execution();
        state.register_catalog_list(Arc::new(catalogs));
        state.config_mut().options_mut().extensions.insert(Scope {
            access: Arc::clone(&access),
            touched: Arc::clone(&touched),
            deadline,
        });
        Ok(PrincipalSession {
            state,
            access,
            touched,
        })
    }

    /// The limits every statement is planned under.
    pub fn limits(&self) -> Limits {
        self.settings.limits
    }

    /// Parses one statement, rewrites `?` placeholders to `$1…$n` and applies the guard.
    fn parse(&self, state: &SessionState, sql: &str) -> Result<(DfStatement, StatementKind)> {
        check_text(sql, &self.limits())?;
        let dialect = state.config().options().sql_parser.dialect;
        let mut statement = state
            .sql_to_statement(sql, &dialect)
            .map_err(Error::from_planning)?;
        let kind = check_statement(&statement)?;
        number_question_marks(&mut statement);
        Ok((statement, kind))
    }

    /// Refuses any table name that is not a dataset visible to the principal, with one error
    /// for all: a dataset that exists but is not granted looks like one that does not exist.
    fn check_tables(
        &self,
        state: &SessionState,
        access: &Access,
        statement: &DfStatement,
    ) -> Result<()> {
        let references = state
            .resolve_table_references(statement)
            .map_err(Error::from_planning)?;
        let options = state.config().options();
        for reference in references {
            if let datafusion::common::TableReference::Bare { table } = &reference
                && crate::statement::TABLE_FUNCTIONS.contains(&table.as_ref())
            {
                continue;
            }
            let resolved = reference.clone().resolve(
                &options.catalog.default_catalog,
                &options.catalog.default_schema,
            );
            let visible = resolved.catalog.as_ref() == BUND_CATALOG
                && (resolved.schema.as_ref() == INFORMATION_SCHEMA
                    || access.visible(&resolved.schema, &resolved.table).is_some());
            if !visible {
                return Err(Error::NotFound {
                    name: reference.to_string(),
                });
            }
        }
        Ok(())
    }

    async fn logical_plan(
        &self,
        session: &PrincipalSession,
        sql: &str,
    ) -> Result<(LogicalPlan, StatementKind)> {
        let state = &session.state;
        let (statement, kind) = self.parse(state, sql)?;
        self.check_tables(state, &session.access, &statement)?;
        let plan = state
            .statement_to_plan(statement)
            .await
            .map_err(Error::from_planning)?;
        check_plan_size(&plan, self.limits().max_plan_nodes)?;
        Ok((plan, kind))
    }

    /// Plans a statement for a principal, with parameters bound from the first row of
    /// `params` when given.
    pub async fn plan(
        &self,
        principal: &Principal,
        sql: &str,
        params: Option<&RecordBatch>,
    ) -> Result<PlannedQuery> {
        self.plan_until(principal, sql, params, None).await
    }

    /// [`Engine::plan`] that stops with [`Error::Timeout`] at the first rule boundary past
    /// `deadline`.
    pub async fn plan_until(
        &self,
        principal: &Principal,
        sql: &str,
        params: Option<&RecordBatch>,
        deadline: Option<Instant>,
    ) -> Result<PlannedQuery> {
        let session = self.session(principal, deadline)?;
        let (plan, kind) = self.logical_plan(&session, sql).await?;
        let state = &session.state;
        let expected = plan.get_parameter_names().map_err(Error::from_planning)?;
        let plan = match params {
            Some(batch) => bind(plan, batch, expected.len())?,
            None if !expected.is_empty() => {
                return Err(Error::Parameters {
                    message: format!(
                        "the statement has {} parameter(s); prepare it and bind values",
                        expected.len()
                    ),
                });
            }
            None => plan,
        };
        let plan = client_facing(plan)?;
        crate::patterns::check_patterns(&plan).map_err(Error::from_planning)?;
        let optimized = state.optimize(&plan).map_err(Error::from_planning)?;
        // a constant becomes an array as long as a batch wherever it is a value
        let budget =
            self.settings.max_function_output_bytes / state.config().batch_size().max(1) as u64;
        check_broadcast_literals(&optimized, budget).map_err(Error::from_planning)?;
        let physical = state
            .query_planner()
            .create_physical_plan(&optimized, state)
            .await
            .map_err(Error::from_planning)?;
        let touched = session
            .touched
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default();
        // EXPLAIN ANALYZE: what the principal may not see is not counted for it either.
        let through_views = touched.datasets.iter().any(|key| {
            key.split_once('.')
                .is_none_or(|(schema, name)| session.access.visible(schema, name).is_none())
        });
        let show = if through_views {
            Show::Nothing
        } else {
            Show::AboveBarriers
        };
        let physical = redact(physical, show).map_err(Error::from_planning)?;
        Ok(PlannedQuery {
            kind,
            schema: physical.schema(),
            physical,
            task_ctx: state.task_ctx(),
            touched,
        })
    }

    /// The statement as the SQL planner builds it for the principal, before the security
    /// rewrite and the optimizer (for tools and the rewrite benchmark).
    pub async fn sql_plan(&self, principal: &Principal, sql: &str) -> Result<LogicalPlan> {
        let session = self.session(principal, None)?;
        Ok(self.logical_plan(&session, sql).await?.0)
    }

    /// Applies the secure-scan rewrite alone to a plan from [`Engine::sql_plan`].
    pub fn secure(
        &self,
        principal: &Principal,
        plan: LogicalPlan,
    ) -> Result<(LogicalPlan, Touched)> {
        use datafusion::optimizer::AnalyzerRule;
        let access = self.access(principal)?;
        let touched = Arc::new(Mutex::new(Touched::default()));
        let rule = SecureScanRule::new(Arc::clone(&self.catalog), access, Arc::clone(&touched));
        let plan = rule
            .analyze(plan, self.sessions[0].config().options())
            .map_err(Error::from_planning)?;
        let touched = touched.lock().map(|t| t.clone()).unwrap_or_default();
        Ok((plan, touched))
    }

    /// Plans a statement without values to describe its result and its parameters.
    pub async fn prepare(&self, principal: &Principal, sql: &str) -> Result<PreparedInfo> {
        self.prepare_until(principal, sql, None).await
    }

    /// [`Engine::prepare`] under a deadline, as [`Engine::plan_until`].
    pub async fn prepare_until(
        &self,
        principal: &Principal,
        sql: &str,
        deadline: Option<Instant>,
    ) -> Result<PreparedInfo> {
        let session = self.session(principal, deadline)?;
        let (plan, _) = self.logical_plan(&session, sql).await?;
        let fields = plan.get_parameter_fields().map_err(Error::from_planning)?;
        let mut ids: Vec<(usize, String)> = Vec::with_capacity(fields.len());
        for id in fields.keys() {
            let n = id
                .strip_prefix('$')
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| Error::Parameters {
                    message: format!("named parameter {id} is not supported; use ? or $1, $2, …"),
                })?;
            ids.push((n, id.clone()));
        }
        ids.sort();
        for (i, (n, _)) in ids.iter().enumerate() {
            if *n != i + 1 {
                return Err(Error::Parameters {
                    message: format!("parameter ${} is missing", i + 1),
                });
            }
        }
        let parameter_fields: Vec<Field> = ids
            .iter()
            .map(|(_, id)| {
                let dt = fields[id]
                    .as_ref()
                    .map_or(DataType::Utf8, |f| client_type(f.data_type()));
                Field::new(id, dt, true)
            })
            .collect();
        let dataset_fields: Vec<Field> = plan
            .schema()
            .fields()
            .iter()
            .map(|f| {
                f.as_ref()
                    .clone()
                    .with_data_type(client_type(f.data_type()))
            })
            .collect();
        Ok(PreparedInfo {
            dataset_schema: Arc::new(Schema::new(dataset_fields)),
            parameter_schema: Arc::new(Schema::new(parameter_fields)),
        })
    }
}

/// DataFusion names every `?` the same; number them in source order so each binds its own value.
fn number_question_marks(statement: &mut DfStatement) {
    let mut n = 0usize;
    let mut renumber = |expr: &mut SqlExpr| {
        if let SqlExpr::Value(v) = expr
            && let Value::Placeholder(p) = &mut v.value
            && p == "?"
        {
            n += 1;
            *p = format!("${n}");
        }
        ControlFlow::<()>::Continue(())
    };
    match statement {
        DfStatement::Statement(s) => {
            let _ = visit_expressions_mut(s.as_mut(), &mut renumber);
        }
        DfStatement::Explain(e) => {
            if let DfStatement::Statement(s) = e.statement.as_mut() {
                let _ = visit_expressions_mut(s.as_mut(), &mut renumber);
            }
        }
        _ => {}
    }
}

/// Binds the values of the single row of `params`, in column order, to `$1…$n`.
fn bind(plan: LogicalPlan, params: &RecordBatch, expected: usize) -> Result<LogicalPlan> {
    if params.num_rows() != 1 {
        return Err(Error::Parameters {
            message: format!("bind exactly one row of values, got {}", params.num_rows()),
        });
    }
    if params.num_columns() != expected {
        return Err(Error::Parameters {
            message: format!(
                "the statement has {expected} parameter(s), {} were bound",
                params.num_columns()
            ),
        });
    }
    // Drivers send the types of their host language (ADBC sends a Python str as Utf8 even for
    // an integer parameter): cast each value to the type the statement expects.
    let types = plan.get_parameter_types().map_err(Error::from_planning)?;
    let mut values = Vec::with_capacity(params.num_columns());
    for (i, column) in params.columns().iter().enumerate() {
        let value = ScalarValue::try_from_array(column, 0).map_err(|e| Error::Parameters {
            message: e.to_string(),
        })?;
        let value = match types.get(&format!("${}", i + 1)) {
            Some(Some(dt)) if value.data_type() != *dt && !value.is_null() => {
                value.cast_to(dt).map_err(|e| Error::Parameters {
                    message: format!(
                        "parameter ${} cannot be read as {dt}: {}",
                        i + 1,
                        e.strip_backtrace()
                    ),
                })?
            }
            Some(Some(dt)) if value.is_null() => {
                ScalarValue::try_from(dt).map_err(|e| Error::Parameters {
                    message: e.to_string(),
                })?
            }
            _ => value,
        };
        values.push(value);
    }
    plan.with_param_values(ParamValues::from(values))
        .map_err(|e| Error::Parameters {
            message: e.strip_backtrace(),
        })
}

/// Casts view-typed output columns to their plain types, keeping names, so that the plan's
/// own schema is the one sent to clients and the cast runs in the parallel plan.
fn client_facing(plan: LogicalPlan) -> Result<LogicalPlan> {
    if !matches!(
        plan,
        LogicalPlan::Projection(_)
            | LogicalPlan::TableScan(_)
            | LogicalPlan::Filter(_)
            | LogicalPlan::Sort(_)
            | LogicalPlan::Limit(_)
            | LogicalPlan::Aggregate(_)
            | LogicalPlan::Join(_)
            | LogicalPlan::Union(_)
            | LogicalPlan::SubqueryAlias(_)
            | LogicalPlan::Distinct(_)
            | LogicalPlan::Window(_)
            | LogicalPlan::Values(_)
            | LogicalPlan::EmptyRelation(_)
    ) {
        // EXPLAIN, SHOW and DESCRIBE produce plain strings already.
        return Ok(plan);
    }
    let schema = Arc::clone(plan.schema());
    if !schema
        .fields()
        .iter()
        .any(|f| client_type(f.data_type()) != *f.data_type())
    {
        return Ok(plan);
    }
    let exprs: Vec<Expr> = schema
        .iter()
        .map(|(qualifier, field)| {
            let col = Expr::Column(datafusion::common::Column::from((qualifier, field)));
            let target = client_type(field.data_type());
            if target == *field.data_type() {
                col
            } else {
                cast(col, target).alias(field.name())
            }
        })
        .collect();
    LogicalPlanBuilder::from(plan)
        .project(exprs)
        .and_then(|b| b.build())
        .map_err(Error::from_planning)
}
