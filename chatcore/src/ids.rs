//! Validated identifiers: officer and customer ids (1-64 of `[A-Za-z0-9._-]`), chat and
//! message ids (UUIDs). A value of these types is valid by construction, so nothing past
//! the parse step re-checks it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::error::Error;

/// Longest officer or customer id, in bytes (the allowed characters are all ASCII).
pub const MAX_NAME_ID_LEN: usize = 64;

/// Which kind of identifier a value was meant to be; used in validation errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// An [`OfficerId`].
    Officer,
    /// A [`CustomerId`].
    Customer,
    /// A [`ChatId`].
    Chat,
    /// A [`MessageId`].
    Message,
    /// An [`AttachmentId`].
    Attachment,
}

impl IdKind {
    /// The field name used in messages, e.g. `officerId`.
    pub fn field(self) -> &'static str {
        match self {
            IdKind::Officer => "officerId",
            IdKind::Customer => "customerId",
            IdKind::Chat => "chatId",
            IdKind::Message => "messageId",
            IdKind::Attachment => "attachmentId",
        }
    }
}

fn check_name_id(kind: IdKind, s: &str) -> Result<(), Error> {
    let ok = !s.is_empty()
        && s.len() <= MAX_NAME_ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId {
            kind,
            reason: format!(
                "{} must be 1-{MAX_NAME_ID_LEN} characters of A-Z, a-z, 0-9, '.', '_' or '-'",
                kind.field()
            ),
        })
    }
}

macro_rules! name_id {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String, description = "1-64 characters of A-Z, a-z, 0-9, '.', '_' or '-'"))]
        pub struct $name(String);

        impl $name {
            /// Validates `s` and wraps it.
            pub fn parse(s: impl Into<String>) -> Result<Self, Error> {
                let s = s.into();
                check_name_id($kind, &s)?;
                Ok(Self(s))
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                Self::parse(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_id!(
    /// An officer's id, chosen when the officer is created: 1-64 of `[A-Za-z0-9._-]`.
    OfficerId,
    IdKind::Officer
);
name_id!(
    /// A customer's id, given by the host application: 1-64 of `[A-Za-z0-9._-]`.
    CustomerId,
    IdKind::Customer
);

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String, format = Uuid))]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered (UUIDv7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Parses the hyphenated (or any standard) UUID form.
            pub fn parse(s: &str) -> Result<Self, Error> {
                Uuid::parse_str(s).map(Self).map_err(|_| Error::InvalidId {
                    kind: $kind,
                    reason: format!("{} must be a UUID", $kind.field()),
                })
            }

            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                Self::parse(s)
            }
        }
    };
}

uuid_id!(
    /// A chat's id (a UUID, generated by the engine).
    ChatId,
    IdKind::Chat
);
uuid_id!(
    /// A message's id (a UUID, generated by the engine).
    MessageId,
    IdKind::Message
);
uuid_id!(
    /// An attachment's id (a UUID, generated by the engine for each upload; two uploads of
    /// the same bytes get two ids and share one stored blob).
    AttachmentId,
    IdKind::Attachment
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_ids_accept_the_contract_alphabet_and_length() {
        assert!(OfficerId::parse("a").is_ok());
        assert!(OfficerId::parse("Alice.B_c-9").is_ok());
        assert!(CustomerId::parse("x".repeat(64)).is_ok());
        for bad in ["", " ", "a b", "é", "a/b", "a\0", "<script>"] {
            assert!(OfficerId::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(CustomerId::parse("x".repeat(65)).is_err());
    }

    #[test]
    fn uuid_ids_round_trip_and_reject_garbage() {
        let id = ChatId::new();
        assert_eq!(ChatId::parse(&id.to_string()).unwrap(), id);
        assert!(ChatId::parse("not-a-uuid").is_err());
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
    }

    #[test]
    fn deserializing_checks_the_alphabet() {
        assert!(serde_json::from_str::<OfficerId>("\"ok\"").is_ok());
        assert!(serde_json::from_str::<OfficerId>("\"not ok\"").is_err());
    }
}
