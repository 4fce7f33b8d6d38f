//! The glue layer's error type and its one exit into PostgreSQL: `report()` turns any error
//! into an `ereport(ERROR)` with a SQLSTATE. Core errors (`core::error::CoreError`) arrive
//! here unchanged in kind; catalogue (SPI) failures and state violations are added.

use crate::core::error::CoreError;
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::{PgSqlErrorCode, PgSqlErrorCode::*};

#[derive(Debug, Clone)]
pub enum ChameleonError {
    Core(CoreError),
    /// An SPI call on the catalogue failed.
    Catalog(String),
    /// A source or table that does not exist.
    NotFound(String),
    /// The request does not fit the source's current state.
    State(String),
    /// An error PostgreSQL raised while we applied or copied data, with its SQLSTATE.
    Postgres {
        message: String,
        sqlstate: String,
    },
}

pub type Result<T> = std::result::Result<T, ChameleonError>;

impl From<CoreError> for ChameleonError {
    fn from(e: CoreError) -> Self {
        ChameleonError::Core(e)
    }
}

impl From<pgrx::spi::Error> for ChameleonError {
    fn from(e: pgrx::spi::Error) -> Self {
        ChameleonError::Catalog(format!("catalogue access failed: {e}"))
    }
}

impl std::fmt::Display for ChameleonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChameleonError::Core(e) => write!(f, "{e}"),
            ChameleonError::Catalog(m) | ChameleonError::NotFound(m) | ChameleonError::State(m) => f.write_str(m),
            ChameleonError::Postgres { message, .. } => f.write_str(message),
        }
    }
}

/// SQLSTATE text ("23505") of a PostgreSQL error code.
pub fn sqlstate_text(code: PgSqlErrorCode) -> String {
    let mut out = String::with_capacity(5);
    let mut v = code as i32;
    for _ in 0..5 {
        out.push((((v & 0x3F) as u8) + b'0') as char);
        v >>= 6;
    }
    out
}

impl ChameleonError {
    pub fn code(&self) -> PgSqlErrorCode {
        match self {
            ChameleonError::Core(e) => match e {
                CoreError::InvalidParameter(_) => ERRCODE_INVALID_PARAMETER_VALUE,
                CoreError::SourceConfig(_) => ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                CoreError::SourceConnection(_) => ERRCODE_CONNECTION_FAILURE,
                CoreError::SourceQuery(_) | CoreError::Binlog(_) => ERRCODE_EXTERNAL_ROUTINE_EXCEPTION,
                CoreError::BinlogPurged(_) => ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                CoreError::Value(_) | CoreError::Codec(_) => ERRCODE_DATA_EXCEPTION,
                CoreError::UnsupportedType(_) => ERRCODE_FEATURE_NOT_SUPPORTED,
            },
            ChameleonError::Catalog(_) => ERRCODE_INTERNAL_ERROR,
            ChameleonError::NotFound(_) => ERRCODE_UNDEFINED_OBJECT,
            ChameleonError::State(_) => ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            ChameleonError::Postgres { .. } => ERRCODE_EXTERNAL_ROUTINE_EXCEPTION,
        }
    }

    pub fn sqlstate(&self) -> String {
        match self {
            ChameleonError::Postgres { sqlstate, .. } => sqlstate.clone(),
            other => sqlstate_text(other.code()),
        }
    }

    pub fn context(self, ctx: impl std::fmt::Display) -> ChameleonError {
        match self {
            ChameleonError::Core(e) => ChameleonError::Core(e.context(ctx)),
            ChameleonError::Catalog(m) => ChameleonError::Catalog(format!("{ctx}: {m}")),
            ChameleonError::NotFound(m) => ChameleonError::NotFound(format!("{ctx}: {m}")),
            ChameleonError::State(m) => ChameleonError::State(format!("{ctx}: {m}")),
            ChameleonError::Postgres { message, sqlstate } => {
                ChameleonError::Postgres { message: format!("{ctx}: {message}"), sqlstate }
            }
        }
    }

    /// From an error PostgreSQL raised and pgrx caught.
    pub fn from_caught(e: &pg_sys::panic::CaughtError) -> ChameleonError {
        use pg_sys::panic::CaughtError;
        let report = match e {
            CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => r,
            CaughtError::RustPanic { ereport, .. } => ereport,
        };
        let mut message = report.message().to_string();
        if let Some(d) = report.detail() {
            message.push_str(&format!(" ({d})"));
        }
        ChameleonError::Postgres { message, sqlstate: sqlstate_text(report.sql_error_code()) }
    }

    /// Raises the error in the calling backend. Never returns.
    pub fn report(self) -> ! {
        let code = match &self {
            ChameleonError::Postgres { sqlstate, .. } => {
                // keep PostgreSQL's own SQLSTATE when re-raising one of its errors
                let b = sqlstate.as_bytes();
                if b.len() == 5 {
                    let mut v = 0i32;
                    for (i, c) in b.iter().enumerate() {
                        v += (((*c as i32) - ('0' as i32)) & 0x3F) << (6 * i);
                    }
                    PgSqlErrorCode::from(v)
                } else {
                    self.code()
                }
            }
            other => other.code(),
        };
        ereport!(ERROR, code, self.to_string());
    }
}

/// Unwraps a glue result at the SQL boundary.
pub fn ok<T>(r: Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => e.report(),
    }
}
