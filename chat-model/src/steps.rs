//! The protocol's steps. Each step is one atomic store call of the code (a read, or one
//! transaction), or the start of an operation (its first read, with the decision
//! `policy` makes on it). Between two steps of one operation anything else may run:
//! the checker tries every order.
//!
//! | code | steps here |
//! |---|---|
//! | `ChatService::change` (claim, release, transfer, resolve, reopen) | read the chat and decide; `Store::transition` (stale: read and decide again) |
//! | `customer_login` | `Store::get_or_create_chat`; in auto mode its own attempt: read the queue and the officers; `Store::transition` to the officer picked (full: pick again) |
//! | `send_message` | read the chat and decide; `Store::append_message` on that (status, owner) (stale: decide again on the chat it answered) |
//! | `set_availability`, presence written by the desk | `Store::update_officer`, `Store::set_presence` |
//! | a node's round (`assign_waiting`) | read the queue and the officers; `Store::transition` per chat; another pass while one placed a chat |

use crate::config::{ModelConfig, Weakening};
use crate::policy::{self, Decision};
use crate::state::{
    Candidate, Change, ChatIx, ChatRec, Customer, CustomerState, Entry, InFlight, Intent, Node,
    NodeState, Officer, OfficerRec, Plan, Round, State, Status, Store, Who,
};

/// An operation the environment starts (what a person, a browser or a host application
/// does). Its first step runs at once; the rest follow as [`Action::Step`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// A customer logs in: their open chat, or a new one in the queue.
    Login(Customer),
    /// A customer logs in through a host application that names an officer
    /// ([`ModelConfig::login_names_officer`]).
    LoginWith(Customer, Officer),
    /// A customer sends a message to their chat.
    Send(Customer),
    /// A lifecycle change (a customer's resolve, an officer's claim, release, transfer,
    /// resolve, reopen).
    Change(Intent),
    /// An officer sets themselves away.
    Away(Officer),
    /// An officer sets themselves available.
    Available(Officer),
    /// An officer's first connection opens (presence written by their node).
    Connect(Officer),
    /// An officer's last connection closes.
    Disconnect(Officer),
}

/// A step the checker may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// The environment starts an operation.
    Start(Op),
    /// An actor's operation in flight takes its next step.
    Step(Who),
    /// A node's round of automatic assignment takes its next step.
    Round(Node),
}

/// The protocol under a configuration: a `stateright::Model`.
#[derive(Clone, Debug)]
pub struct Protocol {
    /// Bounds and switches.
    pub cfg: ModelConfig,
}

/// What one attempt to give a pending chat came to (`assign.rs`'s `Attempt`).
enum Attempt {
    Given,
    Full,
    Gone,
}

impl Protocol {
    /// The model of `cfg`.
    pub fn new(cfg: ModelConfig) -> Self {
        Self { cfg }
    }

    /// The state everything starts from: officers available (as a new officer starts),
    /// connected if [`ModelConfig::start_connected`], no chat.
    pub fn initial(&self) -> State {
        let cfg = &self.cfg;
        let empty = State {
            store: Store {
                chats: Vec::new(),
                officers: vec![
                    OfficerRec {
                        available: true,
                        connected: cfg.start_connected,
                    };
                    cfg.officers() as usize
                ],
                assigned_order: Vec::new(),
            },
            customers: vec![
                CustomerState {
                    chat: None,
                    sent: 0,
                    acked: Vec::new(),
                };
                cfg.customers as usize
            ],
            in_flight: vec![InFlight::Idle; (cfg.customers + cfg.officers()) as usize],
            nodes: vec![
                NodeState {
                    due: false,
                    round: Round::Idle,
                };
                cfg.nodes as usize
            ],
            budget: cfg.budget,
            presence_changes: cfg.presence_changes,
        };
        if cfg.history {
            self.with_history(empty)
        } else {
            empty
        }
    }

    /// The initial state with each customer's ended chat ([`ModelConfig::history`]),
    /// each resolved by its officer after a claim.
    fn with_history(&self, mut s: State) -> State {
        for c in 0..self.cfg.customers {
            let officer = c % self.cfg.officers();
            let mut chat = ChatRec {
                customer: c,
                status: Status::Resolved,
                owner: Some(officer),
                last_seq: 0,
                created_owner: None,
                log: Vec::new(),
            };
            for change in [Change::Claimed, Change::Resolved] {
                chat.last_seq += 1;
                chat.log.push(crate::state::Logged {
                    seq: chat.last_seq,
                    entry: Entry::System {
                        change,
                        officer: Some(officer),
                    },
                });
            }
            s.store.chats.push(chat);
            s.store.assigned_now(officer);
            s.customers[c as usize].chat = Some(c);
        }
        s
    }

    fn capacity(&self, officer: Officer) -> u8 {
        self.cfg.capacities[officer as usize]
    }

    fn weak_capacity(&self) -> bool {
        self.cfg.weakening == Weakening::CapacityOutsideTransaction
    }

    /// The node `who`'s requests go through.
    fn node_of(&self, who: Who) -> Node {
        match who {
            Who::Customer(c) => self.cfg.customer_node(c),
            Who::Officer(o) => self.cfg.officer_node(o),
        }
    }

    /// Every operation the environment could start now, ignoring the budget and
    /// whether the actor is busy: only those whose first step does something.
    pub fn startable(&self, s: &State, ops: &mut Vec<Op>) {
        let cfg = &self.cfg;
        for c in 0..cfg.customers {
            let open = s.store.open_chat_of(c);
            let new_chat = open.is_none() && s.store.chats.len() < cfg.max_chats as usize;
            if new_chat || (open.is_some() && open != s.customers[c as usize].chat) {
                ops.push(Op::Login(c));
            }
            if new_chat && cfg.login_names_officer {
                ops.extend((0..cfg.officers()).map(|o| Op::LoginWith(c, o)));
            }
            if let Some(chat) = s.customers[c as usize].chat {
                let rec = &s.store.chats[chat as usize];
                if policy::customer_may_write(rec).is_some() {
                    ops.push(Op::Send(c));
                }
                let resolve = Intent {
                    who: Who::Customer(c),
                    what: crate::state::What::Resolve,
                    chat,
                };
                if self.decide(s, &resolve).is_some() {
                    ops.push(Op::Change(resolve));
                }
            }
        }
        for o in 0..cfg.officers() {
            let me = Who::Officer(o);
            for chat in 0..s.store.chats.len() as ChatIx {
                use crate::state::What::*;
                let mut whats = vec![Claim, Release, Resolve, Reopen];
                whats.extend((0..cfg.officers()).filter(|&t| t != o).map(Transfer));
                for what in whats {
                    let intent = Intent {
                        who: me,
                        what,
                        chat,
                    };
                    if self.decide(s, &intent).is_some() {
                        ops.push(Op::Change(intent));
                    }
                }
            }
            if s.presence_changes == 0 {
                continue;
            }
            let rec = &s.store.officers[o as usize];
            ops.push(if rec.available {
                Op::Away(o)
            } else {
                Op::Available(o)
            });
            ops.push(if rec.connected {
                Op::Disconnect(o)
            } else {
                Op::Connect(o)
            });
        }
    }

    /// The actor who starts `op`.
    pub fn actor(op: &Op) -> Who {
        match *op {
            Op::Login(c) | Op::LoginWith(c, _) | Op::Send(c) => Who::Customer(c),
            Op::Change(intent) => intent.who,
            Op::Away(o) | Op::Available(o) | Op::Connect(o) | Op::Disconnect(o) => Who::Officer(o),
        }
    }

    /// Reads the chat and decides (`policy`): the plan to write, or `None` (refused,
    /// or nothing to do). With the capacity check weakened, the new owner's room is
    /// read here instead of in the write.
    fn decide(&self, s: &State, intent: &Intent) -> Option<Plan> {
        let chat = &s.store.chats[intent.chat as usize];
        match policy::decide(intent, chat) {
            Decision::Change(plan) => {
                if self.weak_capacity() {
                    if let Some(o) = plan.new_owner() {
                        if s.store.open_chats(o) >= self.capacity(o) {
                            return None;
                        }
                    }
                }
                Some(plan)
            }
            Decision::Unchanged | Decision::Refused => None,
        }
    }

    /// Every step possible in `s`.
    pub fn all_actions(&self, s: &State, actions: &mut Vec<Action>) {
        let busy = s.in_flight.iter().filter(|f| **f != InFlight::Idle).count();
        if s.budget > 0 && busy < usize::from(self.cfg.max_in_flight) {
            let mut ops = Vec::new();
            self.startable(s, &mut ops);
            actions.extend(
                ops.into_iter()
                    .filter(|op| s.in_flight[s.slot(Self::actor(op))] == InFlight::Idle)
                    .map(Action::Start),
            );
        }
        for (i, f) in s.in_flight.iter().enumerate() {
            if *f != InFlight::Idle {
                actions.push(Action::Step(s.who(i)));
            }
        }
        // The desk's sweep, a round on every node every 2 s, is a step each node may
        // take whenever a chat waits while an officer is eligible: at any other time
        // its round reads nothing to do and ends, which changes nothing.
        let sweep = self.cfg.sweep && crate::props::starving(self, s);
        for (n, node) in s.nodes.iter().enumerate() {
            if node.round != Round::Idle || (self.cfg.auto && (node.due || sweep)) {
                actions.push(Action::Round(n as Node));
            }
        }
    }

    /// The state after `action`, or `None` if it cannot be taken.
    pub fn step(&self, s: &State, action: Action) -> Option<State> {
        let mut s = s.clone();
        match action {
            Action::Start(op) => {
                if s.budget == 0 {
                    return None;
                }
                s.budget -= 1;
                if matches!(
                    op,
                    Op::Away(_) | Op::Available(_) | Op::Connect(_) | Op::Disconnect(_)
                ) {
                    s.presence_changes = s.presence_changes.checked_sub(1)?;
                }
                self.start(&mut s, op);
            }
            Action::Step(who) => self.continue_op(&mut s, who),
            Action::Round(node) => self.round(&mut s, node),
        }
        Some(s)
    }

    /// `want_assignment` on `node` (in auto mode).
    fn want(&self, s: &mut State, node: Node) {
        if self.cfg.auto {
            s.nodes[node as usize].due = true;
        }
    }

    fn start(&self, s: &mut State, op: Op) {
        let who = Self::actor(&op);
        let slot = s.slot(who);
        match op {
            Op::Login(c) | Op::LoginWith(c, _) => {
                // `Store::get_or_create_chat`: one transaction.
                if let Some(open) = s.store.open_chat_of(c) {
                    s.customers[c as usize].chat = Some(open);
                    return;
                }
                // The officer named gets the chat if they have room, counted in the same
                // transaction; else it waits in the queue.
                let owner = match op {
                    Op::LoginWith(_, o) if s.store.open_chats(o) < self.capacity(o) => Some(o),
                    _ => None,
                };
                s.store.chats.push(ChatRec {
                    customer: c,
                    status: if owner.is_some() {
                        Status::Assigned
                    } else {
                        Status::Pending
                    },
                    owner,
                    last_seq: 0,
                    created_owner: owner,
                    log: Vec::new(),
                });
                let chat = (s.store.chats.len() - 1) as ChatIx;
                s.customers[c as usize].chat = Some(chat);
                if owner.is_none() && self.cfg.auto {
                    s.in_flight[slot] = InFlight::Route(chat);
                }
            }
            Op::Send(c) => {
                let customer = &mut s.customers[c as usize];
                let Some(chat) = customer.chat else { return };
                customer.sent += 1;
                let n = customer.sent;
                if let Some(decided_on) = policy::customer_may_write(&s.store.chats[chat as usize])
                {
                    s.in_flight[slot] = InFlight::Append {
                        chat,
                        decided_on,
                        n,
                    };
                }
            }
            Op::Change(intent) => {
                if let Some(plan) = self.decide(s, &intent) {
                    s.in_flight[slot] = InFlight::Write(intent, plan);
                }
            }
            Op::Away(o) => {
                s.store.officers[o as usize].available = false;
            }
            Op::Available(o) => {
                s.store.officers[o as usize].available = true;
                self.want(s, self.cfg.officer_node(o));
            }
            Op::Connect(o) => {
                s.store.officers[o as usize].connected = true;
                self.want(s, self.cfg.officer_node(o));
            }
            Op::Disconnect(o) => {
                s.store.officers[o as usize].connected = false;
            }
        }
    }

    fn continue_op(&self, s: &mut State, who: Who) {
        let slot = s.slot(who);
        let node = self.node_of(who);
        let next = match s.in_flight[slot].clone() {
            InFlight::Idle => InFlight::Idle,
            InFlight::Decide(intent) => match self.decide(s, &intent) {
                Some(plan) => InFlight::Write(intent, plan),
                None => InFlight::Idle,
            },
            InFlight::Write(intent, plan) => {
                self.transition(s, intent.chat, &plan, node, Some(intent))
            }
            InFlight::Append {
                chat,
                decided_on,
                n,
            } => {
                let rec = &s.store.chats[chat as usize];
                if (rec.status, rec.owner) == decided_on {
                    let Who::Customer(c) = who else {
                        unreachable!("only customers send in the model")
                    };
                    s.store.append(chat, Entry::Message { customer: c, n });
                    s.customers[c as usize].acked.push((chat, n));
                    InFlight::Idle
                } else {
                    // Stale: may the sender still write to the chat as it now is?
                    match policy::customer_may_write(rec) {
                        Some(decided_on) => InFlight::Append {
                            chat,
                            decided_on,
                            n,
                        },
                        None => InFlight::Idle,
                    }
                }
            }
            InFlight::Route(chat) => self.own_attempt(s, chat, node),
            InFlight::Give {
                chat,
                officer,
                preferred,
                mut candidates,
            } => match self.give(s, chat, officer) {
                Attempt::Given => InFlight::Idle,
                Attempt::Full => {
                    candidates.retain(|c| c.officer != officer);
                    give_next(chat, preferred, candidates)
                }
                Attempt::Gone => {
                    self.want(s, node);
                    InFlight::Idle
                }
            },
        };
        s.in_flight[slot] = next;
    }

    /// `Store::transition` of a decided change, and what its caller does next.
    fn transition(
        &self,
        s: &mut State,
        chat: ChatIx,
        plan: &Plan,
        node: Node,
        intent: Option<Intent>,
    ) -> InFlight {
        let rec = &s.store.chats[chat as usize];
        if (rec.status, rec.owner) != plan.expected {
            // Stale: decide again on the chat as it now is.
            return intent.map_or(InFlight::Idle, InFlight::Decide);
        }
        if let Some(o) = plan.new_owner() {
            if !self.weak_capacity() && s.store.open_chats(o) >= self.capacity(o) {
                return InFlight::Idle;
            }
        }
        let customer = rec.customer;
        if plan.status.is_open()
            && !rec.status.is_open()
            && s.store.open_chat_of(customer).is_some()
        {
            return InFlight::Idle;
        }
        let before = (rec.status, rec.owner);
        let rec = &mut s.store.chats[chat as usize];
        rec.status = plan.status;
        rec.owner = plan.owner;
        s.store.append(chat, plan.entry);
        if let Some(o) = plan.new_owner() {
            s.store.assigned_now(o);
        }
        // `announce_loads`: a round when a slot was freed or the chat entered the queue.
        let owner = |(status, owner): (Status, Option<Officer>)| {
            (status == Status::Assigned).then_some(owner).flatten()
        };
        let (had, has) = (owner(before), owner((plan.status, plan.owner)));
        if had != has && (had.is_some() || plan.status == Status::Pending) {
            self.want(s, node);
        }
        InFlight::Idle
    }

    /// Automatic assignment's `give`: the transition "pending, no officer" to `officer`.
    fn give(&self, s: &mut State, chat: ChatIx, officer: Officer) -> Attempt {
        let rec = &s.store.chats[chat as usize];
        if (rec.status, rec.owner) != (Status::Pending, None) {
            return Attempt::Gone;
        }
        // `Transition::only_to_eligible`: an officer who went away or disconnected since
        // the round read them is passed over, as one who is full.
        let eligible = &s.store.officers[officer as usize];
        if self.cfg.eligible_at_write && !(eligible.available && eligible.connected) {
            return Attempt::Full;
        }
        if !self.weak_capacity() && s.store.open_chats(officer) >= self.capacity(officer) {
            return Attempt::Full;
        }
        let plan = Plan {
            expected: (Status::Pending, None),
            status: Status::Assigned,
            owner: Some(officer),
            entry: Entry::System {
                change: Change::Assigned,
                officer: Some(officer),
            },
        };
        self.transition(s, chat, &plan, 0, None);
        Attempt::Given
    }

    /// The officers a chat may be given to, in the store's order
    /// (`Store::eligible_officers`): available, connected, under capacity; fewest open
    /// chats, then never or longest ago assigned, then id.
    pub fn eligible(&self, store: &Store) -> Vec<Candidate> {
        let mut eligible: Vec<(u8, Option<usize>, Officer)> = (0..self.cfg.officers())
            .filter(|&o| {
                let rec = &store.officers[o as usize];
                rec.available && rec.connected && store.open_chats(o) < self.capacity(o)
            })
            .map(|o| {
                let last = store.assigned_order.iter().position(|&x| x == o);
                (store.open_chats(o), last, o)
            })
            .collect();
        eligible.sort();
        eligible
            .into_iter()
            .enumerate()
            .map(|(turn, (open, _, officer))| Candidate {
                officer,
                open,
                room: self.capacity(officer) - open,
                turn: turn as u8,
            })
            .collect()
    }

    /// A login's own attempt (`assign_if_room`): one read of the queue and the
    /// officers; the chat goes to the officer picked only if the officers have room for
    /// every chat before it too, else a round decides.
    fn own_attempt(&self, s: &mut State, chat: ChatIx, node: Node) -> InFlight {
        let Some(place) = s.store.pending().iter().position(|&c| c == chat) else {
            self.want(s, node);
            return InFlight::Idle;
        };
        let candidates = self.eligible(&s.store);
        if candidates.is_empty() {
            return InFlight::Idle;
        }
        let room: usize = candidates.iter().map(|c| c.room as usize).sum();
        if room <= place {
            self.want(s, node);
            return InFlight::Idle;
        }
        let preferred = s.store.previous_officer(chat);
        give_next(chat, preferred, candidates)
    }

    /// A node's round: its next step.
    fn round(&self, s: &mut State, node: Node) {
        let n = node as usize;
        let next = match s.nodes[n].round.clone() {
            Round::Idle => {
                // The desk's loop takes the request (`assign_wanted.swap(false)`) and
                // begins a round; one asked for meanwhile runs after it.
                s.nodes[n].due = false;
                self.read_pass(&s.store)
            }
            Round::Pass => self.read_pass(&s.store),
            Round::Giving {
                mut waiting,
                mut candidates,
                mut next_turn,
                mut placed,
                mut lost,
            } => {
                let (chat, preferred) = waiting[0];
                let officer =
                    pick(preferred, &candidates).expect("a pass gives only with candidates");
                match self.give(s, chat, officer) {
                    Attempt::Given => {
                        took_one(&mut candidates, officer, &mut next_turn);
                        placed = true;
                        waiting.remove(0);
                    }
                    Attempt::Full => candidates.retain(|c| c.officer != officer),
                    Attempt::Gone => {
                        waiting.remove(0);
                        lost = true;
                    }
                }
                if waiting.is_empty() || candidates.is_empty() {
                    // Another pass when this one placed a chat, or lost one to another
                    // attempt (the chats after the ones it read may still wait).
                    if placed || (lost && self.cfg.pass_after_lost) {
                        Round::Pass
                    } else {
                        Round::Idle
                    }
                } else {
                    Round::Giving {
                        waiting,
                        candidates,
                        next_turn,
                        placed,
                        lost,
                    }
                }
            }
        };
        s.nodes[n].round = next;
    }

    /// A pass's read: the waiting chats (as many as the officers have room for) and the
    /// eligible officers.
    fn read_pass(&self, store: &Store) -> Round {
        let mut waiting: Vec<(ChatIx, Option<Officer>)> = store
            .pending()
            .into_iter()
            .map(|c| (c, store.previous_officer(c)))
            .collect();
        let candidates = self.eligible(store);
        if waiting.is_empty() || candidates.is_empty() {
            return Round::Idle;
        }
        let room: usize = candidates.iter().map(|c| c.room as usize).sum();
        waiting.truncate(room);
        Round::Giving {
            next_turn: candidates.len() as u8,
            waiting,
            candidates,
            placed: false,
            lost: false,
        }
    }
}

/// `Candidates::pick`: the preferred officer if a candidate, else the fewest open
/// chats, then the earliest turn.
pub fn pick(preferred: Option<Officer>, candidates: &[Candidate]) -> Option<Officer> {
    if let Some(p) = preferred {
        if candidates.iter().any(|c| c.officer == p) {
            return Some(p);
        }
    }
    candidates
        .iter()
        .min_by_key(|c| (c.open, c.turn))
        .map(|c| c.officer)
}

/// A login's attempt: give the chat to the officer `pick` finds next, or end when none.
fn give_next(chat: ChatIx, preferred: Option<Officer>, candidates: Vec<Candidate>) -> InFlight {
    match pick(preferred, &candidates) {
        Some(officer) => InFlight::Give {
            chat,
            officer,
            preferred,
            candidates,
        },
        None => InFlight::Idle,
    }
}

/// `Candidates::took_one`.
fn took_one(candidates: &mut Vec<Candidate>, officer: Officer, next_turn: &mut u8) {
    if let Some(c) = candidates.iter_mut().find(|c| c.officer == officer) {
        c.open += 1;
        c.turn = *next_turn;
        c.room -= 1;
    }
    *next_turn += 1;
    candidates.retain(|c| c.room > 0);
}
