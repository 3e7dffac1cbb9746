//! The desk scenario's bookkeeping, without I/O: what each chat went through, written by
//! both its parties (the customer's task and the officer who has it) and judged at the
//! end; officers' loads against their capacity; which officers had to hear a chat's
//! queue event, and when the last of them did.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::stats::Latencies;

/// Who wrote or read a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    Customer,
    Officer,
}

impl Side {
    fn index(self) -> usize {
        match self {
            Side::Customer => 0,
            Side::Officer => 1,
        }
    }

    fn other(self) -> Side {
        match self {
            Side::Customer => Side::Officer,
            Side::Officer => Side::Customer,
        }
    }
}

/// One customer's chat, shared by the customer's task and the officer's (a lock per
/// chat: at most two writers, a few times a second).
#[derive(Debug, Default)]
pub(super) struct Ledger(Mutex<ChatRecord>);

impl Ledger {
    pub(super) fn lock(&self) -> MutexGuard<'_, ChatRecord> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A message a party sent: when the send started, and its seq once acknowledged.
#[derive(Debug, Clone)]
pub(super) struct SentMessage {
    key: String,
    from: Side,
    start: Instant,
    seq: Option<u64>,
}

#[derive(Debug, Default)]
pub(super) struct ChatRecord {
    /// Messages each way, drawn by the customer before logging in.
    pub(super) rounds: u32,
    pub(super) login_start: Option<Instant>,
    pub(super) login_end: Option<Instant>,
    /// When the customer learned that an officer has the chat: the login's answer, or
    /// their socket's receipt of the assignment's entry.
    pub(super) assigned_seen: Option<Instant>,
    pub(super) assigned_in_login: bool,
    /// The officer named by each assignment entry (`assigned`, `claimed`) the customer's
    /// socket got.
    pub(super) assignment_entries: Vec<String>,
    /// Officers (by index) who took the chat as theirs: a `chat_assigned` or a won claim.
    pub(super) takers: Vec<usize>,
    /// When each side's socket last joined the chat's room (answered `joined`); `None`
    /// while it is not in the room.
    pub(super) joined: [Option<Instant>; 2],
    sends: Vec<SentMessage>,
    /// Seqs of the other side's messages each side received, by receiving side.
    received: [Vec<u64>; 2],
    /// The customer's socket got the resolution's entry.
    pub(super) resolved_seen: bool,
    /// The officer's resolve was answered 200.
    pub(super) resolved_by_officer: bool,
    /// The first thing that went wrong with this chat (a refusal, a closed socket, ...).
    pub(super) failure: Option<String>,
}

/// What a chat came to, judged at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Verdict {
    pub(super) served: bool,
    pub(super) assignment_entries: usize,
    pub(super) takers: usize,
    /// The entries and the takers name the same one officer.
    pub(super) one_owner: bool,
    pub(super) acknowledged: usize,
    /// Acknowledged messages the other side never received.
    pub(super) lost: usize,
}

impl ChatRecord {
    /// A send is about to start (recorded before the request, so that the other side
    /// may receive it before the answer arrives).
    pub(super) fn sending(&mut self, from: Side, key: &str, start: Instant) {
        self.sends.push(SentMessage {
            key: key.to_string(),
            from,
            start,
            seq: None,
        });
    }

    /// The server acknowledged a send with this seq.
    pub(super) fn acknowledged(&mut self, from: Side, key: &str, seq: u64) {
        if let Some(sent) = self
            .sends
            .iter_mut()
            .find(|s| s.from == from && s.key == key)
        {
            sent.seq = Some(seq);
        }
    }

    /// `by` received the other side's message `key` at `at`. The delivery's latency when
    /// it was live: sent after `by` joined the room (a message sent before, replayed by
    /// the join, measures the join, not delivery).
    pub(super) fn received(
        &mut self,
        by: Side,
        key: &str,
        seq: u64,
        at: Instant,
    ) -> Option<Duration> {
        self.received[by.index()].push(seq);
        let joined = self.joined[by.index()]?;
        let sent = self
            .sends
            .iter()
            .find(|s| s.from == by.other() && s.key == key)?;
        (sent.start >= joined).then(|| at.saturating_duration_since(sent.start))
    }

    /// Records the first failure only.
    pub(super) fn fail(&mut self, why: impl Into<String>) {
        if self.failure.is_none() {
            self.failure = Some(why.into());
        }
    }

    pub(super) fn verdict(&self, officer_ids: &[String]) -> Verdict {
        let acknowledged = self.sends.iter().filter(|s| s.seq.is_some()).count();
        let lost = self
            .sends
            .iter()
            .filter_map(|s| s.seq.map(|seq| (s.from, seq)))
            .filter(|(from, seq)| !self.received[from.other().index()].contains(seq))
            .count();
        let one_owner = match (self.assignment_entries.as_slice(), self.takers.as_slice()) {
            ([named], [taker]) => officer_ids.get(*taker) == Some(named),
            _ => false,
        };
        Verdict {
            served: self.resolved_seen && self.failure.is_none(),
            assignment_entries: self.assignment_entries.len(),
            takers: self.takers.len(),
            one_owner,
            acknowledged,
            lost,
        }
    }
}

/// Officers' loads as seen (in `officer_updated` events, in the officers' list, in an
/// officer's own count), each against the capacity in force.
#[derive(Debug, Default, Clone)]
pub(super) struct CapacityTracker {
    pub(super) observations: u64,
    pub(super) violations: u64,
    /// The first few violations, in words.
    pub(super) examples: Vec<String>,
    /// The most open chats seen on one officer.
    pub(super) peak_open: u32,
    /// Observations of an officer exactly at capacity (the limit was reached, not only
    /// respected).
    pub(super) at_capacity: u64,
}

impl CapacityTracker {
    pub(super) fn observe(
        &mut self,
        officer: &str,
        open: u32,
        capacity: Option<u32>,
        source: &str,
    ) {
        self.observations += 1;
        self.peak_open = self.peak_open.max(open);
        match capacity {
            Some(capacity) if open > capacity => {
                self.violations += 1;
                if self.examples.len() < 5 {
                    self.examples.push(format!(
                        "{officer}: {open} open chats, capacity {capacity} ({source})"
                    ));
                }
            }
            Some(capacity) if open == capacity => self.at_capacity += 1,
            _ => {}
        }
    }

    pub(super) fn merge(&mut self, other: &CapacityTracker) {
        self.observations += other.observations;
        self.violations += other.violations;
        self.peak_open = self.peak_open.max(other.peak_open);
        self.at_capacity += other.at_capacity;
        for example in &other.examples {
            if self.examples.len() < 5 {
                self.examples.push(example.clone());
            }
        }
    }
}

/// When an officer's socket was in `officers:all`: from its `joined` until it closed
/// (`None`: open at the end).
pub(super) type Session = (Instant, Option<Instant>);

/// How long after a login's answer an officer's socket must have stayed open for the
/// login's queue event to be owed to it (the event is published before the answer).
pub(super) const QUEUE_EVENT_GRACE: Duration = Duration::from_secs(1);

/// Whether an officer with these sessions had to receive the queue event of a chat whose
/// login ran from `start` to `end`: one session was in the room before the login started
/// and stayed until a grace after its answer.
pub(super) fn owed(sessions: &[Session], start: Instant, end: Instant) -> bool {
    sessions.iter().any(|(joined, closed)| {
        *joined <= start && closed.is_none_or(|c| c >= end + QUEUE_EVENT_GRACE)
    })
}

/// One officer's receipts of queue events: (customer index, time since the run's epoch).
#[derive(Debug, Default)]
pub(super) struct QueueLog {
    /// The node the officer's socket is on (customer `i` logs in on node `i % nodes`).
    pub(super) node: usize,
    pub(super) sessions: Vec<Session>,
    pub(super) receipts: Vec<(u32, Duration)>,
}

/// Queue events to every officer: each receipt's latency from its chat's login, and per
/// chat until the last officer had it; events owed and not received.
#[derive(Default)]
pub(super) struct QueueFanout {
    pub(super) each: Latencies,
    pub(super) last: Latencies,
    pub(super) owed: u64,
    pub(super) missing: u64,
    pub(super) duplicates: u64,
    /// Chats whose event reached every officer it was owed to.
    pub(super) complete: u64,
    /// Receipts on another node than the chat's login.
    pub(super) remote: u64,
}

/// Judges the officers' queue logs against the customers' logins (by customer index:
/// the login's start and end, `None` for a login that never answered). A queue event is
/// owed only to the officers on the node of the chat's login: another node delivers it
/// only while the chat is still pending when the notice arrives (docs/API.md, "Events":
/// a node never hands out a state that is gone), which in automatic mode it seldom is.
pub(super) fn queue_fanout(
    epoch: Instant,
    logins: &[Option<(Instant, Instant)>],
    nodes: usize,
    officers: &[QueueLog],
) -> QueueFanout {
    let nodes = nodes.max(1);
    let mut fanout = QueueFanout::default();
    let mut last: Vec<Option<Instant>> = vec![None; logins.len()];
    let mut received_owed = vec![0u32; logins.len()];
    let mut owed_to = vec![0u32; logins.len()];
    for log in officers {
        let mut seen = vec![false; logins.len()];
        let local = |i: usize| i % nodes == log.node;
        for (i, login) in logins.iter().enumerate() {
            if let Some((start, end)) = login {
                owed_to[i] += u32::from(local(i) && owed(&log.sessions, *start, *end));
            }
        }
        for &(customer, since_epoch) in &log.receipts {
            let i = customer as usize;
            let Some(Some((start, end))) = logins.get(i) else {
                continue;
            };
            if std::mem::replace(&mut seen[i], true) {
                fanout.duplicates += 1;
                continue;
            }
            let at = epoch + since_epoch;
            fanout.each.record(at.saturating_duration_since(*start));
            last[i] = last[i].max(Some(at));
            fanout.remote += u64::from(!local(i));
            received_owed[i] += u32::from(local(i) && owed(&log.sessions, *start, *end));
        }
    }
    for (i, login) in logins.iter().enumerate() {
        let Some((start, _)) = login else { continue };
        fanout.owed += u64::from(owed_to[i]);
        fanout.missing += u64::from(owed_to[i] - received_owed[i]);
        if received_owed[i] == owed_to[i] {
            if let Some(last) = last[i] {
                fanout.complete += 1;
                fanout.last.record(last.saturating_duration_since(*start));
            }
        }
    }
    fanout
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn only_live_deliveries_are_timed() {
        let t0 = Instant::now();
        let mut chat = ChatRecord::default();
        // The customer's first message goes out before the officer is in the room.
        chat.sending(Side::Customer, "c1", t0);
        chat.acknowledged(Side::Customer, "c1", 1);
        chat.joined[Side::Officer.index()] = Some(t0 + ms(5));
        assert_eq!(chat.received(Side::Officer, "c1", 1, t0 + ms(6)), None);
        // The officer's answer goes out while the customer is in the room.
        chat.joined[Side::Customer.index()] = Some(t0);
        chat.sending(Side::Officer, "o1", t0 + ms(10));
        assert_eq!(
            chat.received(Side::Customer, "o1", 2, t0 + ms(13)),
            Some(ms(3))
        );
        chat.acknowledged(Side::Officer, "o1", 2);
        let v = chat.verdict(&[]);
        assert_eq!((v.acknowledged, v.lost), (2, 0));
    }

    #[test]
    fn an_acknowledged_message_not_received_is_lost() {
        let t0 = Instant::now();
        let mut chat = ChatRecord::default();
        chat.sending(Side::Customer, "c1", t0);
        chat.acknowledged(Side::Customer, "c1", 1);
        chat.sending(Side::Officer, "o1", t0);
        chat.acknowledged(Side::Officer, "o1", 2);
        chat.received(Side::Officer, "c1", 1, t0);
        // A message the customer received is not the officer's receipt of it.
        chat.received(Side::Customer, "c1", 1, t0);
        let v = chat.verdict(&[]);
        assert_eq!((v.acknowledged, v.lost), (2, 1));
        // A send never acknowledged is not counted as lost.
        chat.sending(Side::Customer, "c2", t0);
        assert_eq!(chat.verdict(&[]).lost, 1);
    }

    #[test]
    fn one_owner_needs_one_entry_and_one_taker_naming_the_same_officer() {
        let officers = ["o0".to_string(), "o1".to_string()];
        let mut chat = ChatRecord {
            resolved_seen: true,
            ..ChatRecord::default()
        };
        chat.assignment_entries.push("o1".into());
        chat.takers.push(1);
        let v = chat.verdict(&officers);
        assert!(v.one_owner && v.served, "{v:?}");
        chat.takers.push(0);
        assert!(!chat.verdict(&officers).one_owner);
        chat.takers.pop();
        chat.assignment_entries[0] = "o0".into();
        assert!(!chat.verdict(&officers).one_owner);
        chat.fail("closed by the server");
        assert!(!chat.verdict(&officers).served);
    }

    #[test]
    fn capacity_is_violated_only_past_it() {
        let mut t = CapacityTracker::default();
        t.observe("a", 4, Some(5), "event");
        t.observe("a", 5, Some(5), "event");
        t.observe("b", 50, None, "list");
        assert_eq!((t.violations, t.at_capacity, t.peak_open), (0, 1, 50));
        t.observe("a", 6, Some(5), "list");
        assert_eq!(t.violations, 1);
        assert_eq!(t.examples, ["a: 6 open chats, capacity 5 (list)"]);
        let mut all = CapacityTracker::default();
        all.merge(&t);
        all.merge(&t);
        assert_eq!(
            (all.observations, all.violations, all.examples.len()),
            (8, 2, 2)
        );
    }

    #[test]
    fn queue_events_are_owed_to_officers_in_the_room_throughout_a_login() {
        let t0 = Instant::now();
        let login = (t0 + ms(100), t0 + ms(110));
        assert!(owed(&[(t0, None)], login.0, login.1));
        // Joined after the login started: not owed (the room gives no replay).
        assert!(!owed(&[(t0 + ms(105), None)], login.0, login.1));
        // Left right after: not owed; left long after: owed.
        assert!(!owed(&[(t0, Some(t0 + ms(200)))], login.0, login.1));
        assert!(owed(&[(t0, Some(t0 + ms(5000)))], login.0, login.1));
        // Another session that covers it is enough.
        assert!(owed(
            &[(t0, Some(t0 + ms(50))), (t0 + ms(60), None)],
            login.0,
            login.1
        ));
    }

    #[test]
    fn queue_fanout_times_each_receipt_and_the_last_and_counts_the_missing() {
        let epoch = Instant::now();
        let logins = [
            Some((epoch + ms(100), epoch + ms(102))),
            Some((epoch + ms(200), epoch + ms(202))),
            None,
        ];
        let present = vec![(epoch, None)];
        let officers = [
            QueueLog {
                node: 0,
                sessions: present.clone(),
                receipts: vec![(0, ms(101)), (1, ms(201)), (1, ms(201))],
            },
            QueueLog {
                node: 0,
                sessions: present,
                // Missed chat 1.
                receipts: vec![(0, ms(104))],
            },
            QueueLog {
                node: 0,
                // Joined after both logins: owed nothing, and heard nothing.
                sessions: vec![(epoch + ms(300), None)],
                receipts: vec![],
            },
        ];
        let f = queue_fanout(epoch, &logins, 1, &officers);
        assert_eq!((f.owed, f.missing, f.duplicates, f.complete), (4, 1, 1, 1));
        assert_eq!((f.each.summary().count, f.remote), (3, 0));
        let last = f.last.summary();
        assert_eq!(last.count, 1);
        assert!((last.max_ms - 4.0).abs() < 0.01, "{last:?}");
    }

    #[test]
    fn queue_events_are_owed_only_on_the_node_of_the_login() {
        let epoch = Instant::now();
        // Customer 0 logs in on node 0, customer 1 on node 1.
        let logins = [
            Some((epoch + ms(100), epoch + ms(102))),
            Some((epoch + ms(200), epoch + ms(202))),
        ];
        let present = vec![(epoch, None)];
        let officers = [
            QueueLog {
                node: 0,
                sessions: present.clone(),
                // Heard its own node's chat and, across nodes, the other one.
                receipts: vec![(0, ms(101)), (1, ms(205))],
            },
            QueueLog {
                node: 1,
                sessions: present,
                // Heard only its own node's chat: node 0's was taken before it arrived.
                receipts: vec![(1, ms(201))],
            },
        ];
        let f = queue_fanout(epoch, &logins, 2, &officers);
        assert_eq!((f.owed, f.missing, f.complete, f.remote), (2, 0, 2, 1));
        assert_eq!(f.each.summary().count, 3);
    }
}
