//! The model's state: the store (the one shared state, as the `Store` trait keeps it),
//! each actor's operation in flight (what a request handler holds between two store
//! calls), and each node's round of automatic assignment. Plain data; the steps that
//! change it are in `steps.rs`.

/// An officer: an index into [`Store::officers`] (`o0`, `o1`, ... in the real tests).
pub type Officer = u8;
/// A customer: `c0`, `c1`, ...
pub type Customer = u8;
/// A chat: its index in creation order.
pub type ChatIx = u8;
/// A node: a `ChatService` of its own over the shared store.
pub type Node = u8;

/// A chat's status (`chatcore::ChatStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// In the queue.
    Pending,
    /// An officer's.
    Assigned,
    /// Ended.
    Resolved,
}

impl Status {
    /// Pending or assigned: the customer's open chat.
    pub fn is_open(self) -> bool {
        self != Status::Resolved
    }
}

/// The change a system entry records (`chatcore::ChatChange`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Change {
    /// An officer took a pending chat.
    Claimed,
    /// Automatic assignment gave a pending chat.
    Assigned,
    /// Back to the queue.
    Released,
    /// Handed to another officer.
    Transferred,
    /// Ended.
    Resolved,
    /// Opened again, assigned.
    Reopened,
}

/// One entry of a chat's timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Entry {
    /// A customer's message: the customer and the number of their send.
    Message {
        /// Who sent it.
        customer: Customer,
        /// Their send's number (unique per customer).
        n: u16,
    },
    /// A lifecycle change's system entry, with the officer it names (the new owner; for
    /// a release or resolution, the officer it was with).
    System {
        /// What changed.
        change: Change,
        /// The officer it names.
        officer: Option<Officer>,
    },
}

/// A stored entry with the seq the store gave it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Logged {
    /// 1, 2, 3, ...
    pub seq: u16,
    /// What it is.
    pub entry: Entry,
}

/// A chat as stored.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChatRec {
    /// Whose it is.
    pub customer: Customer,
    /// Its status.
    pub status: Status,
    /// Its officer (a resolved chat keeps its last one; a pending chat has none).
    pub owner: Option<Officer>,
    /// Its newest entry's seq (`chats.last_seq`), kept apart from the log as the stores
    /// keep it apart from the messages' rows.
    pub last_seq: u16,
    /// The officer it was created with (a login that names one), else `None`.
    pub created_owner: Option<Officer>,
    /// Its timeline.
    pub log: Vec<Logged>,
}

/// An officer as stored.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OfficerRec {
    /// `availability = available`.
    pub available: bool,
    /// Connected: present on their node (the store's presence rows).
    pub connected: bool,
}

/// The store: everything every node shares.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Store {
    /// Chats in creation order (the queue's order among pending ones).
    pub chats: Vec<ChatRec>,
    /// Officers by index.
    pub officers: Vec<OfficerRec>,
    /// Officers in the order of their last assignment, longest ago first (never
    /// assigned: absent, and first in the store's order of eligible officers).
    pub assigned_order: Vec<Officer>,
}

impl Store {
    /// An officer's open chats (assigned to them).
    pub fn open_chats(&self, officer: Officer) -> u8 {
        self.chats
            .iter()
            .filter(|c| c.status == Status::Assigned && c.owner == Some(officer))
            .count() as u8
    }

    /// The customer's open chat, if any.
    pub fn open_chat_of(&self, customer: Customer) -> Option<ChatIx> {
        self.chats
            .iter()
            .position(|c| c.customer == customer && c.status.is_open())
            .map(|i| i as ChatIx)
    }

    /// Pending chats, oldest first (`Store::pending_chats`).
    pub fn pending(&self) -> Vec<ChatIx> {
        (0..self.chats.len() as ChatIx)
            .filter(|&c| self.chats[c as usize].status == Status::Pending)
            .collect()
    }

    /// The officer of the customer's latest other chat, looked at among their two
    /// newest chats as `ChatService::previous_officer` does.
    pub fn previous_officer(&self, chat: ChatIx) -> Option<Officer> {
        let customer = self.chats[chat as usize].customer;
        (0..self.chats.len() as ChatIx)
            .rev()
            .filter(|&c| self.chats[c as usize].customer == customer)
            .take(2)
            .find(|&c| c != chat)
            .and_then(|c| self.chats[c as usize].owner)
    }

    /// The chat's system entry and new state, appended with the next seq.
    pub(crate) fn append(&mut self, chat: ChatIx, entry: Entry) {
        let rec = &mut self.chats[chat as usize];
        let seq = rec.last_seq + 1;
        rec.log.push(Logged { seq, entry });
        rec.last_seq = seq;
    }

    /// Records `officer`'s last assignment as now.
    pub(crate) fn assigned_now(&mut self, officer: Officer) {
        self.assigned_order.retain(|&o| o != officer);
        self.assigned_order.push(officer);
    }
}

/// Who acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Who {
    /// A customer, on their chat.
    Customer(Customer),
    /// An officer.
    Officer(Officer),
}

/// A lifecycle change asked for (`ChatService::change`'s callers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum What {
    /// `claim`.
    Claim,
    /// `release`.
    Release,
    /// `transfer` to this officer.
    Transfer(Officer),
    /// `resolve`.
    Resolve,
    /// `reopen` (an officer, for themselves).
    Reopen,
}

/// A change asked of a chat by someone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Intent {
    /// Who asks.
    pub who: Who,
    /// What.
    pub what: What,
    /// Which chat.
    pub chat: ChatIx,
}

/// What `policy` decided a change makes of a chat: the `Transition` to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Plan {
    /// The status and owner it was decided on (`expected_status`, `expected_owner`).
    pub expected: (Status, Option<Officer>),
    /// The new status.
    pub status: Status,
    /// The new owner.
    pub owner: Option<Officer>,
    /// The system entry's change and officer.
    pub entry: Entry,
}

impl Plan {
    /// The officer the change gives the chat to when they do not hold it already
    /// (`Transition::new_owner`): whose capacity it must respect.
    pub fn new_owner(&self) -> Option<Officer> {
        let keeps = self.expected.0 == Status::Assigned && self.expected.1 == self.owner;
        match (self.owner, self.status) {
            (Some(o), Status::Assigned) if !keeps => Some(o),
            _ => None,
        }
    }
}

/// An officer of one pass of a round, with the room they have left (`Candidates`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Candidate {
    /// Who.
    pub officer: Officer,
    /// Open chats when read, plus those given in this pass.
    pub open: u8,
    /// Room left.
    pub room: u8,
    /// Their turn: the store's order, then after everyone for each chat taken.
    pub turn: u8,
}

/// What an actor is in the middle of: the local state of a request between two store
/// calls.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum InFlight {
    /// Nothing.
    Idle,
    /// Lost a race: reads the chat again and decides again (`change`'s loop).
    Decide(Intent),
    /// Decided: writes `Store::transition` next.
    Write(Intent, Plan),
    /// A send allowed on the chat's (status, owner): writes `Store::append_message`
    /// with that condition next.
    Append {
        /// The chat.
        chat: ChatIx,
        /// What the write was allowed on.
        decided_on: (Status, Option<Officer>),
        /// The send's number.
        n: u16,
    },
    /// A login's new pending chat: its own attempt reads the queue and the officers
    /// next (`assign_if_room`).
    Route(ChatIx),
    /// The login's attempt gives the chat to `officer` next; `candidates` are the rest
    /// of its reading.
    Give {
        /// The chat.
        chat: ChatIx,
        /// To whom.
        officer: Officer,
        /// The customer's previous officer.
        preferred: Option<Officer>,
        /// The officers read, with room.
        candidates: Vec<Candidate>,
    },
}

/// A node's round of automatic assignment (`assign_waiting`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Round {
    /// No round running.
    Idle,
    /// A round's next pass reads the queue and the officers next.
    Pass,
    /// A pass gives `waiting`'s first chat next.
    Giving {
        /// Waiting chats still to place in this pass, oldest first, each with its
        /// customer's previous officer.
        waiting: Vec<(ChatIx, Option<Officer>)>,
        /// The officers of this pass with room.
        candidates: Vec<Candidate>,
        /// The next turn to hand out.
        next_turn: u8,
        /// Whether this pass placed a chat (then another pass follows).
        placed: bool,
        /// Whether a chat it read was taken meanwhile by another attempt (then
        /// another pass follows too, [`crate::ModelConfig::pass_after_lost`]).
        lost: bool,
    },
}

/// A node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeState {
    /// A round is due: asked for (`want_assignment`), or, with the sweep modelled, the
    /// store changed since this node's last round began.
    pub due: bool,
    /// The round it runs.
    pub round: Round,
}

/// A customer's own state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CustomerState {
    /// The chat their last login answered with (what their token writes to).
    pub chat: Option<ChatIx>,
    /// Sends made so far (numbers the next).
    pub sent: u16,
    /// Messages whose send was acknowledged: (chat, number).
    pub acked: Vec<(ChatIx, u16)>,
}

/// The whole state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    /// The shared store.
    pub store: Store,
    /// Customers' own state.
    pub customers: Vec<CustomerState>,
    /// Each actor's operation in flight: customers first, then officers.
    pub in_flight: Vec<InFlight>,
    /// The nodes.
    pub nodes: Vec<NodeState>,
    /// Operations the environment may still start.
    pub budget: u8,
    /// Of those, changes of availability or connection.
    pub presence_changes: u8,
}

impl State {
    /// The slot of `who` in [`State::in_flight`].
    pub fn slot(&self, who: Who) -> usize {
        match who {
            Who::Customer(c) => c as usize,
            Who::Officer(o) => self.customers.len() + o as usize,
        }
    }

    /// Who holds slot `i`.
    pub fn who(&self, i: usize) -> Who {
        if i < self.customers.len() {
            Who::Customer(i as Customer)
        } else {
            Who::Officer((i - self.customers.len()) as Officer)
        }
    }

    /// Nothing in flight, no round running or due.
    pub fn quiet(&self) -> bool {
        self.in_flight.iter().all(|f| *f == InFlight::Idle)
            && self.nodes.iter().all(|n| !n.due && n.round == Round::Idle)
    }
}
