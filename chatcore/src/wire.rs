//! The WebSocket protocol's frames (docs/API.md, "WebSocket: `GET /ws`"): what a client
//! sends ([`ClientFrame`]) and what the server sends ([`ServerFrame`]: its answers, and
//! the [`Event`]s of the rooms joined). chat-http writes and reads them, chat-client
//! reads and writes them: the protocol is spelt once.

use serde::{Deserialize, Serialize};

use crate::bus::Event;

/// The close code of a connection whose session is missing, refused or ended (logout,
/// expiry, a disabled officer).
pub const CLOSE_UNAUTHORIZED: u16 = 4401;
/// The close code of a connection that stopped reading or fell too far behind.
pub const CLOSE_TOO_SLOW: u16 = 4008;

/// A frame from the client. Exhaustive on purpose: a server must answer every kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// The first frame: the session's bearer token.
    Auth {
        /// The token.
        token: String,
    },
    /// Follow a chat's messages, from after `after_seq` when given.
    JoinChat {
        /// The chat (a UUID; kept as text so that the server can say what is wrong).
        #[serde(rename = "chatId")]
        chat_id: String,
        /// Replay every stored message with a greater seq first.
        #[serde(rename = "afterSeq", default, skip_serializing_if = "Option::is_none")]
        after_seq: Option<u64>,
    },
    /// Follow the shared queue (officers only).
    JoinOfficers,
    /// Stop following a chat.
    LeaveChat {
        /// The chat.
        #[serde(rename = "chatId")]
        chat_id: String,
    },
    /// The sender is typing in a chat (its customer or officer).
    Typing {
        /// The chat.
        #[serde(rename = "chatId")]
        chat_id: String,
    },
    /// The sender has seen a chat's entries up to `seq` (its customer or officer).
    Read {
        /// The chat.
        #[serde(rename = "chatId")]
        chat_id: String,
        /// The seq of the newest entry seen.
        seq: u64,
    },
}

/// A frame from the server: an answer to a client frame, or an event of a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ServerFrame {
    /// The token was accepted: who it is.
    Ready {
        /// `officer`, `customer` or `admin`.
        role: String,
        /// The officer's or customer's id; `admin` for the admin.
        subject: String,
    },
    /// A room was joined (`chat:<id>` or `officers:all`).
    Joined {
        /// The room.
        room: String,
    },
    /// A chat's room was left.
    Left {
        /// The room.
        room: String,
    },
    /// A refusal; the connection stays open unless a close follows.
    Error(ErrorFrame),
    /// An event of a joined room (or, for an officer, of their own chats).
    #[serde(untagged)]
    Event(Event),
}

/// The body of an `error` frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorFrame {
    /// The contract's code (`forbidden`, `invalid_frame`, ...).
    pub code: String,
    /// A sentence a person can act on.
    pub message: String,
    /// The room left because of this error (a right that ended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// The chat of that room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<String>,
    /// For `rate_limited`: seconds until a frame would be accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl ErrorFrame {
    /// An error frame with a code and a message only.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            room: None,
            chat_id: None,
            retry_after: None,
        }
    }
}

impl ServerFrame {
    /// Every `type` a server frame may have (answers and events): a client skips a frame
    /// of another type, from a newer server, and fails on a known one it cannot read.
    pub const TYPES: &'static [&'static str] = &[
        "ready",
        "joined",
        "left",
        "error",
        "new_message",
        "queue_chat_created",
        "queue_chat_claimed",
        "chat_assigned",
        "chat_updated",
        "chat_unassigned",
        "officer_updated",
        "queue_position",
        "read",
        "typing",
    ];

    /// Whether `kind` is one of [`ServerFrame::TYPES`].
    pub fn is_known_type(kind: &str) -> bool {
        Self::TYPES.contains(&kind)
    }

    /// The frame as the JSON text sent on the wire.
    pub fn to_json(&self) -> String {
        // Only strings, numbers and derived structs: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ids::ChatId;
    use crate::model::{Message, SenderType, Timestamp};

    #[test]
    fn client_frames_read_and_write_the_contract_spelling() {
        let join: ClientFrame =
            serde_json::from_value(json!({"type": "join_chat", "chatId": "x", "afterSeq": 4}))
                .unwrap();
        assert_eq!(
            join,
            ClientFrame::JoinChat {
                chat_id: "x".into(),
                after_seq: Some(4)
            }
        );
        let without = ClientFrame::JoinChat {
            chat_id: "x".into(),
            after_seq: None,
        };
        assert_eq!(
            serde_json::to_value(&without).unwrap(),
            json!({"type": "join_chat", "chatId": "x"})
        );
        assert_eq!(
            serde_json::to_value(ClientFrame::JoinOfficers).unwrap(),
            json!({"type": "join_officers"})
        );
        assert!(serde_json::from_value::<ClientFrame>(json!({"type": "nope"})).is_err());
    }

    #[test]
    fn server_frames_round_trip_answers_and_events() {
        let frames = [
            (
                ServerFrame::Ready {
                    role: "officer".into(),
                    subject: "alice".into(),
                },
                json!({"type": "ready", "role": "officer", "subject": "alice"}),
            ),
            (
                ServerFrame::Joined {
                    room: "officers:all".into(),
                },
                json!({"type": "joined", "room": "officers:all"}),
            ),
            (
                ServerFrame::Error(ErrorFrame {
                    retry_after: Some(3),
                    ..ErrorFrame::new("rate_limited", "slow down")
                }),
                json!({"type": "error", "code": "rate_limited", "message": "slow down",
                       "retryAfter": 3}),
            ),
        ];
        for (frame, spelt) in frames {
            assert_eq!(serde_json::to_value(&frame).unwrap(), spelt);
            assert_eq!(serde_json::from_value::<ServerFrame>(spelt).unwrap(), frame);
        }
        let message = Message {
            id: crate::ids::MessageId::new(),
            chat_id: ChatId::new(),
            seq: 7,
            sender_type: SenderType::Customer,
            sender_id: "c-1".into(),
            content: "hi".into(),
            created_at: Timestamp::now(),
            client_message_id: None,
            event: None,
            attachment: None,
        };
        let event = Event::NewMessage { message };
        let text = serde_json::to_string(&event).unwrap();
        assert_eq!(
            serde_json::from_str::<ServerFrame>(&text).unwrap(),
            ServerFrame::Event(event)
        );
    }

    #[test]
    fn the_list_of_types_names_every_answer_and_every_client_event() {
        let chat = crate::model::Chat {
            id: ChatId::new(),
            customer_id: crate::ids::CustomerId::parse("c-1").unwrap(),
            customer_name: None,
            assigned_officer_id: None,
            status: crate::model::ChatStatus::Pending,
            created_at: Timestamp::now(),
            updated_at: Timestamp::now(),
            resolved_at: None,
            last_seq: 0,
            customer_last_read_seq: 0,
            officer_last_read_seq: 0,
            queue_position: None,
            last_message: None,
        };
        let events = [
            Event::QueueChatCreated { chat: chat.clone() },
            Event::QueueChatClaimed { chat: chat.clone() },
            Event::ChatAssigned { chat: chat.clone() },
            Event::ChatUnassigned { chat: chat.clone() },
            Event::OfficerUpdated {
                officer: crate::model::Officer {
                    id: crate::ids::OfficerId::parse("o").unwrap(),
                    display_name: None,
                    created_at: Timestamp::now(),
                    disabled: false,
                    availability: crate::model::Availability::Away,
                    capacity: None,
                    open_chats: 0,
                    connected: false,
                },
            },
            Event::ChatUpdated {
                chat,
                change: crate::model::ChatChange::Claimed,
            },
            Event::QueuePosition {
                chat_id: ChatId::new(),
                position: 3,
            },
            Event::Read {
                chat_id: ChatId::new(),
                reader_type: SenderType::Officer,
                reader_id: "o".into(),
                seq: 2,
            },
            Event::Typing {
                chat_id: ChatId::new(),
                sender_type: SenderType::Customer,
                sender_id: "c".into(),
                expires_in_ms: 6000,
            },
        ];
        let answers = [
            ServerFrame::Ready {
                role: "admin".into(),
                subject: "admin".into(),
            },
            ServerFrame::Joined { room: "r".into() },
            ServerFrame::Left { room: "r".into() },
            ServerFrame::Error(ErrorFrame::new("c", "m")),
        ];
        let mut kinds: Vec<String> = answers
            .iter()
            .map(|f| {
                serde_json::to_value(f).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .chain(events.iter().map(|e| {
                let spelt = serde_json::to_value(e).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_string();
                assert_eq!(spelt, e.kind());
                spelt
            }))
            .collect();
        kinds.push("new_message".into());
        kinds.sort();
        let mut listed: Vec<String> = ServerFrame::TYPES.iter().map(|t| t.to_string()).collect();
        listed.sort();
        assert_eq!(kinds, listed);
    }
}
