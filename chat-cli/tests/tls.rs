//! Remote mode over TLS (`--server https://...`, `--ca`): the built binary against the
//! real server behind a TLS-terminating front whose certificate a test CA signed
//! (chat-client's `tests/support/tls_front.rs`), asserting stdout, stderr and exit code.

mod common;
#[path = "../../chat-http/tests/support/tls.rs"]
mod test_ca;
#[path = "../../chat-client/tests/support/tls_front.rs"]
mod tls_front;

use common::{Cli, secured_server};
use test_ca::TestCa;
use tls_front::TlsFront;

/// A server behind a TLS front for `localhost`, and its CA's certificate saved as
/// `ca.pem` in the CLI's directory.
fn behind_tls() -> (chat_http::testing::TestServer, TlsFront, Cli, String) {
    let server = secured_server();
    let ca = TestCa::new("chat test CA");
    let front = TlsFront::start(ca.acceptor(&["localhost", "127.0.0.1"]), server.addr());
    let cli = Cli::remote(&front.url());
    let pem = cli.dir.path().join("ca.pem");
    std::fs::write(&pem, ca.pem()).unwrap();
    (server, front, cli, pem.display().to_string())
}

#[test]
fn https_with_the_servers_ca_given_works_by_flag_and_by_environment() {
    let (_server, front, cli, ca) = behind_tls();
    let status = cli.json(&["--ca", &ca, "status"]);
    assert_eq!(status["mode"], "remote");
    assert_eq!(status["health"], "ok");
    assert_eq!(status["server"], front.url());

    // CHAT_CA, and a login whose token is saved for the https server and used after.
    let login = cli
        .command(&["--json", "customer", "login", "cust-1"])
        .env("CHAT_CA", &ca)
        .output()
        .unwrap();
    assert_eq!(login.status.code(), Some(0), "{login:?}");
    let me = cli.json(&["--ca", &ca, "whoami"]);
    assert_eq!(
        (&me["role"], &me["subject"]),
        (&"customer".into(), &"cust-1".into())
    );
    assert!(front.forwarded() >= 3);
}

#[test]
fn https_without_the_ca_fails_saying_the_certificate_is_not_trusted() {
    let (_server, front, cli, _) = behind_tls();
    let run = cli.run(&["status"]);
    run.error(6, "tls");
    let first = run.stderr.lines().next().unwrap();
    assert_eq!(
        first,
        format!(
            "error: tls: TLS with {}/healthz: the server's certificate is not trusted: it is \
             not signed by a CA this client trusts (the system's, or one added as a CA \
             certificate) (UnknownIssuer); if a private CA signed it, give that CA's \
             certificate with --ca FILE (CHAT_CA)",
            front.url()
        )
    );
    let json = cli.run(&["--json", "status"]);
    json.json_error(6, "tls");
    assert_eq!(front.forwarded(), 0, "nothing reached the server");
}

#[test]
fn a_ca_file_that_is_not_pem_or_missing_is_a_usage_error() {
    let (_server, front, cli, _) = behind_tls();
    let not_pem = cli.dir.path().join("ca.txt");
    std::fs::write(&not_pem, "not a certificate\n").unwrap();
    let path = not_pem.display().to_string();
    let run = cli.run(&["--ca", &path, "status"]);
    run.error(2, "usage");
    assert_eq!(
        run.stderr.lines().next().unwrap(),
        format!(
            "error: usage: --ca {path}: the CA certificates given: holds no PEM certificate \
             (-----BEGIN CERTIFICATE-----)"
        )
    );

    let missing = cli.dir.path().join("missing.pem").display().to_string();
    let run = cli.run(&["--ca", &missing, "status"]);
    run.error(2, "usage");
    assert!(
        run.stderr
            .starts_with(&format!("error: usage: --ca {missing}: ")),
        "{}",
        run.stderr
    );
    assert_eq!(front.forwarded(), 0);
}
