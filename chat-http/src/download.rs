//! How a stored file goes on the wire: a `Range` header read against the file's size
//! (RFC 9110: one range of bytes, `a-b`, `a-` or `-n`; anything else is ignored and the
//! whole file served), and `Content-Disposition: attachment` with the file's name made
//! safe (RFC 6266: an ASCII `filename` and the exact UTF-8 `filename*`). It decides
//! nothing about who may read what.

use axum::http::HeaderValue;
use chatcore::ByteRange;

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wanted {
    /// All of it (no `Range`, or one the server ignores).
    Whole,
    /// These bytes (206).
    Part(ByteRange),
    /// Bytes the file does not have (416).
    Unsatisfiable,
}

/// Reads a `Range` header against a file of `size` bytes. Only single `bytes=` ranges are
/// served; several ranges, other units and malformed headers are ignored (the whole file
/// is the answer, which RFC 9110 allows).
pub(crate) fn wanted(range: Option<&HeaderValue>, size: u64) -> Wanted {
    let Some(spec) = range
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Wanted::Whole;
    };
    if spec.contains(',') {
        return Wanted::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Wanted::Whole;
    };
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // `-n`: the last n bytes.
        let Some(n) = number(last) else {
            return Wanted::Whole;
        };
        if n == 0 || size == 0 {
            return Wanted::Unsatisfiable;
        }
        return Wanted::Part(ByteRange {
            start: size - n.min(size),
            end: size,
        });
    }
    let Some(start) = number(first) else {
        return Wanted::Whole;
    };
    // `a-` or `a-b`.
    let last = if last.is_empty() {
        None
    } else {
        match number(last) {
            Some(last) if last >= start => Some(last),
            _ => return Wanted::Whole,
        }
    };
    if start >= size {
        return Wanted::Unsatisfiable;
    }
    let end = last.map_or(size, |l| l.saturating_add(1).min(size));
    Wanted::Part(ByteRange { start, end })
}

/// `Content-Disposition: attachment` naming the file: `filename` in ASCII (every other
/// character, and `"`, `\`, `%` and `;`, as `_`) for old clients, and `filename*` with the
/// exact name, percent-encoded UTF-8, which every current browser uses.
pub(crate) fn disposition(name: &str) -> HeaderValue {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c == ' ' || (c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '%' | ';')) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut exact = String::with_capacity(name.len() * 3);
    for b in name.bytes() {
        // RFC 8187 attr-char.
        if b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#' | b'$' | b'&' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
            )
        {
            exact.push(b as char);
        } else {
            exact.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{fallback}\"; filename*=UTF-8''{exact}"
    ))
    // Every character above is visible ASCII or a space.
    .unwrap_or(HeaderValue::from_static("attachment"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(header: &str, size: u64) -> Wanted {
        wanted(Some(&HeaderValue::from_str(header).unwrap()), size)
    }

    fn part(start: u64, end: u64) -> Wanted {
        Wanted::Part(ByteRange { start, end })
    }

    #[test]
    fn single_byte_ranges_are_read_against_the_size() {
        assert_eq!(wanted(None, 10), Wanted::Whole);
        assert_eq!(w("bytes=0-0", 10), part(0, 1));
        assert_eq!(w("bytes=2-5", 10), part(2, 6));
        assert_eq!(w("bytes=2-", 10), part(2, 10));
        assert_eq!(w("bytes=5-100", 10), part(5, 10));
        assert_eq!(w("bytes=-3", 10), part(7, 10));
        assert_eq!(w("bytes=-30", 10), part(0, 10));
        assert_eq!(w("bytes=10-", 10), Wanted::Unsatisfiable);
        assert_eq!(w("bytes=10-20", 10), Wanted::Unsatisfiable);
        assert_eq!(w("bytes=-0", 10), Wanted::Unsatisfiable);
        // Ignored: several ranges, other units, nonsense.
        for ignored in [
            "bytes=0-1,3-4",
            "items=0-1",
            "bytes=5-2",
            "bytes=a-b",
            "bytes=-",
            "bytes=1",
            "bytes= -1-2",
            "bytes=99999999999999999999999-",
        ] {
            assert_eq!(w(ignored, 10), Wanted::Whole, "{ignored}");
        }
    }

    #[test]
    fn file_names_are_safe_in_the_header_and_exact_in_filename_star() {
        let d = disposition("payslip.pdf");
        assert_eq!(
            d.to_str().unwrap(),
            "attachment; filename=\"payslip.pdf\"; filename*=UTF-8''payslip.pdf"
        );
        let d = disposition("relevé \"mars\"; x=1 %20.pdf");
        assert_eq!(
            d.to_str().unwrap(),
            "attachment; filename=\"relev_ _mars__ x=1 _20.pdf\"; \
             filename*=UTF-8''relev%C3%A9%20%22mars%22%3B%20x%3D1%20%2520.pdf"
        );
        // Right-to-left text never reaches the header raw.
        let d = disposition("עברית.pdf");
        assert!(
            d.to_str()
                .unwrap()
                .starts_with("attachment; filename=\"_____.pdf\"")
        );
    }
}
