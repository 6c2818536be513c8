//! Special-token partitioning (`tokenizer_st_partition`): the text is cut at every occurrence of
//! each special token's text, longest tokens first, into raw-text fragments and token fragments.
//! Control and unknown tokens take part only when special parsing is on; user-defined tokens
//! always do. A token with the LSTRIP (RSTRIP) attribute swallows the whitespace to its left
//! (right).

use super::vocab::{attr, Vocab};

/// A piece of the input: raw text `[start, end)` or a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fragment {
    Text(usize, usize),
    Token(u32),
}

/// C `isspace` in the "C" locale.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

/// Splits `text` into fragments.
pub(crate) fn partition(vocab: &Vocab, text: &[u8], parse_special: bool) -> Vec<Fragment> {
    let mut frags = vec![Fragment::Text(0, text.len())];
    let mut next = Vec::new();
    for &id in &vocab.special_cache {
        let data = &vocab.tokens[id as usize];
        if !parse_special && data.attr & (attr::CONTROL | attr::UNKNOWN) != 0 {
            continue;
        }
        let tok = data.text.as_slice();
        let finder = memchr::memmem::Finder::new(tok);
        let mut changed = false;
        next.clear();
        for &f in &frags {
            let Fragment::Text(start, end) = f else {
                next.push(f);
                continue;
            };
            let (mut base, stop) = (start, end);
            loop {
                let Some(rel) = finder.find(&text[base..stop]) else {
                    if base < stop {
                        next.push(Fragment::Text(base, stop));
                    }
                    break;
                };
                changed = true;
                let m = base + rel;
                if m > base {
                    let mut left_end = m;
                    if data.attr & attr::LSTRIP != 0 {
                        while left_end > base && is_space(text[left_end - 1]) {
                            left_end -= 1;
                        }
                    }
                    if left_end > base {
                        next.push(Fragment::Text(base, left_end));
                    }
                }
                next.push(Fragment::Token(id));
                let mut right = m + tok.len();
                if right >= stop {
                    break;
                }
                if data.attr & attr::RSTRIP != 0 {
                    while right < stop && is_space(text[right]) {
                        right += 1;
                    }
                }
                base = right;
            }
        }
        if changed {
            std::mem::swap(&mut frags, &mut next);
        }
    }
    frags
}
