//! What a file sent as an attachment may be: the types a server takes ([`FileTypes`], an
//! allowlist from a fixed table of well-understood formats), how a file's type is found
//! in its bytes (magic numbers through the `infer` crate, checked again strictly at the
//! start of the file; plain text by being valid UTF-8 without control characters, and
//! not markup or a script that `infer` recognizes), how that type must agree with the
//! type and the name the sender gave, and the rule for the name itself. Pure functions
//! over bytes and strings; where the bytes are stored, and who may send them, is decided
//! elsewhere.

use std::fmt;

use crate::error::{Error, Result};
use crate::text;

/// Longest attachment name, in bytes of UTF-8 (what most file systems take).
pub const MAX_NAME_BYTES: usize = 255;

/// How many bytes of a file's start its type is read from.
pub const SNIFF_BYTES: usize = 1024;

/// How a type is recognized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Magic {
    /// The file starts with one of these.
    Prefix(&'static [&'static [u8]]),
    /// RIFF container of this form (`RIFF....WEBP`).
    Riff(&'static [u8; 4]),
    /// UTF-8 text without control characters, and nothing `infer` recognizes.
    Text,
}

/// One type the server may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileType {
    mime: &'static str,
    /// What `infer` calls it (`None` for text, which it does not detect).
    infer_mime: Option<&'static str>,
    /// Extensions a name may end with; the first is the one appended to a name without.
    extensions: &'static [&'static str],
    /// Other spellings clients send in `Content-Type`.
    aliases: &'static [&'static str],
    magic: Magic,
    /// What a person calls it, for refusals.
    label: &'static str,
}

impl FileType {
    /// Its MIME type (`image/png`, ...), as stored and served.
    pub fn mime(&self) -> &'static str {
        self.mime
    }

    /// True for text types (served with `; charset=utf-8`).
    pub fn is_text(&self) -> bool {
        self.magic == Magic::Text
    }

    /// The `Content-Type` to serve it with.
    pub fn served_as(&self) -> String {
        if self.is_text() {
            format!("{}; charset=utf-8", self.mime)
        } else {
            self.mime.to_string()
        }
    }

    fn answers_to(&self, declared: &str) -> bool {
        self.mime == declared || self.aliases.contains(&declared)
    }

    fn starts_right(&self, head: &[u8]) -> bool {
        match self.magic {
            Magic::Prefix(prefixes) => prefixes.iter().any(|p| head.starts_with(p)),
            Magic::Riff(form) => head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == form,
            Magic::Text => true,
        }
    }
}

/// Every type a server can be told to take. Each is a format whose start identifies it
/// and that browsers and viewers handle as a document, never as something to run.
pub const KNOWN_TYPES: &[FileType] = &[
    FileType {
        mime: "image/png",
        infer_mime: Some("image/png"),
        extensions: &["png"],
        aliases: &["image/x-png"],
        magic: Magic::Prefix(&[b"\x89PNG\r\n\x1a\n"]),
        label: "a PNG image",
    },
    FileType {
        mime: "image/jpeg",
        infer_mime: Some("image/jpeg"),
        extensions: &["jpg", "jpeg", "jpe", "jfif"],
        aliases: &["image/jpg", "image/pjpeg"],
        magic: Magic::Prefix(&[b"\xff\xd8\xff"]),
        label: "a JPEG image",
    },
    FileType {
        mime: "image/webp",
        infer_mime: Some("image/webp"),
        extensions: &["webp"],
        aliases: &[],
        magic: Magic::Riff(b"WEBP"),
        label: "a WebP image",
    },
    FileType {
        mime: "image/gif",
        infer_mime: Some("image/gif"),
        extensions: &["gif"],
        aliases: &[],
        magic: Magic::Prefix(&[b"GIF87a", b"GIF89a"]),
        label: "a GIF image",
    },
    FileType {
        mime: "image/tiff",
        infer_mime: Some("image/tiff"),
        extensions: &["tif", "tiff"],
        aliases: &[],
        magic: Magic::Prefix(&[b"II*\0", b"MM\0*"]),
        label: "a TIFF image",
    },
    FileType {
        mime: "application/pdf",
        infer_mime: Some("application/pdf"),
        extensions: &["pdf"],
        aliases: &["application/x-pdf"],
        // Strictly at the start: `infer` looks anywhere in the first KiB, which an HTML
        // page with a `%PDF` comment passes.
        magic: Magic::Prefix(&[b"%PDF-"]),
        label: "a PDF document",
    },
    FileType {
        mime: "text/plain",
        infer_mime: None,
        extensions: &["txt", "text", "log"],
        aliases: &[],
        magic: Magic::Text,
        label: "plain text",
    },
    FileType {
        mime: "text/csv",
        infer_mime: None,
        extensions: &["csv"],
        aliases: &["application/csv"],
        magic: Magic::Text,
        label: "a CSV table",
    },
];

/// The types taken when nothing else is configured: PNG, JPEG, WebP, PDF, plain text.
pub const DEFAULT_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/webp",
    "application/pdf",
    "text/plain",
];

/// The types a server takes (an allowlist of [`KNOWN_TYPES`]).
#[derive(Clone, PartialEq, Eq)]
pub struct FileTypes {
    allowed: Vec<FileType>,
}

impl Default for FileTypes {
    fn default() -> Self {
        Self::parse(DEFAULT_TYPES.iter().copied()).unwrap_or(Self {
            allowed: Vec::new(),
        })
    }
}

impl fmt::Debug for FileTypes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.allowed.iter().map(|t| t.mime))
            .finish()
    }
}

impl fmt::Display for FileTypes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.allowed.iter().map(|t| t.mime).collect();
        f.write_str(&names.join(","))
    }
}

impl FileTypes {
    /// The allowlist of these MIME types (each one of [`KNOWN_TYPES`]); an unknown one is
    /// an error naming it and the known ones.
    pub fn parse<'a>(mimes: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut allowed = Vec::new();
        for mime in mimes {
            let mime = mime.trim().to_ascii_lowercase();
            let Some(known) = KNOWN_TYPES.iter().find(|t| t.answers_to(&mime)) else {
                let known: Vec<&str> = KNOWN_TYPES.iter().map(|t| t.mime).collect();
                return Err(format!(
                    "{mime:?} is not a type the server can check; choose from {}",
                    known.join(", ")
                ));
            };
            if !allowed.contains(known) {
                allowed.push(*known);
            }
        }
        if allowed.is_empty() {
            return Err("at least one type must be allowed".to_string());
        }
        Ok(Self { allowed })
    }

    /// The allowed types.
    pub fn allowed(&self) -> impl Iterator<Item = &FileType> {
        self.allowed.iter()
    }

    /// The type the start of a file shows (`head`: its first [`SNIFF_BYTES`] bytes, or
    /// all of it when shorter), given the `Content-Type` the sender declared (`None`,
    /// empty or `application/octet-stream`: none) and the extension of its name. A text
    /// type is only a candidate here: the whole file must pass [`TextCheck`].
    ///
    /// Refused ([`Error::UnsupportedType`]): a format that is not allowed, bytes of no
    /// format the server can tell that are not text, and bytes that disagree with the
    /// declared type (HTML declared as `image/png`).
    pub fn detect(
        &self,
        head: &[u8],
        declared: Option<&str>,
        extension: Option<&str>,
    ) -> Result<FileType> {
        let declared = declared
            .map(|d| {
                d.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .filter(|d| !d.is_empty() && d != "application/octet-stream");
        let found = match infer::get(head) {
            Some(kind) => {
                let known = KNOWN_TYPES
                    .iter()
                    .find(|t| t.infer_mime == Some(kind.mime_type()));
                if let Some(known) = known
                    && !known.starts_right(head)
                {
                    return Err(Error::UnsupportedType(format!(
                        "the file does not start as {} does",
                        known.label
                    )));
                }
                let Some(found) = known else {
                    return Err(Error::UnsupportedType(format!(
                        "the file is of type {}, which this server does not take; it takes {}",
                        kind.mime_type(),
                        self.describe()
                    )));
                };
                *found
            }
            None => {
                if looks_like_markup(head) {
                    return Err(Error::UnsupportedType(
                        "the file is markup (HTML, XML or SVG), which this server does not \
                         take as text"
                            .to_string(),
                    ));
                }
                if !TextCheck::head_is_text(head) {
                    return Err(Error::UnsupportedType(format!(
                        "the file is of no type this server can recognize; it takes {}",
                        self.describe()
                    )));
                }
                // Text: the sender's word (declared type, else extension) says which
                // kind, among the text types allowed.
                let by_declared = declared
                    .as_deref()
                    .and_then(|d| KNOWN_TYPES.iter().find(|t| t.is_text() && t.answers_to(d)));
                let by_extension = extension.and_then(|e| {
                    KNOWN_TYPES
                        .iter()
                        .find(|t| t.is_text() && t.extensions.contains(&e))
                });
                let text = by_declared
                    .or(by_extension)
                    .filter(|t| self.allowed.contains(t))
                    .or_else(|| self.allowed.iter().find(|t| t.mime == "text/plain"))
                    .or_else(|| self.allowed.iter().find(|t| t.is_text()));
                match text {
                    Some(t) => *t,
                    None => {
                        return Err(Error::UnsupportedType(format!(
                            "the file is text, which this server does not take; it takes {}",
                            self.describe()
                        )));
                    }
                }
            }
        };
        if !self.allowed.contains(&found) {
            return Err(Error::UnsupportedType(format!(
                "the file is {} ({}), which this server does not take; it takes {}",
                found.label,
                found.mime,
                self.describe()
            )));
        }
        if let Some(declared) = declared
            && !found.answers_to(&declared)
        {
            return Err(Error::UnsupportedType(format!(
                "the file is {} ({}), not {declared} as its Content-Type says",
                found.label, found.mime
            )));
        }
        Ok(found)
    }

    fn describe(&self) -> String {
        let names: Vec<&str> = self.allowed.iter().map(|t| t.mime).collect();
        names.join(", ")
    }
}

/// Whether text starts as markup does (`<` and then a letter, `!`, `?` or `/`, after
/// whitespace and a byte order mark): HTML, XML and SVG that `infer` does not name
/// (an `<svg>` element, a fragment without `<html>`) are not plain text here, so that
/// nothing a browser would render is stored as text.
fn looks_like_markup(head: &[u8]) -> bool {
    let text = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let start = text
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(text.len());
    match &text[start..] {
        [b'<', next, ..] => next.is_ascii_alphabetic() || matches!(next, b'!' | b'?' | b'/'),
        _ => false,
    }
}

/// The extension of a name (after its last `.`), lowercased; `None` without one.
pub fn extension_of(name: &str) -> Option<String> {
    let (stem, ext) = name.rsplit_once('.')?;
    if stem.is_empty() {
        // `.bashrc`: a hidden file's name, not an extension.
        return None;
    }
    Some(ext.to_ascii_lowercase())
}

/// The name an attachment is stored with, from the one the sender gave: its last path
/// component (a browser or a script may send `C:\docs\pay.pdf` or `../../pay.pdf`),
/// trimmed. Refused with [`Error::InvalidParameter`] (`name`): nothing left, `.` or
/// `..`, a control, bidirectional formatting or other invisible character (but the plain
/// space), more than [`MAX_NAME_BYTES`] bytes.
pub fn clean_name(raw: &str) -> Result<String> {
    let bad = |reason: &str| Error::InvalidParameter {
        name: "name",
        reason: reason.to_string(),
    };
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("").trim();
    if last.is_empty() || last == "." || last == ".." {
        return Err(bad("must be a file name, such as payslip.pdf"));
    }
    if last
        .chars()
        .any(|c| c != ' ' && (text::is_invisible(c) || text::is_disguising(c)))
    {
        return Err(bad(
            "must not contain control, invisible or bidirectional formatting characters",
        ));
    }
    if last.len() > MAX_NAME_BYTES {
        return Err(bad(&format!("must be at most {MAX_NAME_BYTES} bytes")));
    }
    Ok(last.to_string())
}

/// The name checked against the type found in the bytes: a name whose extension is not
/// one of the type's (a PDF named `.exe`, `.html` or `.pdf.js`) is refused with
/// [`Error::UnsupportedType`]; a name without one gets the type's.
pub fn name_for(name: &str, found: &FileType) -> Result<String> {
    match extension_of(name) {
        Some(ext) if found.extensions.contains(&ext.as_str()) => Ok(name.to_string()),
        Some(ext) => Err(Error::UnsupportedType(format!(
            "the file is {} ({}), but its name ends in .{ext}; name it *.{}",
            found.label, found.mime, found.extensions[0]
        ))),
        None => {
            let named = format!("{name}.{}", found.extensions[0]);
            if named.len() > MAX_NAME_BYTES {
                return Err(Error::InvalidParameter {
                    name: "name",
                    reason: format!("must be at most {MAX_NAME_BYTES} bytes"),
                });
            }
            Ok(named)
        }
    }
}

/// The check of a whole text file, chunk by chunk: valid UTF-8 (a character may span
/// chunks), and no control character but tab, line feed, form feed and carriage return.
#[derive(Debug, Default)]
pub struct TextCheck {
    /// The start of a character cut by the end of the last chunk.
    carry: Vec<u8>,
}

impl TextCheck {
    /// Whether the start of a file can be text (the end may be cut mid-character).
    pub fn head_is_text(head: &[u8]) -> bool {
        let mut check = TextCheck::default();
        check.update(head).is_ok()
    }

    /// Checks the next chunk.
    pub fn update(&mut self, chunk: &[u8]) -> Result<(), &'static str> {
        let mut joined;
        let bytes = if self.carry.is_empty() {
            chunk
        } else {
            joined = std::mem::take(&mut self.carry);
            joined.extend_from_slice(chunk);
            &joined[..]
        };
        let valid = match std::str::from_utf8(bytes) {
            Ok(all) => all,
            Err(e) if e.error_len().is_none() => {
                // Cut at the end: keep the start of the character for the next chunk.
                let (good, rest) = bytes.split_at(e.valid_up_to());
                self.carry = rest.to_vec();
                // `good` is valid UTF-8 up to here by construction.
                std::str::from_utf8(good).map_err(|_| "it is not UTF-8 text")?
            }
            Err(_) => return Err("it is not UTF-8 text"),
        };
        if valid
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{c}'))
        {
            return Err("it holds control characters, which text does not");
        }
        Ok(())
    }

    /// The end of the file: nothing may be left cut.
    pub fn finish(self) -> Result<(), &'static str> {
        if self.carry.is_empty() {
            Ok(())
        } else {
            Err("it ends in the middle of a character")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types() -> FileTypes {
        FileTypes::default()
    }

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    const PDF: &[u8] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj";

    #[test]
    fn formats_are_found_in_the_bytes() {
        let t = types();
        assert_eq!(
            t.detect(PNG, Some("image/png"), Some("png"))
                .unwrap()
                .mime(),
            "image/png"
        );
        assert_eq!(
            t.detect(PDF, None, Some("pdf")).unwrap().mime(),
            "application/pdf"
        );
        assert_eq!(
            t.detect(b"\xff\xd8\xff\xe0\0\x10JFIF", Some("image/jpg"), None)
                .unwrap()
                .mime(),
            "image/jpeg"
        );
        assert_eq!(
            t.detect(
                b"RIFF\x10\0\0\0WEBPVP8 ",
                Some("application/octet-stream"),
                None
            )
            .unwrap()
            .mime(),
            "image/webp"
        );
        assert_eq!(
            t.detect(
                "Hello, été\n".as_bytes(),
                Some("text/plain; charset=utf-8"),
                None
            )
            .unwrap()
            .mime(),
            "text/plain"
        );
    }

    #[test]
    fn content_that_lies_about_its_type_is_refused() {
        let t = types();
        let html = b"<!DOCTYPE html><html><script>alert(1)</script></html>";
        for declared in [Some("image/png"), Some("text/plain"), None] {
            let e = t.detect(html, declared, Some("png")).unwrap_err();
            assert_eq!(e.code(), "unsupported_type", "{declared:?}: {e}");
        }
        // A PNG declared as a PDF, a PDF declared as an image.
        assert_eq!(
            t.detect(PNG, Some("application/pdf"), None)
                .unwrap_err()
                .code(),
            "unsupported_type"
        );
        assert_eq!(
            t.detect(PDF, Some("image/png"), None).unwrap_err().code(),
            "unsupported_type"
        );
        // A shell script, an executable, a ZIP: not taken.
        for bytes in [
            &b"#!/bin/sh\nrm -rf /\n"[..],
            b"MZ\x90\0\x03\0\0\0\x04\0",
            b"PK\x03\x04\x14\0\0\0",
        ] {
            assert_eq!(
                t.detect(bytes, None, None).unwrap_err().code(),
                "unsupported_type"
            );
        }
        // HTML with `%PDF` in its first KiB is not a PDF.
        let polyglot = b"<html><body>%PDF-1.4</body></html>";
        assert!(
            t.detect(polyglot, Some("application/pdf"), Some("pdf"))
                .is_err()
        );
        // Binary junk is not text; markup `infer` does not name is not text either.
        assert!(t.detect(b"\0\x01\x02\x03abc", None, None).is_err());
        for markup in [
            &b"<svg onload=alert(1)>"[..],
            b"  <p>hi",
            b"\xef\xbb\xbf<?xml?>",
            b"<!-- x -->",
        ] {
            assert_eq!(
                t.detect(markup, Some("text/plain"), None)
                    .unwrap_err()
                    .code(),
                "unsupported_type"
            );
        }
        assert!(t.detect(b"1 < 2 and 3 > 2", None, None).is_ok());
    }

    #[test]
    fn only_allowed_types_are_taken() {
        let images = FileTypes::parse(["image/png"]).unwrap();
        assert!(images.detect(PDF, None, None).is_err());
        assert!(images.detect(b"plain words", None, None).is_err());
        assert!(FileTypes::parse(["text/html"]).is_err());
        assert!(FileTypes::parse(["application/x-msdownload"]).is_err());
        assert!(FileTypes::parse(std::iter::empty()).is_err());
        let csv = FileTypes::parse(["text/csv", "TEXT/PLAIN"]).unwrap();
        assert_eq!(
            csv.detect(b"a,b\n1,2\n", None, Some("csv")).unwrap().mime(),
            "text/csv"
        );
        assert_eq!(
            csv.detect(b"a,b\n1,2\n", None, Some("txt")).unwrap().mime(),
            "text/plain"
        );
        assert_eq!(csv.to_string(), "text/csv,text/plain");
    }

    #[test]
    fn names_lose_their_path_and_keep_their_meaning() {
        assert_eq!(clean_name("pay slip.pdf").unwrap(), "pay slip.pdf");
        assert_eq!(clean_name("../../etc/passwd").unwrap(), "passwd");
        assert_eq!(clean_name("C:\\Users\\me\\scan.png").unwrap(), "scan.png");
        assert_eq!(clean_name("  été 2026.pdf ").unwrap(), "été 2026.pdf");
        for bad in [
            "",
            "/",
            "..",
            "a/..",
            "bad\nname.pdf",
            "tab\there.pdf",
            "nul\0.pdf",
            "evil\u{202E}fdp.exe",
            "zero\u{200B}width.pdf",
            "iso\u{2066}late.pdf",
        ] {
            let e = clean_name(bad).unwrap_err();
            assert_eq!(e.code(), "invalid_parameter", "{bad:?}");
        }
        assert!(clean_name(&"a".repeat(256)).is_err());
        assert!(clean_name(&format!("{}.pdf", "é".repeat(125))).is_ok());
    }

    #[test]
    fn a_name_must_end_as_its_type() {
        let t = types();
        let pdf = t.detect(PDF, None, None).unwrap();
        assert_eq!(name_for("offer.PDF", &pdf).unwrap(), "offer.PDF");
        assert_eq!(name_for("offer", &pdf).unwrap(), "offer.pdf");
        for bad in [
            "offer.exe",
            "offer.pdf.js",
            "offer.html",
            "offer.svg",
            "offer.",
        ] {
            let e = name_for(bad, &pdf).unwrap_err();
            assert_eq!(e.code(), "unsupported_type", "{bad}");
        }
        assert_eq!(extension_of(".bashrc"), None);
    }

    #[test]
    fn text_is_checked_across_chunks() {
        let text = "Grüße, 世界 🙂\r\n\tend".as_bytes();
        for cut in 0..text.len() {
            let mut check = TextCheck::default();
            check.update(&text[..cut]).unwrap();
            check.update(&text[cut..]).unwrap();
            check.finish().unwrap();
        }
        let mut check = TextCheck::default();
        check.update("abc\u{1b}[31m".as_bytes()).unwrap_err();
        let mut cut = TextCheck::default();
        cut.update(&"é".as_bytes()[..1]).unwrap();
        assert!(cut.finish().is_err());
        assert!(TextCheck::default().update(b"\xff\xfe").is_err());
    }
}
