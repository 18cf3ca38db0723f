//! The server's errors and their one mapping to gRPC status codes.

use bund_catalogs::SourceErrorKind;
use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error(
        "authentication required: log in with Flight Handshake (HTTP Basic) and send the returned bearer token"
    )]
    NoCredentials,
    #[error("unknown user or wrong password")]
    BadCredentials,
    #[error("the session token is invalid or expired: log in again")]
    BadToken,
    #[error("{what} is invalid, altered, expired or belongs to another user: {hint}")]
    BadHandle {
        what: &'static str,
        hint: &'static str,
    },
    /// A handle issued by another replica under a configuration this one has not loaded.
    #[error(
        "this {what} was issued under a configuration this server has not loaded yet (by another replica that loaded a change first); retry in a few seconds, and if it persists run or prepare the statement again"
    )]
    OtherVersion { what: &'static str },
    #[error("malformed request: {0}")]
    BadRequest(String),
    #[error(transparent)]
    Planner(#[from] bund_planner::Error),
    #[error(
        "server busy: {running} queries of {whose} are running and none finished within {waited_secs} s; retry later"
    )]
    Busy {
        running: usize,
        whose: &'static str,
        waited_secs: u64,
    },
    #[error("query exceeded the server's time limit of {secs} s")]
    Timeout { secs: u64 },
    #[error("query cancelled")]
    Cancelled,
    #[error("{0} is not supported by Bund")]
    Unsupported(&'static str),
    #[error(
        "too many requests from this principal or address: its audit budget is spent; retry after {retry_after_secs} s"
    )]
    RateLimited { retry_after_secs: u64 },
    #[error(
        "the audit log cannot be written (is its disk full?); no request is served until it can be: retry later"
    )]
    AuditUnwritable,
    #[error("internal error: {0}")]
    Internal(String),
}

/// How a failure of DataFusion while running a query should reach the client.
enum Class {
    /// The user's statement is at fault (division by zero, a failed cast, …).
    User(String),
    /// A data source could not be read.
    Source,
    /// Memory or other limits.
    Exhausted,
    /// Our bug or something unexpected.
    Internal,
}

fn classify_arrow(e: &ArrowError) -> Class {
    match e {
        ArrowError::DivideByZero => Class::User("division by zero".into()),
        ArrowError::CastError(m)
        | ArrowError::ParseError(m)
        | ArrowError::ArithmeticOverflow(m)
        | ArrowError::InvalidArgumentError(m)
        | ArrowError::ComputeError(m) => Class::User(m.clone()),
        ArrowError::MemoryError(_) => Class::Exhausted,
        ArrowError::IoError(_, _)
        | ArrowError::CsvError(_)
        | ArrowError::JsonError(_)
        | ArrowError::AvroError(_)
        | ArrowError::IpcError(_)
        | ArrowError::ParquetError(_) => Class::Source,
        ArrowError::NotYetImplemented(_)
        | ArrowError::ExternalError(_)
        | ArrowError::SchemaError(_)
        | ArrowError::CDataInterface(_)
        | ArrowError::DictionaryKeyOverflowError
        | ArrowError::RunEndIndexOverflowError
        | ArrowError::OffsetOverflowError(_) => Class::Internal,
    }
}

fn classify(e: &DataFusionError) -> Class {
    match e {
        DataFusionError::ArrowError(a, _) => classify_arrow(a),
        DataFusionError::ParquetError(_)
        | DataFusionError::ObjectStore(_)
        | DataFusionError::IoError(_) => Class::Source,
        DataFusionError::SQL(p, _) => Class::User(p.to_string()),
        DataFusionError::NotImplemented(m)
        | DataFusionError::Plan(m)
        | DataFusionError::Execution(m) => Class::User(m.clone()),
        DataFusionError::SchemaError(s, _) => Class::User(s.to_string()),
        DataFusionError::ResourcesExhausted(_) => Class::Exhausted,
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
            classify(inner)
        }
        DataFusionError::Shared(inner) => classify(inner),
        DataFusionError::Collection(errs) => errs.first().map_or(Class::Internal, classify),
        DataFusionError::Internal(_)
        | DataFusionError::Configuration(_)
        | DataFusionError::ExecutionJoin(_)
        | DataFusionError::External(_)
        | DataFusionError::Substrait(_)
        | DataFusionError::Ffi(_) => Class::Internal,
    }
}

/// The one mapping from Bund's errors to gRPC statuses. Internal details go to the log with
/// the request id; the client gets the id to quote.
pub(crate) fn status(e: &Error, request_id: &str) -> Status {
    use bund_planner::Error as P;
    match e {
        Error::NoCredentials | Error::BadCredentials | Error::BadToken => {
            Status::unauthenticated(e.to_string())
        }
        Error::BadHandle { .. } => Status::permission_denied(e.to_string()),
        Error::OtherVersion { .. } => Status::unavailable(e.to_string()),
        Error::BadRequest(_) => Status::invalid_argument(e.to_string()),
        Error::Planner(p) => match p {
            P::Syntax { .. } | P::Plan { .. } | P::Parameters { .. } => {
                Status::invalid_argument(p.to_string())
            }
            P::NotFound { .. } => Status::not_found(p.to_string()),
            P::Refused { .. } | P::Forbidden { .. } => Status::permission_denied(p.to_string()),
            P::UnknownPrincipal { .. } => Status::unauthenticated(p.to_string()),
            P::Limit { .. } => Status::invalid_argument(p.to_string()),
            P::Timeout => Status::deadline_exceeded(p.to_string()),
            P::Execution(df) => datafusion_status(df, request_id),
        },
        Error::Busy { .. } => Status::resource_exhausted(e.to_string()),
        Error::Timeout { .. } => Status::deadline_exceeded(e.to_string()),
        Error::Cancelled => Status::cancelled(e.to_string()),
        Error::Unsupported(_) => Status::unimplemented(e.to_string()),
        Error::RateLimited { .. } => Status::resource_exhausted(e.to_string()),
        Error::AuditUnwritable => {
            tracing::error!(request_id, "refused: the audit log cannot be written");
            Status::unavailable(e.to_string())
        }
        Error::Internal(detail) => {
            tracing::error!(request_id, detail, "internal error");
            Status::internal(format!("internal error (request id {request_id})"))
        }
    }
}

/// Maps a DataFusion failure during execution.
pub(crate) fn datafusion_status(e: &DataFusionError, request_id: &str) -> Status {
    // A database source's failure names the source and says what to expect: try again
    // later, or the statement ran past the source's timeout. The source's own message goes
    // to the log only: it can name a bureau's internal schema, hosts or users.
    if let Some(source) = bund_catalogs::source_error(e) {
        tracing::warn!(request_id, source = source.source, error = %source, "data source failed");
        let name = &source.source;
        return match source.kind {
            SourceErrorKind::Unavailable => Status::unavailable(format!(
                "data source `{name}` is unavailable; retry later (request id {request_id})"
            )),
            SourceErrorKind::Timeout => Status::deadline_exceeded(format!(
                "data source `{name}` cancelled the query at its statement timeout (request id {request_id})"
            )),
            SourceErrorKind::Remote => Status::failed_precondition(format!(
                "data source `{name}` failed the query; its message is in the server log under request id {request_id}"
            )),
        };
    }
    match classify(e) {
        Class::User(m) => Status::invalid_argument(m),
        Class::Source => {
            tracing::warn!(request_id, error = %e, "data source failed");
            Status::unavailable(format!(
                "a data source could not be read (request id {request_id})"
            ))
        }
        Class::Exhausted => {
            tracing::warn!(request_id, error = %e, "resources exhausted");
            Status::resource_exhausted(format!(
                "the query needs more memory than the server allows (request id {request_id})"
            ))
        }
        Class::Internal => {
            tracing::error!(request_id, error = %e, "internal error while running a query");
            Status::internal(format!("internal error (request id {request_id})"))
        }
    }
}

/// What the audit records of a failure while running: its kind, never its text, which may
/// quote a value of a row (a failed cast quotes the value) that the auditor's own grants
/// do not show. A data source's failure keeps the source's name and the class of its
/// failure, as the client reads them; the source's own message (which can name a bureau's
/// hosts, users or internal schema) is in the server log under the record's request id.
pub(crate) fn audit_text(e: &DataFusionError) -> String {
    if let Some(source) = bund_catalogs::source_error(e) {
        let what = match source.kind {
            SourceErrorKind::Unavailable => "is unavailable",
            SourceErrorKind::Timeout => "cancelled the query at its statement timeout",
            SourceErrorKind::Remote => "failed the query",
        };
        return format!(
            "data source `{}` {what} (its message is in the server log under this request id)",
            source.source
        );
    }
    let kind = match e.find_root() {
        DataFusionError::ArrowError(a, _) => match a.as_ref() {
            ArrowError::DivideByZero => "division by zero",
            ArrowError::CastError(_) => "a value could not be cast",
            ArrowError::ParseError(_) => "a value could not be parsed",
            ArrowError::ArithmeticOverflow(_) => "an arithmetic overflow",
            ArrowError::InvalidArgumentError(_) | ArrowError::ComputeError(_) => {
                "a function rejected a value"
            }
            ArrowError::MemoryError(_) => "out of memory",
            _ => "an internal error",
        },
        DataFusionError::ResourcesExhausted(_) => "the query needed more memory than allowed",
        DataFusionError::ParquetError(_)
        | DataFusionError::ObjectStore(_)
        | DataFusionError::IoError(_) => "a data source could not be read",
        DataFusionError::Execution(_) | DataFusionError::Plan(_) | DataFusionError::SQL(..) => {
            "the query failed while running"
        }
        _ => "an internal error",
    };
    format!("{kind} (the error's text is withheld from the audit: it may quote a row's values)")
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// Arrow and Flight failures in Bund's own code (building metadata batches, encoding
/// schemas) are bugs.
impl From<ArrowError> for Error {
    fn from(e: ArrowError) -> Self {
        Error::Internal(e.to_string())
    }
}

impl From<arrow_flight::error::FlightError> for Error {
    fn from(e: arrow_flight::error::FlightError) -> Self {
        Error::Internal(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use bund_catalogs::SourceError;
    use tonic::Code;

    use super::*;

    fn running(e: DataFusionError) -> Error {
        Error::Planner(bund_planner::Error::Execution(e))
    }

    #[test]
    fn an_invariant_failure_is_internal_with_the_request_id_and_nothing_else() {
        let e = running(DataFusionError::Internal(
            "column secret_column is not in the remote table".into(),
        ));
        let s = status(&e, "r42");
        assert_eq!(s.code(), Code::Internal);
        assert_eq!(s.message(), "internal error (request id r42)");
        let s = status(&Error::Internal("a login thread stopped".into()), "r43");
        assert_eq!(s.code(), Code::Internal);
        assert_eq!(s.message(), "internal error (request id r43)");
    }

    #[test]
    fn a_source_error_gives_its_class_and_source_not_its_text_to_the_client_or_the_audit() {
        for (kind, code) in [
            (SourceErrorKind::Unavailable, Code::Unavailable),
            (SourceErrorKind::Timeout, Code::DeadlineExceeded),
            (SourceErrorKind::Remote, Code::FailedPrecondition),
        ] {
            let source = SourceError {
                source: "hrss_pg".into(),
                kind,
                message: "relation \"hrss.staff_internal\" on db-7.internal does not exist".into(),
            };
            let failure = DataFusionError::from(source);
            let audited = audit_text(&failure);
            let s = status(&running(failure), "r7");
            assert_eq!(s.code(), code);
            assert!(s.message().contains("`hrss_pg`"), "{}", s.message());
            assert!(s.message().contains("request id r7"), "{}", s.message());
            // Nor does the audit record hold it: the server log does, under the request id.
            assert!(audited.contains("`hrss_pg`"), "{audited}");
            for text in [s.message(), audited.as_str()] {
                assert!(!text.contains("staff_internal"), "{text}");
                assert!(!text.contains("db-7"), "{text}");
            }
        }
    }

    #[test]
    fn an_error_in_the_users_statement_stays_helpful() {
        let e = running(DataFusionError::Plan("column \"x\" not found".into()));
        let s = status(&e, "r1");
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(s.message().contains("column \"x\" not found"));
    }
}
