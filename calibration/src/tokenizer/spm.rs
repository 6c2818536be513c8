//! SentencePiece tokenization as llama.cpp's `llm_tokenizer_spm_session`: split into UTF-8
//! characters, repeatedly merge the adjacent pair whose concatenation is the highest-scoring
//! vocabulary token (leftmost first on ties), then emit each piece as its token or, failing
//! that, as byte-fallback tokens.

use super::unicode::utf8_len;
use super::vocab::Vocab;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

#[derive(Clone, Copy)]
struct Sym {
    prev: isize,
    next: isize,
    start: usize,
    n: usize,
}

struct Bigram {
    left: usize,
    right: usize,
    score: f32,
    size: usize,
}

impl PartialEq for Bigram {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Bigram {
    /// Higher score first, then the leftmost pair.
    fn cmp(&self, o: &Self) -> Ordering {
        self.score
            .total_cmp(&o.score)
            .then_with(|| o.left.cmp(&self.left))
    }
}

/// Byte-fallback token for `b`: `<0xXX>`, else the byte itself as a token (`byte_to_token`).
pub(crate) fn byte_token(vocab: &Vocab, b: u8) -> Option<u32> {
    let hex = format!("<0x{b:02X}>");
    vocab
        .text_to_token(hex.as_bytes())
        .or_else(|| vocab.text_to_token(&[b]))
}

/// Whether no token of `vocab` contains U+2581 right after another character than U+2581: then
/// no merge can cross the start of a run of escaped spaces, and each word can be merged on its
/// own (same result, much smaller work queues).
pub(crate) fn words_are_independent(vocab: &Vocab) -> bool {
    let sp = "\u{2581}".as_bytes();
    vocab.tokens.iter().all(|t| {
        let x = &t.text;
        (1..x.len()).all(|i| !x[i..].starts_with(sp) || x[..i].ends_with(sp))
    })
}

/// Appends the tokens of `text` (already space-escaped) to `out`.
pub(crate) fn tokenize(vocab: &Vocab, text: &[u8], out: &mut Vec<u32>) {
    let mut work = Work::default();
    if !vocab.spm_words_independent {
        work.run(vocab, text, out);
        return;
    }
    let sp = "\u{2581}".as_bytes();
    let mut start = 0;
    let mut i = 1;
    while i < text.len() {
        if text[i..].starts_with(sp) && !text[..i].ends_with(sp) {
            work.run(vocab, &text[start..i], out);
            start = i;
            i += sp.len();
        } else {
            i += 1;
        }
    }
    work.run(vocab, &text[start..], out);
}

/// Reusable buffers of one tokenization.
#[derive(Default)]
struct Work {
    syms: Vec<Sym>,
    heap: BinaryHeap<Bigram>,
}

impl Work {
    fn run(&mut self, vocab: &Vocab, text: &[u8], out: &mut Vec<u32>) {
        if text.is_empty() {
            return;
        }
        let syms = &mut self.syms;
        let heap = &mut self.heap;
        syms.clear();
        heap.clear();
        let mut offs = 0;
        while offs < text.len() {
            let n = utf8_len(text[offs]).min(text.len() - offs);
            let idx = syms.len() as isize;
            offs += n;
            syms.push(Sym {
                prev: idx - 1,
                next: if offs == text.len() { -1 } else { idx + 1 },
                start: offs - n,
                n,
            });
        }
        let try_add = |syms: &[Sym], heap: &mut BinaryHeap<Bigram>, left: isize, right: isize| {
            if left < 0 || right < 0 {
                return;
            }
            let (l, r) = (syms[left as usize], syms[right as usize]);
            let piece = &text[l.start..l.start + l.n + r.n];
            if let Some(id) = vocab.text_to_token(piece) {
                heap.push(Bigram {
                    left: left as usize,
                    right: right as usize,
                    score: vocab.tokens[id as usize].score,
                    size: piece.len(),
                });
            }
        };
        for i in 1..syms.len() {
            try_add(syms, heap, i as isize - 1, i as isize);
        }
        while let Some(bg) = heap.pop() {
            let (l, r) = (syms[bg.left], syms[bg.right]);
            if l.n == 0 || r.n == 0 || l.n + r.n != bg.size {
                continue;
            }
            syms[bg.left].n += r.n;
            syms[bg.right].n = 0;
            syms[bg.left].next = r.next;
            if r.next >= 0 {
                syms[r.next as usize].prev = bg.left as isize;
            }
            let (prev, next) = (syms[bg.left].prev, syms[bg.left].next);
            try_add(syms, heap, prev, bg.left as isize);
            try_add(syms, heap, bg.left as isize, next);
        }
        let mut i: isize = 0;
        while i != -1 {
            let s = syms[i as usize];
            let piece = &text[s.start..s.start + s.n];
            match vocab.text_to_token(piece) {
                Some(id) => out.push(id),
                // A piece that is not a token is a single character that was never merged
                // (merged pieces are tokens by construction), so llama.cpp's re-segmentation map
                // never applies and it falls back to bytes.
                None => {
                    for &b in piece {
                        // llama.cpp throws when a byte has no token; emit unk instead
                        if let Some(id) = byte_token(vocab, b).or(vocab.unk) {
                            out.push(id);
                        }
                    }
                }
            }
            i = s.next;
        }
    }
}
