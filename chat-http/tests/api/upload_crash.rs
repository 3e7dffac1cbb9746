//! Crash safety of attachments: the real `chat-http` binary is SIGKILLed while customers
//! upload files at full speed, then restarted on the same database and attachments
//! directory. Every upload the server acknowledged must be there and download whole (its
//! SHA-256 as acknowledged), no message may point at missing bytes, seqs stay dense, and
//! what the kill left behind (a half-written upload, bytes stored just before the kill
//! whose message never was) is swept at the next start once past its grace.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use crate::attachments::blob_files;
use crate::server::Server;

/// The binary with a short grace, so that a restart after it sweeps (no pace asked of
/// uploads, or the sweep would wait as long as the slowest allowed upload may take).
fn start(db: &std::path::Path, log: &std::path::Path) -> Server {
    Server::start_with(
        db,
        log,
        &[
            "--sync-normal",
            "--attachment-orphan-grace",
            "1s",
            "--upload-min-rate",
            "0",
            "--limit-uploads",
            "off",
            "--max-uploads-per-sender",
            "8",
        ],
    )
}

fn file(owner: usize, i: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    // 64 KiB to 320 KiB, different for every upload.
    let len = 64 * 1024 + (owner * 7 + i * 13) % 5 * 64 * 1024;
    bytes.extend((0..len).map(|k| ((k + owner * 31 + i * 17) % 251) as u8));
    bytes
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_uploads_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (db, log) = (dir.path().join("chat.db"), dir.path().join("server.log"));
    let files_dir = chatcore::FsBlobStore::beside(&db);
    let mut server = start(&db, &log);
    let api = server.api.clone();
    let officer = api.officer("amy").await;
    let mut customers = Vec::new();
    for c in 0..4 {
        let (token, chat) = api.customer(&format!("cust-{c}")).await;
        api.claim(&officer, "amy", &chat).await.unwrap();
        customers.push((token, chat));
    }

    // Each customer uploads until a request fails; the kill comes after 40 answers.
    let acked = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = customers
        .iter()
        .cloned()
        .enumerate()
        .map(|(owner, (token, chat))| {
            let (api, acked) = (api.clone(), acked.clone());
            tokio::spawn(async move {
                // (file name, sha256) of every acknowledged upload, with its message.
                let mut stored: Vec<(String, String, Value)> = Vec::new();
                for i in 0.. {
                    let bytes = file(owner, i);
                    let name = format!("c{owner}-{i}.pdf");
                    let url = format!("{}/api/chats/{chat}/attachments?name={name}", api.base);
                    let answer = api
                        .client()
                        .post(url)
                        .bearer_auth(&token)
                        .body(bytes.clone())
                        .send()
                        .await;
                    let Ok(resp) = answer else { break };
                    let status = resp.status().as_u16();
                    let Ok(body) = resp.json::<Value>().await else {
                        break;
                    };
                    assert_eq!(status, 201, "{body}");
                    stored.push((name, sha256(&bytes), body));
                    acked.fetch_add(1, Ordering::AcqRel);
                }
                (token, chat, stored)
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.load(Ordering::Acquire) < 40 {
        assert!(Instant::now() < deadline, "too few uploads acknowledged");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    server.kill();
    let mut logs = Vec::new();
    for task in tasks {
        logs.push(task.await.unwrap());
    }

    // What the kill may have left: a partial upload and an unreferenced blob, made
    // here too so that the sweep is always put to the test.
    std::fs::write(files_dir.join("tmp").join("1-killed.part"), b"%PDF-half").unwrap();
    let stray = b"%PDF-1.7 bytes whose message never came";
    let stray_hex = sha256(stray);
    std::fs::create_dir_all(files_dir.join(&stray_hex[..2])).unwrap();
    let stray_path = files_dir.join(&stray_hex[..2]).join(&stray_hex[2..]);
    std::fs::write(&stray_path, stray).unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&stray_path)
        .unwrap()
        .set_modified(old)
        .unwrap();

    let server = start(&db, &log);
    let api = server.api.clone();
    let mut referenced = std::collections::BTreeSet::new();
    for (token, chat, stored) in &logs {
        let all = api.all_messages(token, chat).await;
        // Dense seqs: the claim's entry, then the uploads that committed.
        let seqs: Vec<u64> = all.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, (1..=all.len() as u64).collect::<Vec<_>>());
        let by_id: BTreeMap<&str, &Value> =
            all.iter().map(|m| (m["id"].as_str().unwrap(), m)).collect();
        for (name, hash, message) in stored {
            let id = message["id"].as_str().unwrap();
            let kept = by_id
                .get(id)
                .unwrap_or_else(|| panic!("acknowledged upload {name} lost"));
            assert_eq!(kept["attachment"]["sha256"], *hash);
        }
        // Every message, acknowledged or not, downloads whole.
        for m in &all[1..] {
            let file = &m["attachment"];
            let id = file["id"].as_str().unwrap();
            let resp = api
                .client()
                .get(format!("{}/api/attachments/{id}", api.base))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 200, "{m}");
            let bytes = resp.bytes().await.unwrap();
            assert_eq!(sha256(&bytes), file["sha256"].as_str().unwrap(), "{m}");
            referenced.insert(file["sha256"].as_str().unwrap().to_string());
        }
    }
    // The start swept what was past its grace: the stray blob, the partial upload.
    api.expect(Method::GET, "/healthz", None, None, 200).await;
    let mut server = server;
    let acknowledged: usize = logs.iter().map(|(_, _, stored)| stored.len()).sum();
    eprintln!(
        "{acknowledged} uploads acknowledged before the kill; {} stored after it; {} files \
         in the directory before the sweep",
        referenced.len(),
        blob_files(&files_dir)
    );
    // Past the grace of what the kill left, a restart sweeps it at start.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.stop();
    let mut server = start(&db, &log);
    let partials = || {
        std::fs::read_dir(files_dir.join("tmp"))
            .unwrap()
            .filter_map(Result::ok)
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while stray_path.exists() || partials() > 0 || blob_files(&files_dir) != referenced.len() {
        assert!(
            Instant::now() < deadline,
            "not swept: stray blob {}, {} partial uploads, {} files for {} referenced",
            stray_path.exists(),
            partials(),
            blob_files(&files_dir),
            referenced.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop();
}
