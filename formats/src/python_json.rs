//! JSON as Python's `json` module writes it: the same, except that non-finite floats come out as the bare
//! words `NaN`, `Infinity` and `-Infinity`, which JSON does not allow. Hugging Face configs carry them (Mamba-2
//! and Nemotron-H configs have `"time_step_limit": [0.0, Infinity]`), and a strict parser refuses the whole
//! file. [`parse`] reads such text with those words taken as `null`: no field a fingerprint uses is a
//! non-finite float.

use serde::de::DeserializeOwned;

/// The bare words Python writes for non-finite floats, longest first (`-Infinity` before `Infinity`).
const NON_FINITE: [&str; 3] = ["-Infinity", "Infinity", "NaN"];

/// Parse JSON text strictly; if that fails and the text has non-finite words outside strings, parse it again
/// with each of them replaced by `null`, and report that parse's error if it fails too (its line is the
/// file's; see [`non_finite_as_null`] for columns).
pub fn parse<T: DeserializeOwned>(text: &str) -> serde_json::Result<T> {
    serde_json::from_str(text).or_else(|strict| match non_finite_as_null(text) {
        Some(fixed) => serde_json::from_str(&fixed),
        None => Err(strict),
    })
}

/// `text` with every `NaN`, `Infinity` and `-Infinity` outside a string (and not part of a longer word)
/// replaced by `null`, or `None` if there is none. The infinities are padded with spaces to their length, so
/// columns stay those of the file except after a `NaN` (one further) on the same line.
pub fn non_finite_as_null(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let is_word_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut out = String::new();
    let (mut copied, mut i) = (0, 0);
    let (mut in_string, mut escaped) = (false, false);
    'scan: while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
        } else if i == 0 || !is_word_byte(bytes[i - 1]) {
            for word in NON_FINITE {
                let end = i + word.len();
                let whole = bytes[i..].starts_with(word.as_bytes())
                    && bytes.get(end).is_none_or(|&next| !is_word_byte(next));
                if whole {
                    // `i` and `end` sit on ASCII bytes, so both are character boundaries.
                    out.push_str(&text[copied..i]);
                    out.push_str("null");
                    out.extend(std::iter::repeat_n(' ', word.len().saturating_sub(4)));
                    (copied, i) = (end, end);
                    continue 'scan;
                }
            }
        }
        i += 1;
    }
    if copied == 0 {
        return None;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn non_finite_words_outside_strings_become_null() {
        let text = r#"{"time_step_limit": [0.0, Infinity], "a": -Infinity, "b":NaN, "s": "NaN Infinity \" NaN"}"#;
        let v: Value = parse(text).unwrap();
        assert_eq!(
            v,
            json!({"time_step_limit": [0.0, null], "a": null, "b": null, "s": "NaN Infinity \" NaN"})
        );
        assert_eq!(
            non_finite_as_null(r#"{"NaN": 1, "x": "\\", "y": NaN, "z": -Infinity}"#).unwrap(),
            r#"{"NaN": 1, "x": "\\", "y": null, "z": null     }"#
        );
        assert_eq!(non_finite_as_null(r#"{"a": 1}"#), None);
        assert_eq!(non_finite_as_null("NaNa"), None, "part of a longer word");
        assert_eq!(non_finite_as_null("xNaN"), None, "part of a longer word");
    }

    #[test]
    fn other_errors_are_reported_where_the_file_has_them() {
        let e = parse::<Value>("{\"a\": Infinity,, }")
            .unwrap_err()
            .to_string();
        let strict = serde_json::from_str::<Value>("{\"a\": 1.00e300,, }")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e, strict,
            "same place as with a finite number of the same length"
        );
        assert!(parse::<Value>("[Infinity").is_err());
        let e = serde_json::from_str::<Value>("[]x")
            .unwrap_err()
            .to_string();
        assert_eq!(
            parse::<Value>("[]x").unwrap_err().to_string(),
            e,
            "no non-finite word: strict error"
        );
    }
}
