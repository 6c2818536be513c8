//! Unigram (T5) tokenization as llama.cpp's `llm_tokenizer_ugm_session`: normalize with the
//! SentencePiece precompiled character map (an XOR-compressed double array of replacement
//! prefixes), handle spaces, then pick the best-scoring segmentation with a Viterbi pass over a
//! trie of the vocabulary; runs of unknown characters collapse into one unknown token.

use super::unicode::utf8_len;
use super::vocab::{attr, FastMap, Vocab};

/// A byte trie: node 0 is the root.
#[derive(Debug, Default)]
struct Trie {
    edges: FastMap<(u32, u8), u32>,
    values: Vec<Option<u32>>,
}

impl Trie {
    fn new() -> Trie {
        Trie {
            edges: FastMap::default(),
            values: vec![None],
        }
    }
    fn insert(&mut self, key: &[u8], value: u32) {
        let mut node = 0u32;
        for &b in key {
            node = match self.edges.get(&(node, b)) {
                Some(&n) => n,
                None => {
                    let n = self.values.len() as u32;
                    self.values.push(None);
                    self.edges.insert((node, b), n);
                    n
                }
            };
        }
        self.values[node as usize] = Some(value);
    }
    fn child(&self, node: u32, b: u8) -> Option<u32> {
        self.edges.get(&(node, b)).copied()
    }
    /// How far `key` can be walked from the root (`naive_trie::get_longest_prefix`: the depth
    /// reached, whether or not a token ends there).
    fn walk_len(&self, key: &[u8]) -> usize {
        let mut node = 0;
        for (i, &b) in key.iter().enumerate() {
            match self.child(node, b) {
                Some(n) => node = n,
                None => return i,
            }
        }
        key.len()
    }
}

/// The precomputed state of a unigram tokenizer.
#[derive(Debug)]
pub(crate) struct Ugm {
    tokens: Trie,
    user_defined: Trie,
    xcda: Vec<u32>,
    replacements: Vec<u8>,
    unknown_score: f32,
}

impl Ugm {
    /// Builds the tries and splits the (validated) character map.
    pub fn new(vocab: &Vocab) -> Ugm {
        let mut xcda = Vec::new();
        let mut replacements = Vec::new();
        let cm = &vocab.charsmap;
        if cm.len() >= 4 {
            let blob = u32::from_le_bytes([cm[0], cm[1], cm[2], cm[3]]) as usize;
            let end = (4 + blob).min(cm.len());
            xcda = cm[4..end]
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            replacements = cm[end..].to_vec();
        }
        let mut tokens = Trie::new();
        let mut user_defined = Trie::new();
        let mut min_score = f32::MAX;
        for (id, t) in vocab.tokens.iter().enumerate() {
            if t.attr & attr::NORMAL != 0 {
                min_score = min_score.min(t.score);
            }
            if t.attr & (attr::NORMAL | attr::USER_DEFINED | attr::UNUSED) != 0 {
                tokens.insert(&t.text, id as u32);
            }
            if t.attr & attr::USER_DEFINED != 0 {
                user_defined.insert(&t.text, 0);
            }
        }
        Ugm {
            tokens,
            user_defined,
            xcda,
            replacements,
            unknown_score: min_score - 10.0,
        }
    }

    fn node(&self, i: usize) -> Option<u32> {
        self.xcda.get(i).copied()
    }

    /// The longest character-map match at the start of `input`: (consumed bytes, replacement
    /// offset). A map that points outside itself ends the match (llama.cpp throws there).
    fn charsmap_match(&self, input: &[u8]) -> Option<(usize, usize)> {
        if self.xcda.is_empty() {
            return None;
        }
        let base = |p: u32| (p >> 10) << ((p & (1 << 9)) >> 6);
        let mut best = None;
        let mut index = base(self.node(0)?) as usize;
        for (k, &c) in input.iter().enumerate() {
            if c == 0 {
                break;
            }
            index ^= c as usize;
            let p = self.node(index)?;
            if p & ((1 << 31) | 0xFF) != c as u32 {
                break;
            }
            let leaf = (p >> 8) & 1 == 1;
            index ^= base(p) as usize;
            if leaf {
                let v = self.node(index)?;
                best = Some((k + 1, (v & ((1 << 31) - 1)) as usize));
            }
        }
        best
    }

    /// `normalize_prefix`: (replacement bytes, consumed input bytes).
    fn normalize_prefix<'a>(&'a self, input: &'a [u8]) -> (&'a [u8], usize) {
        let ud = self.user_defined.walk_len(input);
        if ud > 0 {
            return (&input[..ud], ud);
        }
        if let Some((len, off)) = self.charsmap_match(input) {
            if let Some(rest) = self.replacements.get(off..) {
                if let Some(n) = rest.iter().position(|&b| b == 0) {
                    return (&rest[..n], len);
                }
            }
            // an out-of-range or unterminated replacement: llama.cpp throws; keep the byte
        }
        let n = valid_utf8_prefix(input);
        if n > 0 {
            (&input[..n], n)
        } else {
            ("\u{FFFD}".as_bytes(), 1)
        }
    }

    fn normalize(&self, vocab: &Vocab, input: &[u8]) -> Vec<u8> {
        let space: &[u8] = if vocab.escape_whitespaces {
            "\u{2581}".as_bytes()
        } else {
            b" "
        };
        let prepend = vocab.add_space_prefix;
        let merge = vocab.remove_extra_whitespaces;
        let mut out = Vec::with_capacity(input.len() * 3);
        let (mut space_prepended, mut in_word) = (false, false);
        let mut off = 0;
        while off < input.len() {
            let (rep, used) = self.normalize_prefix(&input[off..]);
            for &c in rep {
                if c != b' ' {
                    if !in_word {
                        in_word = true;
                        if (prepend && !space_prepended) || merge {
                            out.extend_from_slice(space);
                            space_prepended = true;
                        }
                    }
                    out.push(c);
                } else {
                    in_word = false;
                    if !merge {
                        out.extend_from_slice(space);
                    }
                }
            }
            off += used;
        }
        out
    }

    /// Appends the tokens of `text` to `out`.
    pub fn tokenize(&self, vocab: &Vocab, text: &[u8], out: &mut Vec<u32>) {
        let norm = self.normalize(vocab, text);
        let n = norm.len();
        if n == 0 {
            return;
        }
        let unk = vocab.unk;
        // (token, start offset, score)
        let mut best: Vec<(Option<u32>, usize, f64)> = vec![(unk, 0, f64::MIN); n + 1];
        best[0] = (unk, 0, 0.0);
        let mut i = 0;
        while i < n {
            let units = utf8_len(norm[i]).min(n - i);
            let cur = best[i].2;
            let mut single = false;
            let mut node = 0u32;
            for end in i + 1..=n {
                let Some(next) = self.tokens.child(node, norm[end - 1]) else {
                    break;
                };
                node = next;
                if let Some(id) = self.tokens.values[node as usize] {
                    if end - i == units {
                        single = true;
                    }
                    let t = &vocab.tokens[id as usize];
                    let score = if t.attr & attr::USER_DEFINED != 0 {
                        0.0
                    } else {
                        t.score as f64
                    };
                    if cur + score > best[end].2 {
                        best[end] = (Some(id), i, cur + score);
                    }
                }
            }
            if !single {
                let s = cur + self.unknown_score as f64;
                if s > best[i + units].2 {
                    best[i + units] = (unk, i, s);
                }
            }
            i += units;
        }
        let start = out.len();
        let mut prev_unknown = false;
        let mut at = n;
        loop {
            let (id, from, _) = best[at];
            let unknown = id == unk;
            if !(prev_unknown && unknown) {
                // llama.cpp pushes -1 when the vocabulary has no unknown token; we skip it
                out.extend(id);
            }
            if from == 0 {
                break;
            }
            prev_unknown = unknown;
            at = from;
        }
        out[start..].reverse();
    }
}

/// The length of the valid UTF-8 character at the start of `b` (`unicode_cpt_from_utf8`'s
/// checks: lead byte and continuation bytes only), or 0.
fn valid_utf8_prefix(b: &[u8]) -> usize {
    let c = b[0];
    let n = if c & 0x80 == 0 {
        return 1;
    } else if c & 0x40 == 0 {
        return 0;
    } else if c & 0x20 == 0 {
        2
    } else if c & 0x10 == 0 {
        3
    } else if c & 0x08 == 0 {
        4
    } else {
        return 0;
    };
    if b.len() >= n && b[1..n].iter().all(|&x| x & 0xC0 == 0x80) {
        n
    } else {
        0
    }
}
