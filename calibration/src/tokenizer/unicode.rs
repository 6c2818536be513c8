//! Code-point classification and byte/UTF-8 helpers with llama.cpp's `unicode.cpp` semantics.
//!
//! The pre-tokenizers classify code points with llama.cpp's own category table (not the Rust
//! standard library's, whose Unicode version may differ), so the word boundaries match.

use super::unicode_table::{CATEGORY_RANGES, LOWERCASE, NFD_RANGES};
use std::sync::OnceLock;

/// Category flags of one code point (llama.cpp's `unicode_cpt_flags`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CptFlags(pub u16);

impl CptFlags {
    pub const UNDEFINED: u16 = 0x0001;
    pub const NUMBER: u16 = 0x0002;
    pub const LETTER: u16 = 0x0004;
    pub const ACCENT_MARK: u16 = 0x0010;
    pub const PUNCTUATION: u16 = 0x0020;
    pub const SYMBOL: u16 = 0x0040;
    pub const CONTROL: u16 = 0x0080;
    pub const WHITESPACE: u16 = 0x0100;

    pub fn is_number(self) -> bool {
        self.0 & Self::NUMBER != 0
    }
    pub fn is_letter(self) -> bool {
        self.0 & Self::LETTER != 0
    }
    pub fn is_accent_mark(self) -> bool {
        self.0 & Self::ACCENT_MARK != 0
    }
    pub fn is_punctuation(self) -> bool {
        self.0 & Self::PUNCTUATION != 0
    }
    pub fn is_symbol(self) -> bool {
        self.0 & Self::SYMBOL != 0
    }
    pub fn is_control(self) -> bool {
        self.0 & Self::CONTROL != 0
    }
    pub fn is_whitespace(self) -> bool {
        self.0 & Self::WHITESPACE != 0
    }
    /// The category bits alone (`category_flag()`).
    pub fn category(self) -> u16 {
        self.0 & 0x00FF
    }
    /// Whether any flag is set (`as_uint() != 0`); false only outside the text.
    pub fn any(self) -> bool {
        self.0 != 0
    }
}

/// White_Space code points, as llama.cpp's `unicode_set_whitespace`.
const WHITESPACE: [u32; 25] = [
    0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004,
    0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000,
];

const MAX_CODEPOINTS: usize = 0x110000;

fn table() -> &'static [u16] {
    static TABLE: OnceLock<Vec<u16>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = vec![CptFlags::UNDEFINED; MAX_CODEPOINTS];
        for w in CATEGORY_RANGES.windows(2) {
            let (lo, flags) = w[0];
            let hi = (w[1].0 as usize).min(MAX_CODEPOINTS);
            for f in &mut t[lo as usize..hi] {
                *f = flags as u16;
            }
        }
        for &c in &WHITESPACE {
            t[c as usize] |= CptFlags::WHITESPACE;
        }
        t
    })
}

/// The flags of code point `cpt` (UNDEFINED past the Unicode range).
pub(crate) fn flags(cpt: u32) -> CptFlags {
    CptFlags(
        table()
            .get(cpt as usize)
            .copied()
            .unwrap_or(CptFlags::UNDEFINED),
    )
}

/// The simple lowercase of `cpt` (`unicode_tolower`).
pub(crate) fn to_lower(cpt: u32) -> u32 {
    match LOWERCASE.binary_search_by_key(&cpt, |&(c, _)| c) {
        Ok(i) => LOWERCASE[i].1,
        Err(_) => cpt,
    }
}

/// The first code point of the canonical decomposition of `cpt`
/// (`unicode_cpts_normalize_nfd`, which keeps only that one).
pub(crate) fn nfd_base(cpt: u32) -> u32 {
    let i = NFD_RANGES.partition_point(|&(first, _, _)| first <= cpt);
    match i.checked_sub(1).map(|i| NFD_RANGES[i]) {
        Some((first, last, base)) if first <= cpt && cpt <= last => base,
        _ => cpt,
    }
}

/// The UTF-8 length implied by a lead byte (`unicode_len_utf8`).
pub(crate) fn utf8_len(lead: u8) -> usize {
    const LOOKUP: [usize; 16] = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4];
    LOOKUP[(lead >> 4) as usize]
}

/// Decodes bytes into code points the way `unicode_cpts_from_utf8` does: each invalid sequence
/// start becomes U+FFFD and decoding resumes at the next byte.
pub(crate) fn cpts_from_utf8(b: &[u8]) -> Vec<u32> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let cont = |j: usize| j < b.len() && b[j] & 0xC0 == 0x80;
    while i < b.len() {
        let c = b[i];
        if c & 0x80 == 0 {
            out.push(c as u32);
            i += 1;
        } else if c & 0x40 == 0 {
            out.push(0xFFFD);
            i += 1;
        } else if c & 0x20 == 0 {
            if cont(i + 1) {
                out.push(((c as u32 & 0x1F) << 6) | (b[i + 1] as u32 & 0x3F));
                i += 2;
            } else {
                out.push(0xFFFD);
                i += 1;
            }
        } else if c & 0x10 == 0 {
            if cont(i + 1) && cont(i + 2) {
                out.push(
                    ((c as u32 & 0x0F) << 12)
                        | ((b[i + 1] as u32 & 0x3F) << 6)
                        | (b[i + 2] as u32 & 0x3F),
                );
                i += 3;
            } else {
                out.push(0xFFFD);
                i += 1;
            }
        } else if c & 0x08 == 0 {
            if cont(i + 1) && cont(i + 2) && cont(i + 3) {
                out.push(
                    ((c as u32 & 0x07) << 18)
                        | ((b[i + 1] as u32 & 0x3F) << 12)
                        | ((b[i + 2] as u32 & 0x3F) << 6)
                        | (b[i + 3] as u32 & 0x3F),
                );
                i += 4;
            } else {
                out.push(0xFFFD);
                i += 1;
            }
        } else {
            out.push(0xFFFD);
            i += 1;
        }
    }
    out
}

/// Appends the UTF-8 encoding of `cpt` (`unicode_cpt_to_utf8`; code points past U+10FFFF,
/// which the decoder never produces, are skipped).
pub(crate) fn push_utf8(cpt: u32, out: &mut Vec<u8>) {
    if cpt <= 0x7F {
        out.push(cpt as u8);
    } else if cpt <= 0x7FF {
        out.extend_from_slice(&[0xC0 | ((cpt >> 6) & 0x1F) as u8, 0x80 | (cpt & 0x3F) as u8]);
    } else if cpt <= 0xFFFF {
        out.extend_from_slice(&[
            0xE0 | ((cpt >> 12) & 0x0F) as u8,
            0x80 | ((cpt >> 6) & 0x3F) as u8,
            0x80 | (cpt & 0x3F) as u8,
        ]);
    } else if cpt <= 0x10FFFF {
        out.extend_from_slice(&[
            0xF0 | ((cpt >> 18) & 0x07) as u8,
            0x80 | ((cpt >> 12) & 0x3F) as u8,
            0x80 | ((cpt >> 6) & 0x3F) as u8,
            0x80 | (cpt & 0x3F) as u8,
        ]);
    }
}

/// GPT-2's byte-to-code-point map: printable Latin-1 bytes map to themselves, the rest to
/// U+0100 onwards in byte order.
fn byte_to_cpt_table() -> &'static [u32; 256] {
    static T: OnceLock<[u32; 256]> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = [0u32; 256];
        let mut n = 0;
        for b in 0..256u32 {
            let printable = (0x21..=0x7E).contains(&b)
                || (0xA1..=0xAC).contains(&b)
                || (0xAE..=0xFF).contains(&b);
            t[b as usize] = if printable {
                b
            } else {
                n += 1;
                255 + n
            };
        }
        t
    })
}

/// Appends the GPT-2 byte-level encoding of `bytes` (`unicode_byte_to_utf8` per byte).
pub(crate) fn byte_encode(bytes: &[u8], out: &mut Vec<u8>) {
    let t = byte_to_cpt_table();
    for &b in bytes {
        push_utf8(t[b as usize], out);
    }
}

/// The byte a GPT-2 byte-level code point stands for (`unicode_utf8_to_byte`), if any.
pub(crate) fn cpt_to_byte(cpt: u32) -> Option<u8> {
    static T: OnceLock<std::collections::HashMap<u32, u8>> = OnceLock::new();
    T.get_or_init(|| {
        byte_to_cpt_table()
            .iter()
            .enumerate()
            .map(|(b, &c)| (c, b as u8))
            .collect()
    })
    .get(&cpt)
    .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_follow_the_table() {
        assert!(flags('a' as u32).is_letter());
        assert!(flags('7' as u32).is_number());
        assert!(flags(' ' as u32).is_whitespace());
        assert!(flags(0x3000).is_whitespace());
        assert!(flags(0x0301).is_accent_mark());
        assert_eq!(flags('!' as u32).category(), CptFlags::PUNCTUATION);
        assert_eq!(flags('$' as u32).category(), CptFlags::SYMBOL);
    }

    #[test]
    fn gpt2_byte_map_round_trips() {
        let mut v = Vec::new();
        byte_encode(b" ", &mut v);
        assert_eq!(std::str::from_utf8(&v).unwrap(), "\u{120}");
        for b in 0..=255u8 {
            let c = byte_to_cpt_table()[b as usize];
            assert_eq!(cpt_to_byte(c), Some(b));
        }
    }

    #[test]
    fn invalid_utf8_becomes_replacement() {
        assert_eq!(
            cpts_from_utf8(&[0x61, 0xC3, 0x62]),
            vec![0x61, 0xFFFD, 0x62]
        );
        assert_eq!(cpts_from_utf8("é".as_bytes()), vec![0xE9]);
    }
}
