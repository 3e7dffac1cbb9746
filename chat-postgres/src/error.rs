//! The one mapping of PostgreSQL and pool failures to `chatcore::StoreError`. It decides
//! what a caller may retry; it must not log or hide errors.

use chatcore::StoreError;
use deadpool_postgres::PoolError;
use tokio_postgres::error::SqlState;

/// Maps a driver error: unique violations are `Duplicate`; a lost or refused connection
/// and server states that pass by themselves (shutdown, starting up, too many
/// connections, out of disk) are `Unavailable`; anything else is `Backend`.
pub(crate) fn classify(e: tokio_postgres::Error) -> StoreError {
    match e.code() {
        Some(code) if *code == SqlState::UNIQUE_VIOLATION => StoreError::Duplicate,
        Some(code) if is_transient(code) => StoreError::Unavailable(Box::new(e)),
        Some(_) => StoreError::Backend(Box::new(e)),
        // No SQLSTATE: the error came from the client side (I/O, a closed connection,
        // a timeout while connecting), so the server could not be reached.
        None if e.is_closed() || is_io(&e) => StoreError::Unavailable(Box::new(e)),
        None => StoreError::Backend(Box::new(e)),
    }
}

/// Maps a pool failure: every one of them means no connection could be had.
pub(crate) fn classify_pool(e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => match classify(e) {
            StoreError::Backend(inner) => StoreError::Unavailable(inner),
            other => other,
        },
        PoolError::Closed => StoreError::closed(),
        other => StoreError::Unavailable(Box::new(other)),
    }
}

fn is_transient(code: &SqlState) -> bool {
    let class = &code.code()[..2];
    // 08: connection exception; 53: insufficient resources (disk full, too many
    // connections); 57P01-57P03: admin shutdown, crash shutdown, cannot connect now.
    class == "08"
        || class == "53"
        || *code == SqlState::ADMIN_SHUTDOWN
        || *code == SqlState::CRASH_SHUTDOWN
        || *code == SqlState::CANNOT_CONNECT_NOW
        || *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::T_R_DEADLOCK_DETECTED
}

fn is_io(e: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}
