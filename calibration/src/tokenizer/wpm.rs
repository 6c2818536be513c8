//! WordPiece (BERT) tokenization as llama.cpp's `llm_tokenizer_wpm_session`: normalize
//! (lowercase, drop accents after a first-code-point NFD, drop control characters), split on
//! whitespace and around punctuation, ASCII symbols and CJK ideographs, then cover each word,
//! prefixed with U+2581, by greedy longest-match tokens; a word that cannot be covered becomes
//! the unknown token.

use super::unicode::{cpts_from_utf8, flags, nfd_base, push_utf8, to_lower};
use super::vocab::Vocab;

fn is_chinese_char(c: u32) -> bool {
    // llama.cpp's (and HF's) ranges, including the 0x2B920 start of extension E
    (0x4E00..=0x9FFF).contains(&c)
        || (0x3400..=0x4DBF).contains(&c)
        || (0x20000..=0x2A6DF).contains(&c)
        || (0x2A700..=0x2B73F).contains(&c)
        || (0x2B740..=0x2B81F).contains(&c)
        || (0x2B920..=0x2CEAF).contains(&c)
        || (0xF900..=0xFAFF).contains(&c)
        || (0x2F800..=0x2FA1F).contains(&c)
}

/// The normalized words of `text`.
fn preprocess(text: &[u8], lowercase: bool, strip_accents: bool) -> Vec<Vec<u8>> {
    let mut words: Vec<Vec<u8>> = vec![Vec::new()];
    for mut c in cpts_from_utf8(text) {
        if strip_accents {
            c = nfd_base(c);
        }
        let f = flags(c);
        if f.is_whitespace() {
            if !words.last().is_some_and(|w| w.is_empty()) {
                words.push(Vec::new());
            }
            continue;
        }
        if c == 0 || c == 0xFFFD || f.is_control() {
            continue;
        }
        if strip_accents && f.is_accent_mark() {
            continue;
        }
        let mut s = Vec::new();
        push_utf8(if lowercase { to_lower(c) } else { c }, &mut s);
        if f.is_punctuation() || (c < 0x7F && f.is_symbol()) || is_chinese_char(c) {
            if !words.last().is_some_and(|w| w.is_empty()) {
                words.push(Vec::new());
            }
            if let Some(last) = words.last_mut() {
                *last = s;
            }
            words.push(Vec::new());
        } else if let Some(last) = words.last_mut() {
            last.extend_from_slice(&s);
        }
    }
    if words.last().is_some_and(|w| w.is_empty()) {
        words.pop();
    }
    words
}

/// Appends the tokens of `text` to `out`.
pub(crate) fn tokenize(vocab: &Vocab, text: &[u8], out: &mut Vec<u32>) {
    let max_len = vocab.max_token_len;
    for word in preprocess(text, vocab.lowercase, vocab.strip_accents) {
        if word.is_empty() {
            continue;
        }
        let mut w1 = "\u{2581}".as_bytes().to_vec();
        w1.extend_from_slice(&word);
        let n = w1.len();
        let before = out.len();
        let mut i = 0;
        while i < n {
            let mut matched = false;
            let mut j = n.min(i + max_len + 1);
            while j > i {
                if let Some(id) = vocab.text_to_token(&w1[i..j]) {
                    out.push(id);
                    matched = true;
                    i = j - 1;
                    break;
                }
                j -= 1;
            }
            if !matched {
                out.truncate(before);
                break;
            }
            i += 1;
        }
        if out.len() == before {
            // llama.cpp pushes the unknown id even when there is none (-1); we skip it then
            out.extend(vocab.unk);
        }
    }
}
