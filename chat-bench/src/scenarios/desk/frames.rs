//! The fields of server frames that the desk's officers, customers and monitors read,
//! borrowed from the frame's text: hundreds of sockets read every queue event on the
//! same two cores as the server, so what a frame costs the bench is load measured. It
//! reads; it decides nothing.

use std::borrow::Cow;

use serde::Deserialize;

/// A frame, as far as the desk reads it (every field but `type` optional).
#[derive(Debug, Deserialize)]
pub(super) struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    pub(super) kind: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(super) room: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) chat: Option<FrameChat<'a>>,
    #[serde(borrow, default)]
    pub(super) message: Option<FrameMessage<'a>>,
    #[serde(borrow, default)]
    pub(super) officer: Option<FrameOfficer<'a>>,
    #[serde(borrow, default)]
    pub(super) code: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct FrameChat<'a> {
    #[serde(borrow)]
    pub(super) id: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) customer_id: Cow<'a, str>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct FrameMessage<'a> {
    #[serde(borrow)]
    pub(super) chat_id: Cow<'a, str>,
    pub(super) seq: u64,
    #[serde(borrow)]
    pub(super) sender_type: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(super) client_message_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) event: Option<FrameEvent<'a>>,
    /// When the server stored it (its clock, to the millisecond).
    #[serde(default)]
    pub(super) created_at: Option<chatcore::Timestamp>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct FrameEvent<'a> {
    #[serde(borrow)]
    pub(super) kind: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(super) officer_id: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct FrameOfficer<'a> {
    #[serde(borrow)]
    pub(super) id: Cow<'a, str>,
    #[serde(default)]
    pub(super) capacity: Option<u32>,
    #[serde(default)]
    pub(super) open_chats: u32,
}

/// Parses the fields the desk reads; `None` for a frame that is not a JSON object with
/// a `type`.
pub(super) fn parse(text: &str) -> Option<Frame<'_>> {
    serde_json::from_str(text).ok()
}

/// The frame's `type` when the server wrote it first (as it does), read without parsing
/// the rest: lets a reader skip the frames it has no use for at the cost of a prefix
/// comparison. `None` when it is not first: parse then.
pub(super) fn leading_type(text: &str) -> Option<&str> {
    let rest = text.strip_prefix(r#"{"type":""#)?;
    rest.split_once('"').map(|(kind, _)| kind)
}

/// `o3` or `c1`: which side wrote a bench message, and its number in the chat.
pub(super) fn message_number(client_message_id: &str) -> Option<(char, u32)> {
    let mut chars = client_message_id.chars();
    let side = chars.next().filter(|c| matches!(c, 'c' | 'o'))?;
    chars.as_str().parse().ok().map(|k| (side, k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leading_type_is_read_without_parsing() {
        assert_eq!(
            leading_type(r#"{"type":"officer_updated","officer":{}}"#),
            Some("officer_updated")
        );
        assert_eq!(leading_type(r#"{"officer":{},"type":"x"}"#), None);
        assert_eq!(leading_type("not json"), None);
    }

    #[test]
    fn message_frames_parse_with_their_system_event() {
        let text = r#"{"type":"new_message","message":{"id":"m","chatId":"c-1","seq":3,
            "senderType":"system","senderId":"auto","content":"The chat was assigned to x",
            "createdAt":"2026-11-24T11:17:19.123Z",
            "event":{"kind":"assigned","officerId":"x","officerName":"X"}}}"#;
        let frame = parse(text).unwrap();
        assert_eq!(frame.kind, "new_message");
        let message = frame.message.unwrap();
        assert_eq!((message.chat_id.as_ref(), message.seq), ("c-1", 3));
        let event = message.event.unwrap();
        assert_eq!(event.kind, "assigned");
        assert_eq!(event.officer_id.as_deref(), Some("x"));
        assert!(message.client_message_id.is_none());
        assert_eq!(
            message.created_at.map(chatcore::Timestamp::unix_millis),
            Some(1_795_519_039_123)
        );
    }

    #[test]
    fn chat_and_officer_frames_parse() {
        let chat = parse(
            r#"{"type":"queue_chat_created","chat":{"id":"c-1","customerId":"bench-d7",
                "status":"pending","queuePosition":3}}"#,
        )
        .unwrap();
        assert_eq!(chat.chat.unwrap().customer_id, "bench-d7");
        let officer = parse(
            r#"{"type":"officer_updated","officer":{"id":"o1","capacity":5,"openChats":2,
                "availability":"available","connected":true}}"#,
        )
        .unwrap()
        .officer
        .unwrap();
        assert_eq!((officer.capacity, officer.open_chats), (Some(5), 2));
        let unlimited =
            parse(r#"{"type":"officer_updated","officer":{"id":"o1","capacity":null}}"#)
                .unwrap()
                .officer
                .unwrap();
        assert_eq!((unlimited.capacity, unlimited.open_chats), (None, 0));
    }

    #[test]
    fn bench_message_ids_name_side_and_number() {
        assert_eq!(message_number("c1"), Some(('c', 1)));
        assert_eq!(message_number("o12"), Some(('o', 12)));
        assert_eq!(message_number("x1"), None);
        assert_eq!(message_number("c"), None);
    }
}
