//! The statement guard: only read-only statements reach the planner.

use std::ops::ControlFlow;

use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{Expr, ObjectName, Statement, TableFactor, Visit, Visitor};

use crate::error::{Error, Result};

/// What an admitted statement is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    Query,
    Explain,
    Show,
    Describe,
}

/// Table functions that read no data: the only ones a statement may call (every other one is
/// refused here), and the only table scans the security rewrite leaves as they are. The one
/// list of them.
pub(crate) const TABLE_FUNCTIONS: &[&str] = &["generate_series", "range"];

/// Admits SELECT / WITH / VALUES / EXPLAIN / SHOW / DESCRIBE; refuses everything else, and
/// calls of policy-only functions or of table functions that read files.
pub fn check_statement(statement: &DfStatement) -> Result<StatementKind> {
    let kind = check_kind(statement)?;
    let mut calls = Calls(None);
    let flow = match statement {
        DfStatement::Statement(s) => s.visit(&mut calls),
        DfStatement::Explain(e) => match e.statement.as_ref() {
            DfStatement::Statement(s) => s.visit(&mut calls),
            _ => ControlFlow::Continue(()),
        },
        _ => ControlFlow::Continue(()),
    };
    match (flow, calls.0) {
        (ControlFlow::Break(()), Some(e)) => Err(e),
        _ => Ok(kind),
    }
}

/// The last part of a function or table name, unquoted and lower-cased.
fn base_name(name: &ObjectName) -> String {
    name.0
        .last()
        .map(|p| p.to_string())
        .unwrap_or_default()
        .trim_matches(|c| c == '"' || c == '`')
        .to_lowercase()
}

/// Finds the first forbidden call in a statement.
struct Calls(Option<Error>);

impl Visitor for Calls {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if let Expr::Function(f) = expr {
            let name = base_name(&f.name);
            if bund_udfs::POLICY_ONLY.contains(&name.as_str()) {
                self.0 = Some(Error::Forbidden {
                    message: format!(
                        "{name} carries a secret key and can only be used by security policies"
                    ),
                });
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        let refused = match factor {
            TableFactor::Table {
                name,
                args: Some(_),
                ..
            } => {
                let n = base_name(name);
                (!TABLE_FUNCTIONS.contains(&n.as_str())).then_some(n)
            }
            TableFactor::Function { name, .. } => Some(base_name(name)),
            TableFactor::TableFunction { .. } => Some("TABLE(…)".to_string()),
            _ => None,
        };
        match refused {
            Some(name) => {
                self.0 = Some(Error::Refused {
                    what: format!("the table function {name}"),
                });
                ControlFlow::Break(())
            }
            None => ControlFlow::Continue(()),
        }
    }
}

fn check_kind(statement: &DfStatement) -> Result<StatementKind> {
    match statement {
        DfStatement::Statement(s) => match s.as_ref() {
            Statement::Query(_) => Ok(StatementKind::Query),
            Statement::Explain { statement, .. } => {
                check_kind(&DfStatement::Statement(statement.clone()))?;
                Ok(StatementKind::Explain)
            }
            Statement::ExplainTable { .. } => Ok(StatementKind::Describe),
            Statement::ShowTables { .. } | Statement::ShowColumns { .. } => Ok(StatementKind::Show),
            other => Err(Error::Refused {
                what: statement_name(other),
            }),
        },
        DfStatement::Explain(e) => {
            check_kind(&e.statement)?;
            Ok(StatementKind::Explain)
        }
        DfStatement::CreateExternalTable(_) => Err(Error::Refused {
            what: "CREATE EXTERNAL TABLE".into(),
        }),
        DfStatement::CopyTo(_) => Err(Error::Refused {
            what: "COPY".into(),
        }),
        DfStatement::Reset(_) => Err(Error::Refused {
            what: "RESET".into(),
        }),
    }
}

/// The leading keywords of a statement, for the refusal message (never its literals).
fn statement_name(s: &Statement) -> String {
    let text = s.to_string();
    let words: Vec<&str> = text
        .split_whitespace()
        .take_while(|w| w.chars().all(|c| c.is_ascii_alphabetic() || c == '_'))
        .take(3)
        .collect();
    if words.is_empty() {
        "this statement".to_string()
    } else {
        words.join(" ").to_uppercase()
    }
}
