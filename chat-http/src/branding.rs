//! The bank's branding of the customer page: its name, two colours, a logo, a welcome
//! text and opening hours, read from a JSON file (`--branding`) and checked strictly at
//! start, so that a bad value stops the server with a sentence instead of reaching a
//! page. The page fetches the result as JSON (`GET /api/branding`) and renders it as
//! text and CSS custom properties, never as HTML. This module holds settings only: no
//! chat rule, and nothing it accepts can carry markup or CSS beyond a `#rrggbb` colour.

use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};

/// Longest bank name, in characters.
pub const MAX_NAME_CHARS: usize = 60;
/// Longest welcome text, in characters.
pub const MAX_WELCOME_CHARS: usize = 400;
/// Largest logo file, in bytes.
pub const MAX_LOGO_BYTES: usize = 256 * 1024;
/// Most opening ranges on one day.
pub const MAX_RANGES_PER_DAY: usize = 4;
/// Largest branding file, in bytes.
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// The days of the week as the file and the wire name them, Monday first.
pub const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// The customer page's branding. [`Branding::default`] is the look the server ships with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branding {
    name: String,
    primary_color: String,
    accent_color: String,
    welcome: String,
    hours: Option<Hours>,
    logo: Option<Logo>,
}

/// Opening hours: per weekday, ranges of minutes since midnight, in a named time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hours {
    time_zone: String,
    /// Monday first, each day's ranges sorted and apart.
    days: [Vec<(u16, u16)>; 7],
}

/// A logo file, read at start and served at [`LOGO_PATH`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logo {
    bytes: bytes::Bytes,
    content_type: &'static str,
}

/// Where the page finds the logo, when one is configured.
pub const LOGO_PATH: &str = "/branding/logo";

impl Default for Branding {
    fn default() -> Self {
        Self {
            name: "Customer support".to_string(),
            primary_color: "#1f4e79".to_string(),
            accent_color: "#0f766e".to_string(),
            welcome: "Hello! Ask us about your loan or your account: an officer will answer \
                      you here."
                .to_string(),
            hours: None,
            logo: None,
        }
    }
}

/// The file's shape; every field may be left out (the default is used).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct File {
    name: Option<String>,
    primary_color: Option<String>,
    accent_color: Option<String>,
    welcome: Option<String>,
    /// A file path, relative to the branding file's directory.
    logo: Option<String>,
    hours: Option<HoursFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct HoursFile {
    time_zone: String,
    #[serde(default)]
    mon: Vec<String>,
    #[serde(default)]
    tue: Vec<String>,
    #[serde(default)]
    wed: Vec<String>,
    #[serde(default)]
    thu: Vec<String>,
    #[serde(default)]
    fri: Vec<String>,
    #[serde(default)]
    sat: Vec<String>,
    #[serde(default)]
    sun: Vec<String>,
}

impl Branding {
    /// Reads and checks the branding file at `path`, and the logo file it names
    /// (relative to the branding file's directory). The error is a sentence for the
    /// operator, naming the file and the field.
    pub fn load(path: &Path) -> Result<Self, String> {
        let shown = path.display();
        let size = std::fs::metadata(path)
            .map_err(|e| format!("--branding {shown}: {e}"))?
            .len();
        if size > MAX_FILE_BYTES {
            return Err(format!(
                "--branding {shown}: the file is {size} bytes; at most {MAX_FILE_BYTES}"
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("--branding {shown}: {e}"))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, |logo| read_logo(&dir.join(logo)))
            .map_err(|e| format!("--branding {shown}: {e}"))
    }

    /// Checks a branding file's text; `logo` reads the logo file it names.
    fn parse(text: &str, logo: impl FnOnce(&str) -> Result<Logo, String>) -> Result<Self, String> {
        let file: File = serde_json::from_str(text)
            .map_err(|e| format!("not a branding file (JSON, see docs/DEPLOY.md): {e}"))?;
        let mut branding = Self::default();
        if let Some(name) = file.name {
            branding.name = text_field("name", &name, 1, MAX_NAME_CHARS, false)?;
        }
        if let Some(color) = file.primary_color {
            // White text sits on it (buttons, the header): AA for normal text.
            branding.primary_color = color_field("primaryColor", &color, 4.5)?;
        }
        if let Some(color) = file.accent_color {
            // A non-text mark on white (the header's rule, the open sign): 3:1.
            branding.accent_color = color_field("accentColor", &color, 3.0)?;
        }
        if let Some(welcome) = file.welcome {
            branding.welcome = text_field("welcome", &welcome, 0, MAX_WELCOME_CHARS, true)?;
        }
        if let Some(hours) = file.hours {
            branding.hours = Some(hours_field(hours)?);
        }
        if let Some(path) = file.logo {
            if path.trim().is_empty() {
                return Err("logo: give the path of an .svg, .png, .jpg or .webp file".into());
            }
            branding.logo = Some(logo(&path).map_err(|e| format!("logo {path:?}: {e}"))?);
        }
        Ok(branding)
    }

    /// The logo, when one is configured.
    pub fn logo(&self) -> Option<(&'static str, bytes::Bytes)> {
        self.logo
            .as_ref()
            .map(|l| (l.content_type, l.bytes.clone()))
    }

    /// The bank's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// [`Self::to_json`] as it is written into the customer page, in a
    /// `<script type="application/json">` data block (never run; the page reads it
    /// with `JSON.parse`): `<`, `>` and `&` are written as JSON escapes, so no value can
    /// close the element or open another.
    pub fn to_html_data(&self) -> String {
        self.to_json()
            .to_string()
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026")
    }

    /// What `GET /api/branding` answers (docs/API.md, "Branding").
    pub fn to_json(&self) -> Value {
        let hours = self.hours.as_ref().map(|hours| {
            let mut days = serde_json::Map::new();
            for (day, ranges) in DAYS.iter().zip(&hours.days) {
                let ranges: Vec<Value> = ranges
                    .iter()
                    .map(|&(from, to)| json!({ "from": clock(from), "to": clock(to) }))
                    .collect();
                days.insert((*day).to_string(), Value::Array(ranges));
            }
            json!({ "timeZone": hours.time_zone, "days": days })
        });
        json!({
            "name": self.name,
            "primaryColor": self.primary_color,
            "accentColor": self.accent_color,
            "welcome": self.welcome,
            "logo": self.logo.as_ref().map(|_| LOGO_PATH),
            "hours": hours,
        })
    }
}

/// Text of `min..=max` characters, trimmed, without control characters (line breaks
/// only where `lines`).
fn text_field(
    field: &str,
    value: &str,
    min: usize,
    max: usize,
    lines: bool,
) -> Result<String, String> {
    let value = value.trim();
    let chars = value.chars().count();
    if chars < min || chars > max {
        return Err(format!(
            "{field} is {chars} characters; it must be {min} to {max}"
        ));
    }
    if let Some(c) = value
        .chars()
        .find(|&c| c.is_control() && !(lines && c == '\n'))
    {
        return Err(format!(
            "{field} holds the control character {c:?}; plain text only"
        ));
    }
    Ok(value.to_string())
}

/// A `#rrggbb` colour (nothing else: no names, no functions, so no way into CSS) whose
/// contrast with white is at least `min_contrast`; answered in lower case.
fn color_field(field: &str, value: &str, min_contrast: f64) -> Result<String, String> {
    let hex = value
        .strip_prefix('#')
        .filter(|h| h.len() == 6 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| format!("{field} {value:?} is not a colour like #1f4e79 (#rrggbb)"))?;
    let contrast = contrast_with_white(hex);
    if contrast < min_contrast {
        return Err(format!(
            "{field} {value} has a contrast of {contrast:.1}:1 with white; it needs \
             {min_contrast}:1 at least (WCAG AA): choose a darker colour"
        ));
    }
    Ok(format!("#{}", hex.to_ascii_lowercase()))
}

/// WCAG 2 contrast ratio of the colour `rrggbb` with white.
fn contrast_with_white(hex: &str) -> f64 {
    let channel = |i: usize| {
        let c = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0)) / 255.0;
        if c <= 0.03928 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let luminance = 0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4);
    1.05 / (luminance + 0.05)
}

fn hours_field(file: HoursFile) -> Result<Hours, String> {
    let zone = file.time_zone.trim();
    let zone_ok = (1..=64).contains(&zone.len())
        && zone.starts_with(|c: char| c.is_ascii_alphabetic())
        && zone
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-/".contains(&b));
    if !zone_ok {
        return Err(format!(
            "hours.timeZone {zone:?} is not a time zone name like Europe/Paris"
        ));
    }
    let given = [
        file.mon, file.tue, file.wed, file.thu, file.fri, file.sat, file.sun,
    ];
    let mut days: [Vec<(u16, u16)>; 7] = Default::default();
    for ((day, ranges), out) in DAYS.iter().zip(given).zip(days.iter_mut()) {
        if ranges.len() > MAX_RANGES_PER_DAY {
            return Err(format!(
                "hours.{day} has {} ranges; at most {MAX_RANGES_PER_DAY}",
                ranges.len()
            ));
        }
        for range in &ranges {
            out.push(parse_range(range).ok_or_else(|| {
                format!(
                    "hours.{day} {range:?} is not a range like \"09:00-17:30\" (24-hour \
                     clock, the end after the start, 24:00 at most)"
                )
            })?);
        }
        out.sort_unstable();
        if out.windows(2).any(|w| w[0].1 > w[1].0) {
            return Err(format!("hours.{day} has ranges that overlap"));
        }
    }
    Ok(Hours {
        time_zone: zone.to_string(),
        days,
    })
}

/// `HH:MM-HH:MM` as minutes since midnight, the end after the start.
fn parse_range(range: &str) -> Option<(u16, u16)> {
    let (from, to) = range.trim().split_once('-')?;
    let (from, to) = (minutes(from.trim())?, minutes(to.trim())?);
    (from < to).then_some((from, to))
}

fn minutes(clock: &str) -> Option<u16> {
    let (h, m) = clock.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !(h.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    let total = h * 60 + m;
    (m < 60 && total <= 24 * 60).then_some(total)
}

fn clock(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// Reads a logo file, of a known image type by its name and its first bytes.
fn read_logo(path: &Path) -> Result<Logo, String> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let content_type = match extension.as_deref() {
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        _ => return Err("the logo must be an .svg, .png, .jpg or .webp file".into()),
    };
    let size = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if size > MAX_LOGO_BYTES as u64 {
        return Err(format!(
            "the file is {size} bytes; a logo is at most {MAX_LOGO_BYTES}"
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    logo_of(content_type, bytes)
}

/// A logo whose first bytes are those of its type.
fn logo_of(content_type: &'static str, bytes: Vec<u8>) -> Result<Logo, String> {
    let looks_right = match content_type {
        "image/png" => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "image/jpeg" => bytes.starts_with(b"\xff\xd8\xff"),
        "image/webp" => bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP",
        _ => std::str::from_utf8(&bytes).is_ok_and(|t| t.contains("<svg")),
    };
    if !looks_right || bytes.len() > MAX_LOGO_BYTES {
        return Err(format!("the file's content is not {content_type}"));
    }
    Ok(Logo {
        bytes: bytes.into(),
        content_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Branding, String> {
        Branding::parse(text, |_| logo_of("image/svg+xml", b"<svg></svg>".to_vec()))
    }

    #[test]
    fn an_empty_file_is_the_default_look() {
        assert_eq!(parse("{}").unwrap(), Branding::default());
        let wire = Branding::default().to_json();
        assert_eq!(wire["name"], "Customer support");
        assert_eq!(wire["logo"], Value::Null);
        assert_eq!(wire["hours"], Value::Null);
    }

    #[test]
    fn the_default_colours_pass_their_own_contrast_rules() {
        let d = Branding::default();
        assert!(color_field("p", &d.primary_color, 4.5).is_ok());
        assert!(color_field("a", &d.accent_color, 3.0).is_ok());
    }

    #[test]
    fn a_full_file_is_read_and_answered() {
        let b = parse(
            r##"{"name":" Northwind Bank ","primaryColor":"#0B4F8A","accentColor":"#0f766e",
                "welcome":"Hi <b>there</b>\nWe help.","logo":"logo.svg",
                "hours":{"timeZone":"Europe/Paris","mon":["14:00-18:00","09:00-12:00"],
                         "sat":["10:00-24:00"]}}"##,
        )
        .unwrap();
        let wire = b.to_json();
        assert_eq!(wire["name"], "Northwind Bank");
        assert_eq!(wire["primaryColor"], "#0b4f8a");
        // Markup is kept as the text it is; the page shows it as text.
        assert_eq!(wire["welcome"], "Hi <b>there</b>\nWe help.");
        assert_eq!(wire["logo"], LOGO_PATH);
        assert_eq!(wire["hours"]["timeZone"], "Europe/Paris");
        assert_eq!(
            wire["hours"]["days"]["mon"],
            json!([{"from":"09:00","to":"12:00"},{"from":"14:00","to":"18:00"}])
        );
        assert_eq!(
            wire["hours"]["days"]["sat"],
            json!([{"from":"10:00","to":"24:00"}])
        );
        assert_eq!(wire["hours"]["days"]["sun"], json!([]));
    }

    #[test]
    fn the_page_data_cannot_close_its_element() {
        let b = parse(r##"{"name":"</script><script>alert(1)</script>","welcome":"a & b <!--"}"##)
            .unwrap();
        let data = b.to_html_data();
        assert!(
            !data.contains('<') && !data.contains('>') && !data.contains('&'),
            "{data}"
        );
        // The same values once parsed back.
        let back: Value = serde_json::from_str(&data).unwrap();
        assert_eq!(back, b.to_json());
        assert_eq!(back["name"], "</script><script>alert(1)</script>");
    }

    #[test]
    fn bad_values_are_refused_naming_the_field() {
        for (file, says) in [
            (r##"{"primaryColor":"red"}"##, "primaryColor"),
            (r##"{"primaryColor":"#fff; background:url(x)"}"##, "#rrggbb"),
            (r##"{"primaryColor":"#1f4e7"}"##, "#rrggbb"),
            (r##"{"primaryColor":"#ffeeaa"}"##, "contrast"),
            (r##"{"accentColor":"#ffffff"}"##, "accentColor"),
            (r##"{"accentColor":"rgb(0,0,0)"}"##, "accentColor"),
            (r##"{"name":""}"##, "name"),
            (r##"{"name":"a\u0007b"}"##, "control"),
            (r##"{"name":"one\ntwo"}"##, "control"),
            ("{\"welcome\":\"", "JSON"),
            (r##"{"colour":"#000000"}"##, "unknown field"),
            (r##"{"logo":"  "}"##, "logo"),
            (r##"{"hours":{"timeZone":"Europe/Paris; x"}}"##, "timeZone"),
            (
                r##"{"hours":{"timeZone":"UTC","mon":["9:00-17:00"]}}"##,
                "hours.mon",
            ),
            (
                r##"{"hours":{"timeZone":"UTC","tue":["17:00-09:00"]}}"##,
                "hours.tue",
            ),
            (
                r##"{"hours":{"timeZone":"UTC","wed":["09:00-24:01"]}}"##,
                "hours.wed",
            ),
            (
                r##"{"hours":{"timeZone":"UTC","thu":["09:60-10:00"]}}"##,
                "hours.thu",
            ),
            (
                r##"{"hours":{"timeZone":"UTC","fri":["09:00-12:00","11:00-13:00"]}}"##,
                "overlap",
            ),
            (
                r##"{"hours":{"timeZone":"UTC","holiday":[]}}"##,
                "unknown field",
            ),
        ] {
            let err = parse(file).unwrap_err();
            assert!(err.contains(says), "{file}: {err}");
        }
        let long = format!(r##"{{"welcome":"{}"}}"##, "a".repeat(MAX_WELCOME_CHARS + 1));
        assert!(parse(&long).unwrap_err().contains("welcome"));
        let many = r##"{"hours":{"timeZone":"UTC","mon":["01:00-02:00","03:00-04:00","05:00-06:00","07:00-08:00","09:00-10:00"]}}"##;
        assert!(parse(many).unwrap_err().contains("at most"));
    }

    #[test]
    fn a_logo_must_be_the_image_it_says() {
        assert!(logo_of("image/png", b"\x89PNG\r\n\x1a\nrest".to_vec()).is_ok());
        assert!(logo_of("image/png", b"<svg/>".to_vec()).is_err());
        assert!(logo_of("image/svg+xml", b"<html>".to_vec()).is_err());
        assert!(logo_of("image/svg+xml", vec![b'<'; MAX_LOGO_BYTES + 1]).is_err());
        let dir = tempfile_dir();
        let gif = dir.join("logo.gif");
        std::fs::write(&gif, b"GIF89a").unwrap();
        assert!(read_logo(&gif).unwrap_err().contains(".svg"));
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("branding-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
