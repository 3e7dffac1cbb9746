//! What the browser tests attach and how they read it back: a real PNG (drawn by the
//! browser) and a PDF made here, their SHA-256, files written for the Attach button's
//! input, a thumbnail drawn in the page, a save recorded in the page and hashed there,
//! and a slow link. Shared by the attachments and accessibility tests.

use std::path::{Path, PathBuf};

use fantoccini::{Client, Locator};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::browser::{Driver, eventually, js};

/// A real PNG that a browser draws (8-bit RGB, stored without compression): a pale card
/// with a dark band on a blue gradient, like a scanned document.
pub(crate) fn png(width: u32, height: u32) -> Vec<u8> {
    let mut raw = Vec::with_capacity((height * (1 + width * 3)) as usize);
    for y in 0..height {
        raw.push(0); // no filter
        for x in 0..width {
            let card = x > width / 8 && x < width * 7 / 8 && y > height / 6 && y < height * 5 / 6;
            let band = card && y > height / 3 && y < height / 2;
            let pixel = if band {
                [40, 70, 110]
            } else if card {
                [246, 244, 236]
            } else {
                [
                    (60 + x * 100 / width) as u8,
                    (110 + y * 80 / height) as u8,
                    200,
                ]
            };
            raw.extend(pixel);
        }
    }
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == blocks.len()));
        let n = block.len() as u16;
        zlib.extend(n.to_le_bytes());
        zlib.extend((!n).to_le_bytes());
        zlib.extend(*block);
    }
    zlib.extend(adler32(&raw).to_be_bytes());
    let mut header = Vec::new();
    header.extend(width.to_be_bytes());
    header.extend(height.to_be_bytes());
    header.extend([8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    png_chunk(&mut out, b"IHDR", &header);
    png_chunk(&mut out, b"IDAT", &zlib);
    png_chunk(&mut out, b"IEND", &[]);
    out
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    let mut crc_input = kind.to_vec();
    crc_input.extend(data);
    out.extend(&crc_input);
    out.extend(crc32(&crc_input).to_be_bytes());
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in bytes {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

/// A PDF of about `len` bytes: its header, comment lines, its end.
pub(crate) fn pdf(len: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.4\n".to_vec();
    while bytes.len() < len.saturating_sub(6) {
        bytes.extend(b"% a line of the statement\n");
    }
    bytes.extend(b"%%EOF\n");
    bytes
}

pub(crate) fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Writes `bytes` as `name` in `dir`.
pub(crate) fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write a file to attach");
    path
}

/// Chooses files as the Attach button's picker would: fantoccini sets the paths on the
/// page's file input, which tells the page with `change`.
pub(crate) async fn choose(b: &Client, paths: &[&Path]) {
    let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    b.find(Locator::Css("#attach-input"))
        .await
        .expect("the file input")
        .send_keys(&paths.join("\n"))
        .await
        .expect("choose the files");
}

/// Waits for the thumbnail of the stored file `name` to be drawn; answers its natural
/// size and how its address starts.
pub(crate) async fn thumbnail(b: &Client, name: &str) -> Value {
    let script = format!(
        "const view = [...document.querySelectorAll('.messages li.message[data-seq] .attachment.picture')]
           .find((e) => e.querySelector('.file-name')?.textContent === {name:?});
         const img = view?.querySelector('img');
         return img && img.complete && img.naturalWidth > 0
           ? {{ width: img.naturalWidth, height: img.naturalHeight, scheme: img.src.split(':')[0] }}
           : null;"
    );
    eventually(&format!("the thumbnail of {name} to be drawn"), || async {
        let v = js(b, &script).await;
        (!v.is_null()).then_some(v)
    })
    .await
}

/// From now on the page's saves are recorded instead of downloaded: the link it clicks
/// (its object URL and the name it saves under) and the blob behind each object URL.
pub(crate) const RECORD_SAVES: &str = r#"
window.__saved = [];
window.__blobs = new Map();
const make = URL.createObjectURL.bind(URL);
URL.createObjectURL = (blob) => { const url = make(blob); window.__blobs.set(url, blob); return url; };
const click = HTMLAnchorElement.prototype.click;
HTMLAnchorElement.prototype.click = function () {
  if (this.download && this.href.startsWith('blob:')) window.__saved.push({ href: this.href, name: this.download });
  else click.call(this);
};
return null;
"#;

/// The `index`th file the page saved: its name, type, size and SHA-256, from the blob
/// it saved (WebDriver awaits the promise).
const SAVED: &str = r#"
const [index, done] = arguments;
const saved = window.__saved[index];
const blob = window.__blobs.get(saved.href);
blob.arrayBuffer()
  .then((bytes) => crypto.subtle.digest('SHA-256', bytes))
  .then((digest) => done({
    name: saved.name, type: blob.type, size: blob.size,
    sha256: [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join(''),
  }));
"#;

/// Clicks the stored file `name` in the timeline and answers what the page saved.
pub(crate) async fn download(b: &Client, name: &str) -> Value {
    let before = js(b, "return window.__saved.length;")
        .await
        .as_u64()
        .unwrap();
    let found = js(
        b,
        &format!(
            "const button = [...document.querySelectorAll('.messages li.message[data-seq] button.attachment')]
               .find((e) => e.querySelector('.file-name')?.textContent === {name:?});
             button?.click();
             return Boolean(button);"
        ),
    )
    .await;
    assert_eq!(found, json!(true), "no {name} to click");
    eventually(&format!("{name} to be saved"), || async {
        let n = js(b, "return window.__saved.length;")
            .await
            .as_u64()
            .unwrap();
        (n > before).then_some(())
    })
    .await;
    b.execute_async(SAVED, vec![json!(before)])
        .await
        .expect("hash the saved file")
}

/// Uploads from `b` at 64 KiB/s (a slow mobile link), downloads unlimited.
pub(crate) async fn slow_upload(driver: &Driver, b: &Client) {
    driver
        .network(
            b,
            json!({ "offline": false, "latency": 0, "download_throughput": -1, "upload_throughput": 64 * 1024 }),
        )
        .await;
}
