//! The model's bounds and switches: how many officers, customers, chats and nodes, how
//! many operations the environment starts, and the variants of the protocol the checker
//! can be pointed at (the weakened step that must fail, the flaw found in the code).

/// A deliberately changed step, for showing that the checker catches what it must.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Weakening {
    /// The protocol as the code has it.
    #[default]
    None,
    /// The capacity check taken out of the transaction: a change reads the new owner's
    /// open chats when it decides (one step) and writes without counting again (the
    /// next step). The checker must find an officer over capacity.
    CapacityOutsideTransaction,
}

/// Bounds and switches of one model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ModelConfig {
    /// Each officer's capacity (`o0`, `o1`, ...): how many officers there are.
    pub capacities: Vec<u8>,
    /// How many customers.
    pub customers: u8,
    /// Most chats created in all (a login past it is not taken).
    pub max_chats: u8,
    /// How many nodes (`ChatService`s over the one store). Officer `o` is connected
    /// through node `o % nodes`, customer `c` logs in through node `c % nodes`.
    pub nodes: u8,
    /// How many operations the environment starts (logins, sends, claims, ...).
    pub budget: u8,
    /// Of those, how many may be an officer going away, coming back, disconnecting or
    /// connecting (each always possible, they would otherwise fill the budget's
    /// combinations with little new).
    pub presence_changes: u8,
    /// Most operations in flight at once (besides the nodes' rounds): a race needs two,
    /// and each more multiplies the interleavings.
    pub max_in_flight: u8,
    /// Automatic assignment (`--assignment auto`) on every node.
    pub auto: bool,
    /// The desk's sweep (a round every 2 s on every node), modelled as a round each
    /// node may begin whenever a chat waits while an officer is eligible. Without it,
    /// only the rounds asked for run (`want_assignment`): the liveness check then says
    /// whether a chat is given "at once", without waiting for the sweep.
    pub sweep: bool,
    /// A round makes another pass when a chat it read was taken meanwhile by another
    /// attempt, as `assign_waiting` does since issue 22; `false` is the code before,
    /// which ended the round and left the chats after it to the sweep
    /// (docs/PROTOCOL.md, "Findings").
    pub pass_after_lost: bool,
    /// An automatic assignment's write checks that its officer is still eligible
    /// (available and connected), as `Transition::only_to_eligible` makes the stores do
    /// since finding 3; `false` is the code before, which gave the chat to the officer
    /// the round read even if they had gone away or disconnected since.
    pub eligible_at_write: bool,
    /// Officers start connected (as if each had connected before the run), so that the
    /// budget goes to the queue's operations; they may still disconnect and connect.
    pub start_connected: bool,
    /// Each customer starts with an ended chat, with officer `c % officers` (so that
    /// reopening and the previous officer's preference are there from the start, and
    /// the budget reaches `max_chats`).
    pub history: bool,
    /// Customer logins may name an officer (a host application's `officerId`): the chat
    /// is created assigned to them when they have room, else in the queue, decided in
    /// `Store::get_or_create_chat`'s transaction (docs/PROTOCOL.md, "Findings", 2).
    pub login_names_officer: bool,
    /// A weakened step, or none.
    pub weakening: Weakening,
}

impl ModelConfig {
    /// The bounds CI checks exhaustively: 3 officers (capacities 1, 1, 2), 2 customers,
    /// 4 chats, 2 nodes, automatic assignment with the sweep, and `budget` operations.
    pub fn small(budget: u8) -> Self {
        Self {
            capacities: vec![1, 1, 2],
            customers: 2,
            max_chats: 4,
            nodes: 2,
            budget,
            presence_changes: 2,
            max_in_flight: 2,
            auto: true,
            sweep: true,
            pass_after_lost: true,
            eligible_at_write: true,
            start_connected: true,
            history: false,
            login_names_officer: false,
            weakening: Weakening::None,
        }
    }

    /// One node, for driving one real `ChatService` step by step.
    pub fn single_node(budget: u8) -> Self {
        Self {
            nodes: 1,
            ..Self::small(budget)
        }
    }

    /// How many officers.
    pub fn officers(&self) -> u8 {
        self.capacities.len() as u8
    }

    /// The node an officer's connection and requests go through.
    pub fn officer_node(&self, officer: u8) -> u8 {
        officer % self.nodes
    }

    /// The node a customer's requests go through.
    pub fn customer_node(&self, customer: u8) -> u8 {
        customer % self.nodes
    }
}
