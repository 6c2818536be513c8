//! `--tensor-type` name patterns: llama-quantize compiles them with `std::regex` (ECMAScript
//! grammar, `char` traits, "C" locale) and tests them with `std::regex_search`. qforge
//! compiles them with Rust's `regex` crate on bytes, with Unicode off.
//!
//! The two engines agree on what users write in practice: literals, `.`, `*`, `+`, `?`,
//! `{n}`, `{n,}`, `{n,m}` (and their lazy forms), `|`, `(...)`, `(?:...)`, `^`, `$`, `[...]`,
//! `[^...]`, ranges, `[[:alpha:]]`-style classes, `\d`, `\s`, `\w`, `\b`, `\f`, `\n`, `\r`, `\t`,
//! `\v`, `\xhh`, `\uhhhh` and escaped punctuation. Two differences are bridged: ECMAScript's
//! `.` does not match `\r` (translated to `[^\n\r]`), and `\s`/`\w`/`\d` are ASCII in both
//! once Unicode is off.
//!
//! Everything else is refused with [`OverrideError::UnsupportedPattern`] rather than risk a
//! silent difference: back-references and `\0`, lookahead `(?=`/`(?!` (unsupported by Rust),
//! any other `(?...)` group (Rust-only), `\c`, `\<`, `\>` and escaped letters outside the list
//! above, `[]` and `[^]` (ECMAScript's empty and any-character classes), nested `[` and the set
//! operators `&&`, `--`, `~~` inside classes (Rust-only), `{,m}` (Rust-only) and `\b` inside a
//! class (backspace in ECMAScript). A pattern Rust cannot parse is refused with
//! [`OverrideError::InvalidPattern`], as llama-quantize fails on patterns `std::regex` rejects.

use super::error::OverrideError;
use regex::bytes::{Regex, RegexBuilder};

/// The POSIX class names both engines know.
const POSIX_CLASSES: [&str; 12] = [
    "alnum", "alpha", "blank", "cntrl", "digit", "graph", "lower", "print", "punct", "space",
    "upper", "xdigit",
];

/// Compiles an (already lower-cased) pattern for `regex_search`-style matching.
pub(crate) fn compile(pattern: &str) -> Result<Regex, OverrideError> {
    let translated = translate(pattern)?;
    RegexBuilder::new(&translated)
        .unicode(false)
        .build()
        .map_err(|e| OverrideError::InvalidPattern {
            pattern: pattern.to_owned(),
            reason: e.to_string(),
        })
}

fn unsupported(pattern: &str, reason: impl Into<String>) -> OverrideError {
    OverrideError::UnsupportedPattern {
        pattern: pattern.to_owned(),
        reason: reason.into(),
    }
}

fn hex_digits(b: &[u8], n: usize) -> bool {
    b.len() >= n && b[..n].iter().all(u8::is_ascii_hexdigit)
}

/// Checks that `pattern` stays inside the common subset and rewrites `.` to ECMAScript's
/// meaning. Works on bytes; everything it copies is copied unchanged.
fn translate(pattern: &str) -> Result<String, OverrideError> {
    let b = pattern.as_bytes();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut in_class = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\\' {
            if i + 1 == b.len() {
                // a trailing backslash: both engines reject it; let Rust say so
                out.push('\\');
                i += 1;
                continue;
            }
            let len = escape_len(pattern, &b[i + 1..], in_class)?;
            out.push_str(&pattern[i..i + 1 + len]);
            i += 1 + len;
            continue;
        }
        if in_class {
            match c {
                b']' => in_class = false,
                b'[' => {
                    let rest = &pattern[i..];
                    let name = rest
                        .strip_prefix("[:")
                        .and_then(|r| r.find(":]").map(|end| &r[..end]))
                        .filter(|n| POSIX_CLASSES.contains(n));
                    match name {
                        Some(n) => {
                            let len = n.len() + 4;
                            out.push_str(&pattern[i..i + len]);
                            i += len;
                            continue;
                        }
                        None => return Err(unsupported(pattern, "'[' inside a character class")),
                    }
                }
                b'&' | b'-' | b'~' if b.get(i + 1) == Some(&c) => {
                    return Err(unsupported(
                        pattern,
                        "class set operators (&&, --, ~~) exist only in Rust regex",
                    ));
                }
                _ => {}
            }
            push_byte(&mut out, pattern, i);
            i += 1;
            continue;
        }
        match c {
            b'[' => {
                let mut j = i + 1;
                if b.get(j) == Some(&b'^') {
                    j += 1;
                }
                if b.get(j) == Some(&b']') {
                    return Err(unsupported(
                        pattern,
                        "'[]' and '[^]' are empty/any classes in ECMAScript but not in Rust regex",
                    ));
                }
                out.push_str(&pattern[i..j]);
                in_class = true;
                i = j;
            }
            b'(' if b.get(i + 1) == Some(&b'?') => {
                if b.get(i + 2) != Some(&b':') {
                    return Err(unsupported(
                        pattern,
                        "only '(?:' groups are supported (no lookahead, no inline flags or named groups)",
                    ));
                }
                out.push_str("(?:");
                i += 3;
            }
            b'{' if b.get(i + 1) == Some(&b',') => {
                return Err(unsupported(
                    pattern,
                    "'{,n}' repetitions exist only in Rust regex",
                ));
            }
            b'.' => {
                out.push_str("[^\\n\\r]");
                i += 1;
            }
            _ => {
                push_byte(&mut out, pattern, i);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Copies the character starting at byte `i` (whole, for multi-byte UTF-8); the continuation
/// bytes of a multi-byte character copy nothing.
fn push_byte(out: &mut String, pattern: &str, i: usize) {
    if pattern.is_char_boundary(i) {
        if let Some(ch) = pattern[i..].chars().next() {
            out.push(ch);
        }
    }
}

/// The length of the escape after a backslash (`rest` starts after it), or why it is refused.
fn escape_len(pattern: &str, rest: &[u8], in_class: bool) -> Result<usize, OverrideError> {
    let e = rest[0];
    match e {
        b'd' | b's' | b'w' | b'f' | b'n' | b'r' | b't' | b'v' => Ok(1),
        b'b' if !in_class => Ok(1),
        b'b' => Err(unsupported(
            pattern,
            "'\\b' in a class is a backspace in ECMAScript only",
        )),
        b'x' if hex_digits(&rest[1..], 2) => Ok(3),
        b'u' if hex_digits(&rest[1..], 4) => Ok(5),
        b'x' | b'u' => Err(unsupported(
            pattern,
            "'\\x' needs 2 and '\\u' 4 hex digits in ECMAScript",
        )),
        b'0'..=b'9' => Err(unsupported(
            pattern,
            "back-references and '\\0' are not supported",
        )),
        b'<' | b'>' => Err(unsupported(
            pattern,
            "'\\<' and '\\>' are word boundaries in Rust regex only",
        )),
        _ if e.is_ascii_alphabetic() => Err(unsupported(
            pattern,
            format!(
                "the escape '\\{}' differs between std::regex and Rust regex",
                e as char
            ),
        )),
        _ if e.is_ascii() => Ok(1),
        // a non-ASCII character after '\': copy the whole character; Rust decides
        _ => Ok(std::str::from_utf8(rest)
            .ok()
            .and_then(|s| s.chars().next())
            .map_or(1, char::len_utf8)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(pattern: &str, name: &str) -> bool {
        compile(pattern).unwrap().is_match(name.as_bytes())
    }

    #[test]
    fn common_patterns_search_anywhere_in_the_name() {
        assert!(search("attn_v", "blk.3.attn_v.weight"));
        assert!(search("blk\\.1[0-9]\\.ffn_down", "blk.12.ffn_down.weight"));
        assert!(!search("blk\\.1[0-9]\\.ffn_down", "blk.1.ffn_down.weight"));
        assert!(search(
            "^blk\\.(0|1)\\.attn_(q|k)\\.weight$",
            "blk.1.attn_k.weight"
        ));
        assert!(!search("^attn_q", "blk.1.attn_q.weight"));
        assert!(search("ffn_(?:up|gate)_exps", "blk.0.ffn_gate_exps.weight"));
        assert!(search(
            "blk\\.\\d+\\.attn_[[:alpha:]]\\b",
            "blk.7.attn_v.weight"
        ));
        assert!(search("ffn_down.{0,5}weight", "blk.7.ffn_down.weight"));
    }

    #[test]
    fn escaped_punctuation_and_space_are_literals() {
        assert!(search("ffn\\-down\\ x", "ffn-down x"));
        assert!(search("a\\.b\\/c\\#d\\~e\\=f", "a.b/c#d~e=f"));
    }

    #[test]
    fn dot_does_not_match_carriage_return() {
        assert!(!search("a.b", "a\rb"));
        assert!(!search("a.b", "a\nb"));
        assert!(search("a.b", "a-b"));
    }

    #[test]
    fn constructs_outside_the_common_subset_are_refused() {
        for p in [
            "(attn)\\1",
            "a(?=b)",
            "a(?!b)",
            "(?i)attn",
            "(?p<x>a)",
            "\\<attn",
            "[]a]",
            "[^]",
            "[a[b]]",
            "[a&&b]",
            "a{,3}",
            "\\a",
            "\\z",
            "\\cm",
            "[\\b]",
            "\\x4",
        ] {
            assert!(
                matches!(compile(p), Err(OverrideError::UnsupportedPattern { .. })),
                "{p} should be refused"
            );
        }
    }

    #[test]
    fn invalid_patterns_are_errors() {
        for p in ["attn_(v", "*a", "a{2", "[a-"] {
            assert!(compile(p).is_err(), "{p} should not compile");
        }
    }
}
