//! Domain objects of the wire contract (Officer, Chat, Message) and the values they carry.
//! Serde shapes here are exactly the contract's camelCase JSON; nothing here talks to storage.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::ids::{ChatId, CustomerId, MessageId, OfficerId};

/// A point in time with millisecond precision, serialized as RFC 3339 in UTC
/// (`2026-11-24T11:17:19.123Z`).
///
/// Millisecond precision is what every store keeps, so a value read back equals the one
/// written.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// From milliseconds since the Unix epoch.
    pub const fn from_unix_millis(ms: i64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn unix_millis(self) -> i64 {
        self.0
    }

    /// The current time from the system clock.
    pub fn now() -> Self {
        let now = OffsetDateTime::now_utc();
        Self((now.unix_timestamp_nanos() / 1_000_000) as i64)
    }

    /// This time plus a duration (saturating).
    pub fn plus(self, d: std::time::Duration) -> Self {
        Self(
            self.0
                .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    }

    fn to_datetime(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

/// RFC 3339 in UTC with exactly three fractional digits, so that the text sorts as the
/// time does (`2026-11-24T11:17:19.120Z`, never `...19.12Z`).
const WIRE_FORMAT: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
);

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_datetime().format(WIRE_FORMAT) {
            Ok(s) => f.write_str(&s),
            Err(_) => write!(f, "@{}ms", self.0),
        }
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let dt = OffsetDateTime::parse(&s, &Rfc3339).map_err(serde::de::Error::custom)?;
        Ok(Self((dt.unix_timestamp_nanos() / 1_000_000) as i64))
    }
}

/// A loan officer. Never carries a password or its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Officer {
    /// The officer's id.
    pub id: OfficerId,
    /// A name to show to customers and colleagues.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// When the officer was created.
    pub created_at: Timestamp,
}

/// Where a chat stands. More states (resolved, ...) will come with the chat lifecycle, so
/// match on this with a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChatStatus {
    /// In the shared queue, waiting for an officer.
    Pending,
    /// Owned by one officer.
    Assigned,
}

impl ChatStatus {
    /// The contract's spelling (`pending`, `assigned`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChatStatus::Pending => "pending",
            ChatStatus::Assigned => "assigned",
        }
    }

    /// Parses the contract's spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(ChatStatus::Pending),
            "assigned" => Some(ChatStatus::Assigned),
            _ => None,
        }
    }
}

/// A customer's conversation. There is exactly one chat per customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Chat {
    /// The chat's id.
    pub id: ChatId,
    /// The customer this chat belongs to.
    pub customer_id: CustomerId,
    /// The customer's name, shown to officers, when the host application vouched for one
    /// (the `name` claim of an identity token); `None` otherwise. The newest login that
    /// gave a name set it.
    #[serde(default)]
    pub customer_name: Option<String>,
    /// The officer who owns the chat; `None` while it is pending.
    pub assigned_officer_id: Option<OfficerId>,
    /// Pending or assigned.
    pub status: ChatStatus,
    /// When the chat was created (the queue is ordered by this).
    pub created_at: Timestamp,
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SenderType {
    /// The chat's customer.
    Customer,
    /// The chat's assigned officer.
    Officer,
}

impl SenderType {
    /// The contract's spelling (`customer`, `officer`).
    pub fn as_str(self) -> &'static str {
        match self {
            SenderType::Customer => "customer",
            SenderType::Officer => "officer",
        }
    }

    /// Parses the contract's spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "customer" => Some(SenderType::Customer),
            "officer" => Some(SenderType::Officer),
            _ => None,
        }
    }
}

/// A message in a chat. `seq` is 1 for a chat's first message and grows by exactly one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// The message's id.
    pub id: MessageId,
    /// The chat it belongs to.
    pub chat_id: ChatId,
    /// Position in the chat: 1, 2, 3, ... with no gap.
    pub seq: u64,
    /// Customer or officer.
    pub sender_type: SenderType,
    /// The customer's or the officer's id, always taken from the sender's identity.
    pub sender_id: String,
    /// The text, as sent.
    pub content: String,
    /// When the message was stored.
    pub created_at: Timestamp,
    /// The sender's idempotency key, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_message_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_with_millis() {
        let t = Timestamp::from_unix_millis(1_764_000_000_123);
        let s = serde_json::to_string(&t).unwrap();
        assert_eq!(s, "\"2025-11-24T16:00:00.123Z\"");
        let back: Timestamp = serde_json::from_str(&s).unwrap();
        assert_eq!(back, t);
        // Always three digits, so that text order is time order.
        for (ms, text) in [
            (1_764_000_000_000, "2025-11-24T16:00:00.000Z"),
            (1_764_000_000_100, "2025-11-24T16:00:00.100Z"),
            (1_764_000_000_120, "2025-11-24T16:00:00.120Z"),
        ] {
            let t = Timestamp::from_unix_millis(ms);
            assert_eq!(t.to_string(), text);
            assert_eq!(serde_json::from_value::<Timestamp>(text.into()).unwrap(), t);
        }
    }

    #[test]
    fn chat_serializes_in_contract_shape() {
        let chat = Chat {
            id: ChatId::new(),
            customer_id: CustomerId::parse("c1").unwrap(),
            customer_name: None,
            assigned_officer_id: None,
            status: ChatStatus::Pending,
            created_at: Timestamp::from_unix_millis(0),
        };
        let v = serde_json::to_value(&chat).unwrap();
        assert_eq!(v["customerId"], "c1");
        assert!(v["customerName"].is_null());
        assert!(v["assignedOfficerId"].is_null());
        assert_eq!(v["status"], "pending");
        assert_eq!(v["createdAt"], "1970-01-01T00:00:00.000Z");
    }
}
