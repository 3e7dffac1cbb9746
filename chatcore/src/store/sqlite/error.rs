//! How SQLite errors map to the store's error classes; the one place that decides what a
//! caller may retry. It must not log or hide errors.

use rusqlite::ErrorCode;

use crate::store::StoreError;

/// Maps a SQLite error to the store's error classes: conditions that go away by
/// themselves or by an operator's action (full disk, read-only file, lock) are
/// `Unavailable`; unique-key violations are `Duplicate`.
pub(super) fn classify(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(err, _) = &e {
        match err.code {
            ErrorCode::ConstraintViolation
                if err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                    || err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
            {
                return StoreError::Duplicate;
            }
            ErrorCode::DiskFull
            | ErrorCode::ReadOnly
            | ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::CannotOpen
            | ErrorCode::SystemIoFailure
            | ErrorCode::OutOfMemory => return StoreError::Unavailable(Box::new(e)),
            _ => {}
        }
    }
    StoreError::Backend(Box::new(e))
}
