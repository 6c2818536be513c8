//! A reader for SentencePiece's `tokenizer.model` (a serialized `sentencepiece.ModelProto`).
//!
//! Why no protobuf crate: the converter needs five fields of three messages (the pieces with
//! their score and type, two `NormalizerSpec` flags, the precompiled character map and the
//! trainer's model type). `prost`/`protobuf` would bring a code generator or build script
//! and a `.proto` copy for that; the wire format of those fields is small and fixed (varints,
//! 32-bit floats and length-delimited bytes), so a bounds-checked reader of ~150 lines is the
//! smaller and auditable choice. Unknown fields are skipped by wire type, as protobuf
//! readers do, and every length is checked against the remaining bytes, so a malformed or
//! truncated file is an error, never a panic or a huge allocation.

use std::path::Path;

use super::TokenizerConvertError;

/// `sentencepiece.ModelProto.SentencePiece.Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PieceType {
    /// 1 (also the default when the field is absent).
    Normal,
    /// 2.
    Unknown,
    /// 3.
    Control,
    /// 4.
    UserDefined,
    /// 5.
    Unused,
    /// 6.
    Byte,
}

impl PieceType {
    fn from_wire(v: u64) -> Option<PieceType> {
        Some(match v {
            1 => PieceType::Normal,
            2 => PieceType::Unknown,
            3 => PieceType::Control,
            4 => PieceType::UserDefined,
            5 => PieceType::Unused,
            6 => PieceType::Byte,
            _ => return None,
        })
    }
}

/// One vocabulary entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Piece {
    /// The piece text (UTF-8 in well-formed models; kept as bytes).
    pub piece: Vec<u8>,
    /// Its score (0.0 when absent, the proto default).
    pub score: f32,
    /// Its type.
    pub kind: PieceType,
}

/// The fields of a `ModelProto` that conversion reads.
#[derive(Clone, Debug, PartialEq)]
pub struct SentencePieceModel {
    /// `pieces`, in id order.
    pub pieces: Vec<Piece>,
    /// `trainer_spec.model_type` (1 unigram, 2 BPE, 3 word, 4 char; 1 when absent).
    pub model_type: u64,
    /// `normalizer_spec.add_dummy_prefix` (default true).
    pub add_dummy_prefix: bool,
    /// `normalizer_spec.remove_extra_whitespaces` (default true).
    pub remove_extra_whitespaces: bool,
    /// `normalizer_spec.escape_whitespaces` (default true).
    pub escape_whitespaces: bool,
    /// `normalizer_spec.precompiled_charsmap` (empty when absent).
    pub precompiled_charsmap: Vec<u8>,
}

impl SentencePieceModel {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<SentencePieceModel, TokenizerConvertError> {
        let bytes = std::fs::read(path).map_err(|source| TokenizerConvertError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&bytes).map_err(|reason| TokenizerConvertError::BadSentencePiece {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Parses a serialized `ModelProto`.
    pub fn parse(bytes: &[u8]) -> Result<SentencePieceModel, String> {
        let mut m = SentencePieceModel {
            pieces: Vec::new(),
            model_type: 1,
            add_dummy_prefix: true,
            remove_extra_whitespaces: true,
            escape_whitespaces: true,
            precompiled_charsmap: Vec::new(),
        };
        let mut r = Wire::new(bytes, 0);
        while let Some((field, value)) = r.next_field()? {
            match (field, value) {
                (1, Value::Bytes(b, at)) => m.pieces.push(parse_piece(b, at)?),
                (2, Value::Bytes(b, at)) => {
                    let mut t = Wire::new(b, at);
                    while let Some((f, v)) = t.next_field()? {
                        if let (3, Value::Varint(x)) = (f, v) {
                            m.model_type = x;
                        }
                    }
                }
                (3, Value::Bytes(b, at)) => {
                    let mut t = Wire::new(b, at);
                    while let Some((f, v)) = t.next_field()? {
                        match (f, v) {
                            (2, Value::Bytes(cm, _)) => m.precompiled_charsmap = cm.to_vec(),
                            (3, Value::Varint(x)) => m.add_dummy_prefix = x != 0,
                            (4, Value::Varint(x)) => m.remove_extra_whitespaces = x != 0,
                            (5, Value::Varint(x)) => m.escape_whitespaces = x != 0,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        if m.pieces.is_empty() {
            return Err("no pieces".to_string());
        }
        Ok(m)
    }
}

fn parse_piece(b: &[u8], at: usize) -> Result<Piece, String> {
    let mut p = Piece {
        piece: Vec::new(),
        score: 0.0,
        kind: PieceType::Normal,
    };
    let mut r = Wire::new(b, at);
    while let Some((f, v)) = r.next_field()? {
        match (f, v) {
            (1, Value::Bytes(s, _)) => p.piece = s.to_vec(),
            (2, Value::Fixed32(x)) => p.score = f32::from_bits(x),
            (3, Value::Varint(x)) => {
                p.kind = PieceType::from_wire(x)
                    .ok_or_else(|| format!("piece at byte {at}: unknown piece type {x}"))?
            }
            _ => {}
        }
    }
    Ok(p)
}

enum Value<'a> {
    Varint(u64),
    /// A 64-bit field (skipped: none of the fields read is 64-bit).
    Fixed64,
    /// The payload and its absolute offset in the file.
    Bytes(&'a [u8], usize),
    Fixed32(u32),
}

/// A cursor over protobuf wire data; `base` is the absolute offset of `buf[0]` (for messages).
struct Wire<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Wire<'a> {
    fn new(buf: &'a [u8], base: usize) -> Self {
        Wire { buf, pos: 0, base }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(format!("truncated varint at byte {}", self.base + self.pos));
            };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!(
            "varint longer than 10 bytes at byte {}",
            self.base + self.pos
        ))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| {
                format!(
                    "field of {n} bytes at byte {} runs past the end of its message",
                    self.base + self.pos
                )
            })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn next_field(&mut self) -> Result<Option<(u64, Value<'a>)>, String> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key_at = self.base + self.pos;
        let key = self.varint()?;
        let field = key >> 3;
        if field == 0 {
            return Err(format!("field number 0 at byte {key_at}"));
        }
        let v = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed64
            }
            2 => {
                let n = self.varint()?;
                let n = usize::try_from(n).map_err(|_| format!("length {n} at byte {key_at}"))?;
                let at = self.base + self.pos;
                Value::Bytes(self.take(n)?, at)
            }
            5 => {
                let b = self.take(4)?;
                Value::Fixed32(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            w => return Err(format!("unsupported wire type {w} at byte {key_at}")),
        };
        Ok(Some((field, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn bytes_field(field: u64, payload: &[u8], out: &mut Vec<u8>) {
        varint(field << 3 | 2, out);
        varint(payload.len() as u64, out);
        out.extend_from_slice(payload);
    }

    fn piece(text: &str, score: f32, kind: Option<u64>) -> Vec<u8> {
        let mut p = Vec::new();
        bytes_field(1, text.as_bytes(), &mut p);
        varint(2 << 3 | 5, &mut p);
        p.extend_from_slice(&score.to_le_bytes());
        if let Some(k) = kind {
            varint(3 << 3, &mut p);
            varint(k, &mut p);
        }
        p
    }

    #[test]
    fn parses_pieces_and_specs_and_skips_unknown_fields() {
        let mut m = Vec::new();
        bytes_field(1, &piece("<unk>", 0.0, Some(2)), &mut m);
        bytes_field(1, &piece("\u{2581}a", -1.5, None), &mut m);
        let mut ns = Vec::new();
        varint(3 << 3, &mut ns);
        varint(0, &mut ns);
        bytes_field(1, b"nmt_nfkc", &mut ns);
        bytes_field(3, &ns, &mut m);
        let mut ts = Vec::new();
        varint(3 << 3, &mut ts);
        varint(2, &mut ts);
        varint(9 << 3 | 1, &mut ts);
        ts.extend_from_slice(&[0; 8]);
        bytes_field(2, &ts, &mut m);
        let parsed = SentencePieceModel::parse(&m).unwrap();
        assert_eq!(parsed.pieces.len(), 2);
        assert_eq!(parsed.pieces[0].kind, PieceType::Unknown);
        assert_eq!(parsed.pieces[1].piece, "\u{2581}a".as_bytes());
        assert_eq!(parsed.pieces[1].score, -1.5);
        assert_eq!(parsed.pieces[1].kind, PieceType::Normal);
        assert!(!parsed.add_dummy_prefix);
        assert!(parsed.remove_extra_whitespaces);
        assert_eq!(parsed.model_type, 2);
    }

    #[test]
    fn truncation_and_bad_lengths_are_errors() {
        let mut m = Vec::new();
        bytes_field(1, &piece("abc", 1.0, Some(1)), &mut m);
        for cut in 1..m.len() {
            assert!(
                SentencePieceModel::parse(&m[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        // a length that overflows the buffer
        let bad = [0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(SentencePieceModel::parse(&bad).is_err());
        assert!(SentencePieceModel::parse(&[]).is_err());
        // unknown piece type
        let mut m = Vec::new();
        bytes_field(1, &piece("x", 0.0, Some(9)), &mut m);
        assert!(SentencePieceModel::parse(&m).is_err());
    }
}
