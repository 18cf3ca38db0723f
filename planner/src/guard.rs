//! The statement guard: only read-only statements reach the planner.

use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement;

use crate::error::{Error, Result};

/// What an admitted statement is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    Query,
    Explain,
    Show,
    Describe,
}

/// Admits SELECT / WITH / VALUES / EXPLAIN / SHOW / DESCRIBE; refuses everything else.
pub fn check_statement(statement: &DfStatement) -> Result<StatementKind> {
    match statement {
        DfStatement::Statement(s) => match s.as_ref() {
            Statement::Query(_) => Ok(StatementKind::Query),
            Statement::Explain { statement, .. } => {
                check_statement(&DfStatement::Statement(statement.clone()))?;
                Ok(StatementKind::Explain)
            }
            Statement::ExplainTable { .. } => Ok(StatementKind::Describe),
            Statement::ShowTables { .. } | Statement::ShowColumns { .. } => Ok(StatementKind::Show),
            other => Err(Error::Refused {
                what: statement_name(other),
            }),
        },
        DfStatement::Explain(e) => {
            check_statement(&e.statement)?;
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
