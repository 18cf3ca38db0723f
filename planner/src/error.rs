use datafusion::error::DataFusionError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The SQL text does not parse.
    #[error("SQL syntax error: {message}")]
    Syntax { message: String },
    /// The statement parses but cannot be planned (unknown column, type mismatch, …).
    #[error("{message}")]
    Plan { message: String },
    /// A table or schema that does not exist or that the principal may not see.
    #[error("table or view not found: {name}")]
    NotFound { name: String },
    /// A statement kind clients may not run (DDL, DML, COPY, SET, …).
    #[error(
        "{what} is not allowed: Bund is read-only; run SELECT, WITH, VALUES, EXPLAIN, SHOW or DESCRIBE"
    )]
    Refused { what: String },
    /// Something the principal may not do, for another reason than read-only-ness.
    #[error("{message}")]
    Forbidden { message: String },
    /// The principal no longer exists in the security catalog (it was reloaded).
    #[error("principal `{id}` is not in the security catalog; log in again")]
    UnknownPrincipal { id: String },
    /// Bound parameters that do not fit the statement.
    #[error("bad parameters: {message}")]
    Parameters { message: String },
    /// The statement is larger, deeper or plans to more than the server accepts.
    #[error("{message}")]
    Limit { message: String },
    /// Planning ran past the query's deadline.
    #[error("planning the statement ran past the query's time limit")]
    Timeout,
    /// A failure while running the query.
    #[error("{0}")]
    Execution(DataFusionError),
}

impl Error {
    /// Classifies an error DataFusion raised while planning.
    pub(crate) fn from_planning(e: DataFusionError) -> Self {
        if matches!(e.find_root(), DataFusionError::External(x) if x.is::<crate::limits::PlanningTimedOut>())
        {
            return Self::Timeout;
        }
        match e {
            DataFusionError::SQL(e, _) => Self::Syntax {
                message: e.to_string(),
            },
            DataFusionError::Plan(m) => Self::Plan { message: m },
            DataFusionError::SchemaError(e, _) => Self::Plan {
                message: e.to_string(),
            },
            DataFusionError::NotImplemented(m) => Self::Plan {
                message: format!("not supported: {m}"),
            },
            DataFusionError::Context(c, inner) => match Self::from_planning(*inner) {
                Self::Plan { message } => Self::Plan {
                    message: format!("{c}: {message}"),
                },
                other => other,
            },
            DataFusionError::Diagnostic(_, inner) => Self::from_planning(*inner),
            // DataFusion reports a call whose arguments fit no signature of the function
            // (`sum('x')`) as its own bug: it is the statement's
            DataFusionError::Internal(m) if m.contains("failed to match any signature") => {
                Self::Plan {
                    message: m
                        .split(". This issue was likely caused")
                        .next()
                        .unwrap_or(&m)
                        .to_string(),
                }
            }
            other => Self::Execution(other),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
