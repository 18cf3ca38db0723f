//! The scan of a database table: one SQL statement, its rows streamed as batches by the
//! database kind's reader (`postgres::read`, `sqlite::read`) on a task of its own.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result, internal_err};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};

use super::{Database, Scan};

/// Reads one SQL statement from a database; EXPLAIN shows the statement.
#[derive(Debug)]
pub(crate) struct RemoteScanExec {
    database: Arc<dyn Database>,
    sql: String,
    schema: SchemaRef,
    batch_size: usize,
    properties: Arc<PlanProperties>,
}

impl RemoteScanExec {
    pub(crate) fn new(
        database: Arc<dyn Database>,
        sql: String,
        schema: SchemaRef,
        batch_size: usize,
    ) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self {
            database,
            sql,
            schema,
            batch_size: batch_size.max(1),
            properties: Arc::new(properties),
        }
    }

    fn label(&self) -> &'static str {
        self.database.scan_name()
    }
}

impl DisplayAs for RemoteScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "{}: source={} sql={}",
            self.label(),
            self.database.name(),
            self.sql
        )
    }
}

impl ExecutionPlan for RemoteScanExec {
    fn name(&self) -> &str {
        self.label()
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    #[allow(deprecated)]
    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            internal_err!("{} has no children", self.label())
        }
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return internal_err!("{} has one partition, not {partition}", self.label());
        }
        // Two batches in flight: the database keeps sending while the client reads.
        let mut builder = RecordBatchReceiverStreamBuilder::new(Arc::clone(&self.schema), 2);
        let scan = Scan {
            sql: self.sql.clone(),
            schema: Arc::clone(&self.schema),
            batch_size: self.batch_size,
        };
        Arc::clone(&self.database).read(scan, &mut builder);
        Ok(builder.build())
    }
}
