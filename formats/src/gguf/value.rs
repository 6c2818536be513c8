//! GGUF metadata values (`gguf_type`) and their little-endian encoding.

use std::fmt;

/// The type tag of a GGUF metadata value (`enum gguf_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
#[repr(u32)]
pub enum GgufValueType {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
}

impl GgufValueType {
    /// The type with tag `id`, if any.
    pub fn from_id(id: u32) -> Option<Self> {
        use GgufValueType::*;
        Some(match id {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    /// Bytes per element for fixed-size types; `None` for strings and arrays.
    pub fn fixed_size(self) -> Option<usize> {
        use GgufValueType::*;
        match self {
            U8 | I8 | Bool => Some(1),
            U16 | I16 => Some(2),
            U32 | I32 | F32 => Some(4),
            U64 | I64 | F64 => Some(8),
            String | Array => None,
        }
    }

    /// The name gguf-py and llama.cpp print for this type.
    pub fn name(self) -> &'static str {
        use GgufValueType::*;
        match self {
            U8 => "u8",
            I8 => "i8",
            U16 => "u16",
            I16 => "i16",
            U32 => "u32",
            I32 => "i32",
            F32 => "f32",
            Bool => "bool",
            String => "str",
            Array => "arr",
            U64 => "u64",
            I64 => "i64",
            F64 => "f64",
        }
    }
}

/// A homogeneous GGUF array, stored compactly by element type. Nested arrays are not
/// supported, as in llama.cpp's reader.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum GgufArray {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    Bool(Vec<bool>),
    String(Vec<Vec<u8>>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F64(Vec<f64>),
}

impl GgufArray {
    /// The element type.
    pub fn elem_type(&self) -> GgufValueType {
        use GgufArray as A;
        match self {
            A::U8(_) => GgufValueType::U8,
            A::I8(_) => GgufValueType::I8,
            A::U16(_) => GgufValueType::U16,
            A::I16(_) => GgufValueType::I16,
            A::U32(_) => GgufValueType::U32,
            A::I32(_) => GgufValueType::I32,
            A::F32(_) => GgufValueType::F32,
            A::Bool(_) => GgufValueType::Bool,
            A::String(_) => GgufValueType::String,
            A::U64(_) => GgufValueType::U64,
            A::I64(_) => GgufValueType::I64,
            A::F64(_) => GgufValueType::F64,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        use GgufArray as A;
        match self {
            A::U8(v) => v.len(),
            A::I8(v) => v.len(),
            A::U16(v) => v.len(),
            A::I16(v) => v.len(),
            A::U32(v) => v.len(),
            A::I32(v) => v.len(),
            A::F32(v) => v.len(),
            A::Bool(v) => v.len(),
            A::String(v) => v.len(),
            A::U64(v) => v.len(),
            A::I64(v) => v.len(),
            A::F64(v) => v.len(),
        }
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i` as an integer, for integer arrays.
    pub fn get_int(&self, i: usize) -> Option<i128> {
        use GgufArray as A;
        Some(match self {
            A::U8(v) => *v.get(i)? as i128,
            A::I8(v) => *v.get(i)? as i128,
            A::U16(v) => *v.get(i)? as i128,
            A::I16(v) => *v.get(i)? as i128,
            A::U32(v) => *v.get(i)? as i128,
            A::I32(v) => *v.get(i)? as i128,
            A::U64(v) => *v.get(i)? as i128,
            A::I64(v) => *v.get(i)? as i128,
            _ => return None,
        })
    }
}

/// One GGUF metadata value.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum GgufValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    /// Raw string bytes; GGUF strings are meant to be UTF-8 but are kept byte-exact.
    String(Vec<u8>),
    Array(GgufArray),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl GgufValue {
    /// The value's type tag.
    pub fn value_type(&self) -> GgufValueType {
        use GgufValue as V;
        match self {
            V::U8(_) => GgufValueType::U8,
            V::I8(_) => GgufValueType::I8,
            V::U16(_) => GgufValueType::U16,
            V::I16(_) => GgufValueType::I16,
            V::U32(_) => GgufValueType::U32,
            V::I32(_) => GgufValueType::I32,
            V::F32(_) => GgufValueType::F32,
            V::Bool(_) => GgufValueType::Bool,
            V::String(_) => GgufValueType::String,
            V::Array(_) => GgufValueType::Array,
            V::U64(_) => GgufValueType::U64,
            V::I64(_) => GgufValueType::I64,
            V::F64(_) => GgufValueType::F64,
        }
    }

    /// A string value built from `s`.
    pub fn string(s: impl Into<String>) -> Self {
        GgufValue::String(s.into().into_bytes())
    }

    /// The value as an integer, for any integer type (not bool).
    pub fn as_int(&self) -> Option<i128> {
        use GgufValue as V;
        Some(match *self {
            V::U8(v) => v as i128,
            V::I8(v) => v as i128,
            V::U16(v) => v as i128,
            V::I16(v) => v as i128,
            V::U32(v) => v as i128,
            V::I32(v) => v as i128,
            V::U64(v) => v as i128,
            V::I64(v) => v as i128,
            _ => return None,
        })
    }

    /// The value as a `u32`, only when it is stored as UINT32 (llama.cpp checks types strictly).
    pub fn as_u32(&self) -> Option<u32> {
        match *self {
            GgufValue::U32(v) => Some(v),
            _ => None,
        }
    }

    /// The value as a float, for F32 and F64.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            GgufValue::F32(v) => Some(v as f64),
            GgufValue::F64(v) => Some(v),
            _ => None,
        }
    }

    /// The value as UTF-8 text, for valid UTF-8 strings.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            GgufValue::String(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// The array, for array values.
    pub fn as_array(&self) -> Option<&GgufArray> {
        match self {
            GgufValue::Array(a) => Some(a),
            _ => None,
        }
    }

    /// Appends the encoded value (without its type tag) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        use GgufValue as V;
        match self {
            V::U8(v) => out.push(*v),
            V::I8(v) => out.push(*v as u8),
            V::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
            V::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
            V::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
            V::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
            V::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
            V::Bool(v) => out.push(*v as u8),
            V::String(s) => encode_str(s, out),
            V::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
            V::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
            V::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
            V::Array(a) => {
                out.extend_from_slice(&(a.elem_type() as u32).to_le_bytes());
                out.extend_from_slice(&(a.len() as u64).to_le_bytes());
                encode_array_elems(a, out);
            }
        }
    }
}

/// Appends a GGUF string (u64 length, then bytes).
pub fn encode_str(s: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s);
}

fn encode_array_elems(a: &GgufArray, out: &mut Vec<u8>) {
    use GgufArray as A;
    match a {
        A::U8(v) => out.extend_from_slice(v),
        A::I8(v) => out.extend(v.iter().map(|x| *x as u8)),
        A::U16(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        A::I16(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        A::U32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        A::I32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        A::F32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        A::Bool(v) => out.extend(v.iter().map(|x| *x as u8)),
        A::String(v) => v.iter().for_each(|s| encode_str(s, out)),
        A::U64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        A::I64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        A::F64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
    }
}

impl fmt::Display for GgufValue {
    /// A short human-readable rendering; long arrays are summarised.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use GgufValue as V;
        match self {
            V::U8(v) => write!(f, "{v}"),
            V::I8(v) => write!(f, "{v}"),
            V::U16(v) => write!(f, "{v}"),
            V::I16(v) => write!(f, "{v}"),
            V::U32(v) => write!(f, "{v}"),
            V::I32(v) => write!(f, "{v}"),
            V::F32(v) => write!(f, "{v}"),
            V::Bool(v) => write!(f, "{v}"),
            V::U64(v) => write!(f, "{v}"),
            V::I64(v) => write!(f, "{v}"),
            V::F64(v) => write!(f, "{v}"),
            V::String(s) => {
                let s = String::from_utf8_lossy(s);
                if s.chars().count() > 60 {
                    let head: String = s.chars().take(57).collect();
                    write!(f, "{:?}...", head)
                } else {
                    write!(f, "{:?}", s)
                }
            }
            V::Array(a) => write!(f, "[{} x {}]", a.len(), a.elem_type().name()),
        }
    }
}
