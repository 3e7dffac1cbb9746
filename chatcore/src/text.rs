//! Rules for text that people write and others read: which characters show nothing
//! (a message of nothing else is empty), which can disguise a name (control and
//! bidirectional formatting characters), and the one validator of names shown to
//! others (an officer's display name, a customer's name from an identity token). Pure
//! functions; who may write what is decided elsewhere.

use crate::error::{Error, Result};

/// Longest name shown to others, in characters.
pub(crate) const MAX_NAME_CHARS: usize = 100;

/// Whether `c` shows nothing by itself: whitespace, control characters, and the format
/// and default-ignorable characters (the soft hyphen, zero-width spaces and joiners,
/// bidirectional controls, invisible operators, variation selectors, fillers, tags, the
/// byte order mark) and the blank Braille pattern.
pub(crate) fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFF8}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E0FFF}'
        )
}

/// Whether `c` must not appear in a name shown to others: control characters (line
/// breaks included), the line and paragraph separators, and the characters that change
/// the direction of the text around them (marks, embeddings, overrides, isolates), with
/// which a name can be made to read as another.
pub(crate) fn is_disguising(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// Validates a name shown to others. Surrounding whitespace is trimmed; a name of
/// nothing visible counts as none; otherwise it must be at most [`MAX_NAME_CHARS`]
/// characters with no [disguising](is_disguising) character, else
/// [`Error::InvalidField`] naming `field`.
pub(crate) fn shown_name(field: &'static str, raw: Option<&str>) -> Result<Option<String>> {
    let Some(name) = raw.map(str::trim) else {
        return Ok(None);
    };
    if name.chars().all(is_invisible) {
        return Ok(None);
    }
    if name.chars().any(is_disguising) {
        return Err(Error::InvalidField {
            name: field,
            reason: "must not contain control or bidirectional formatting characters".into(),
        });
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(Error::InvalidField {
            name: field,
            reason: format!("must be at most {MAX_NAME_CHARS} characters"),
        });
    }
    Ok(Some(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_characters_are_the_blank_and_the_formatting_ones() {
        for c in [
            ' ', '\t', '\n', '\u{3000}', '\u{200B}', '\u{200D}', '\u{FEFF}', '\u{AD}',
        ] {
            assert!(is_invisible(c), "{c:?}");
        }
        for c in ['a', '.', 'é', '🙂', '\u{5D0}'] {
            assert!(!is_invisible(c), "{c:?}");
        }
    }

    #[test]
    fn names_refuse_what_could_disguise_them() {
        assert_eq!(shown_name("name", None).unwrap(), None);
        assert_eq!(shown_name("name", Some(" \u{200B} ")).unwrap(), None);
        assert_eq!(
            shown_name("name", Some("  Zoë Ö'Brien "))
                .unwrap()
                .as_deref(),
            Some("Zoë Ö'Brien")
        );
        for bad in ["Ali\u{202E}ecila", "Bob\nAdmin", "x\u{2066}y", "a\u{0}"] {
            let e = shown_name("displayName", Some(bad)).unwrap_err();
            assert_eq!(e.code(), "invalid_field");
            assert!(e.to_string().starts_with("displayName:"), "{e}");
        }
        assert!(shown_name("name", Some(&"é".repeat(101))).is_err());
        assert!(shown_name("name", Some(&"é".repeat(100))).is_ok());
    }
}
