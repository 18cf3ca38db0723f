//! What a session's catalog holds for a dataset: its name and the columns a principal may
//! see, never a way to its data. The planner's security rewrite replaces every scan of a
//! [`SealedTable`] with a scan of the dataset's source under the principal's policy; a scan
//! the rewrite did not reach fails instead of reading raw rows (fail closed).

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{DFSchemaRef, Result, internal_err};
use datafusion::logical_expr::{Expr, LogicalPlan, TableType, UserDefinedLogicalNodeCore};
use datafusion::physical_plan::ExecutionPlan;

/// A dataset as a session's catalog shows it.
#[derive(Debug)]
pub(crate) struct SealedTable {
    /// `schema.name` of the dataset.
    key: Arc<str>,
    /// The columns this principal may see.
    schema: SchemaRef,
    /// For topic libraries and open datasets: the view, under a [`DatasetScan`] marker.
    view: Option<LogicalPlan>,
}

impl SealedTable {
    pub(crate) fn new(key: Arc<str>, schema: SchemaRef, view: Option<LogicalPlan>) -> Self {
        Self { key, schema, view }
    }

    /// `schema.name` of the dataset.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }
}

#[async_trait]
impl TableProvider for SealedTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        if self.view.is_some() {
            TableType::View
        } else {
            TableType::Base
        }
    }

    fn get_logical_plan(&'_ self) -> Option<Cow<'_, LogicalPlan>> {
        self.view.as_ref().map(Cow::Borrowed)
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        internal_err!(
            "{} was scanned without the security rewrite; the query is refused",
            self.key
        )
    }
}

/// Marks where a view dataset (topic library or open dataset) was inlined into a plan, so
/// that the security rewrite can apply that dataset's own policy to its output. The
/// rewrite removes every marker; one left in a plan cannot be executed.
#[derive(Clone)]
pub(crate) struct DatasetScan {
    pub(crate) key: Arc<str>,
    pub(crate) input: LogicalPlan,
}

impl fmt::Debug for DatasetScan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatasetScan: {}", self.key)
    }
}

impl PartialEq for DatasetScan {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key && self.input == other.input
    }
}

impl Eq for DatasetScan {}

impl Hash for DatasetScan {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
        self.input.hash(state);
    }
}

impl PartialOrd for DatasetScan {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match self.key.partial_cmp(&other.key) {
            Some(Ordering::Equal) => self.input.partial_cmp(&other.input),
            ord => ord,
        }
    }
}

impl UserDefinedLogicalNodeCore for DatasetScan {
    fn name(&self) -> &str {
        "DatasetScan"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        self.input.schema()
    }

    fn expressions(&self) -> Vec<Expr> {
        vec![]
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "DatasetScan: {}", self.key)
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, inputs: Vec<LogicalPlan>) -> Result<Self> {
        match <[LogicalPlan; 1]>::try_from(inputs) {
            Ok([input]) => Ok(Self {
                key: Arc::clone(&self.key),
                input,
            }),
            Err(_) => internal_err!("DatasetScan takes one input"),
        }
    }
}
