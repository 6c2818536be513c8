//! Byte-level BPE as llama.cpp's `llm_tokenizer_bpe_session`: each pre-tokenized word is split
//! into UTF-8 characters and the adjacent pair with the lowest merge rank (leftmost on ties) is
//! merged until no ranked pair remains; pieces that are not tokens fall back to single-byte
//! tokens.

use super::pre_patterns::PreType;
use super::unicode::utf8_len;
use super::vocab::Vocab;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

#[derive(Clone, Copy)]
struct Sym {
    prev: isize,
    next: isize,
    start: usize,
    n: usize,
}

/// Appends the tokens of the words (already pre-tokenized) to `out`.
pub(crate) fn tokenize(vocab: &Vocab, words: &[Vec<u8>], byte_encoded: bool, out: &mut Vec<u32>) {
    let mut key = Vec::new();
    let mut syms: Vec<Sym> = Vec::new();
    // (rank, left) min-heap; the right index and the pair's length identify stale entries
    let mut heap: BinaryHeap<Reverse<(u32, usize, usize, usize)>> = BinaryHeap::new();
    for word in words {
        syms.clear();
        heap.clear();
        let mut offset = 0;
        // a word that is a token is kept whole with ignore_merges, and newline runs for Gemma 4
        let whole = vocab.ignore_merges
            || (vocab.pre_type == PreType::Gemma4 && word.iter().all(|&c| c == b'\n'));
        if whole && vocab.text_to_token(word).is_some() {
            syms.push(Sym {
                prev: -1,
                next: -1,
                start: 0,
                n: word.len(),
            });
            offset = word.len();
        }
        while offset < word.len() {
            let n = utf8_len(word[offset]).min(word.len() - offset);
            let idx = syms.len() as isize;
            offset += n;
            syms.push(Sym {
                prev: idx - 1,
                next: if offset == word.len() { -1 } else { idx + 1 },
                start: offset - n,
                n,
            });
        }
        let add =
            |syms: &[Sym], heap: &mut BinaryHeap<_>, key: &mut Vec<u8>, l: isize, r: isize| {
                if l < 0 || r < 0 {
                    return;
                }
                let (a, b) = (syms[l as usize], syms[r as usize]);
                let lt = &word[a.start..a.start + a.n];
                let rt = &word[b.start..b.start + b.n];
                if let Some(rank) = vocab.bpe_rank(lt, rt, key) {
                    heap.push(Reverse((rank, l as usize, r as usize, a.n + b.n)));
                }
            };
        for i in 1..syms.len() {
            add(&syms, &mut heap, &mut key, i as isize - 1, i as isize);
        }
        while let Some(Reverse((_, left, right, size))) = heap.pop() {
            let (l, r) = (syms[left], syms[right]);
            // llama.cpp compares the texts: the pair is current when both symbols are alive,
            // adjacent and of the recorded total length (symbols only grow to the right)
            if l.n == 0 || r.n == 0 || l.next != right as isize || l.n + r.n != size {
                continue;
            }
            syms[left].n += r.n;
            syms[right].n = 0;
            syms[left].next = r.next;
            if r.next >= 0 {
                syms[r.next as usize].prev = left as isize;
            }
            let (p, nx) = (syms[left].prev, syms[left].next);
            add(&syms, &mut heap, &mut key, p, left as isize);
            add(&syms, &mut heap, &mut key, left as isize, nx);
        }
        for s in syms.iter().filter(|s| s.n > 0) {
            let piece = &word[s.start..s.start + s.n];
            match vocab.text_to_token(piece) {
                Some(id) => out.push(id),
                None => {
                    for &b in piece {
                        let id = if byte_encoded {
                            vocab.text_to_token(&[b])
                        } else {
                            vocab.text_to_token(format!("<0x{b:02X}>").as_bytes())
                        };
                        if let Some(id) = id {
                            out.push(id);
                        }
                    }
                }
            }
        }
    }
}
