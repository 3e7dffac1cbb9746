//! The scenarios, one file each. Each takes the target and its arguments and returns a
//! [`Scenario`] report holding its figures and the correctness checks it made; none of
//! them fails the run on a slow number.

mod attachments;
mod attack;
mod claims;
mod desk;
mod fanout;
mod idle;
mod read;
mod sends;
mod webhooks;

use std::time::Duration;

use chat_client::Socket;
use futures_util::{StreamExt, stream};

use crate::cli::{
    AllArgs, AssignmentMode, ClaimsArgs, Command, CountRange, DeskArgs, DurationRange, FanoutArgs,
    IdleArgs, ReadArgs, SendsArgs,
};
use crate::report::Scenario;
use crate::target::Target;

/// Closes sockets politely, many at once, giving each at most 2 s.
async fn close_sockets(sockets: Vec<Socket>) {
    stream::iter(sockets)
        .for_each_concurrent(64, |socket| async move {
            let _ = tokio::time::timeout(Duration::from_secs(2), socket.close()).await;
        })
        .await;
}

/// Runs the scenario(s) of a command (not `gen-db`, which needs no server).
pub(crate) async fn run(target: &Target, command: &Command) -> Vec<Scenario> {
    match command {
        Command::Sends(args) => vec![sends::run(target, args).await],
        Command::Fanout(args) => vec![fanout::run(target, args).await],
        Command::Idle(args) => vec![idle::run(target, args).await],
        Command::Read(args) => vec![read::run(target, args).await],
        Command::Claims(args) => vec![claims::run(target, args).await],
        Command::Attachments(args) => vec![attachments::run(target, args).await],
        Command::Desk(args) => vec![desk::run(target, args).await],
        Command::Attack(args) => vec![attack::run(target, &args.attack).await],
        Command::Webhooks(args) => vec![webhooks::run(target, args).await],
        Command::All(args) => all(target, args).await,
        Command::GenDb(_) | Command::ReportScale(_) => Vec::new(),
    }
}

/// Every scenario, short (or tiny with `--smoke`).
async fn all(target: &Target, args: &AllArgs) -> Vec<Scenario> {
    let smoke = args.smoke;
    let pick = |full: usize, tiny: usize| if smoke { tiny } else { full };
    let mut scenarios = Vec::new();
    let sends = SendsArgs {
        connections: if smoke { vec![2] } else { vec![16, 64] },
        duration: if smoke {
            Duration::from_millis(500)
        } else {
            args.sends_duration
        },
        warmup: Duration::from_millis(pick(500, 100) as u64),
        content_chars: 100,
        rate: None,
        followers: false,
    };
    scenarios.push(sends::run(target, &sends).await);
    let fanout = FanoutArgs {
        receivers: if smoke { vec![5] } else { vec![10, 100, 1000] },
        messages: pick(50, 10),
        interval: Duration::from_millis(pick(20, 5) as u64),
        timeout: Duration::from_secs(10),
        typing: false,
    };
    scenarios.push(fanout::run(target, &fanout).await);
    if target.pid.is_some() {
        let sockets = pick(args.idle_sockets, 50);
        let idle = IdleArgs {
            sockets,
            warmup_sockets: (sockets / 10).max(1),
            per_chat: 1,
            settle: Duration::from_millis(pick(1000, 100) as u64),
            no_join: false,
            message_chars: 100,
        };
        scenarios.push(idle::run(target, &idle).await);
    } else {
        scenarios.push(Scenario::skipped(
            "idle",
            "idle WebSockets",
            "needs the server's process id (--server-pid or --spawn)",
        ));
    }
    let read = ReadArgs {
        requests: pick(300, 20),
        history: pick(500, 100),
        page_size: pick(100, 20),
        officer_chats: pick(20, 3),
        dataset: None,
        dataset_password: String::new(),
    };
    scenarios.push(read::run(target, &read).await);
    let claims = ClaimsArgs {
        officers: pick(50, 3),
        chats: pick(1000, 10),
    };
    scenarios.push(claims::run(target, &claims).await);
    let ms = Duration::from_millis;
    let desk = DeskArgs {
        officers: pick(20, 3),
        customers: pick(300, 12),
        duration: ms(pick(10_000, 1_000) as u64),
        messages: CountRange {
            min: 1,
            max: pick(3, 2) as u32,
        },
        think: DurationRange {
            min: ms(pick(200, 10) as u64),
            max: ms(pick(1000, 50) as u64),
        },
        assignment: AssignmentMode::Detect,
        reaction: DurationRange {
            min: ms(pick(50, 5) as u64),
            max: ms(pick(500, 50) as u64),
        },
        churn: if smoke { 0.0 } else { 0.1 },
        churn_every: ms(3_000),
        away_for: DurationRange {
            min: ms(500),
            max: ms(2_000),
        },
        patience: Duration::from_secs(60),
        content_chars: 80,
        poll: ms(pick(1000, 200) as u64),
    };
    scenarios.push(desk::run(target, &desk).await);
    scenarios
}
