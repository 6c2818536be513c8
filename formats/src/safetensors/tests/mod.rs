//! Tests of the safetensors reader and writer, using the `safetensors` crate as an independent
//! reader and as the reference serializer.

mod malformed;
mod reference;
mod roundtrip;
mod sharded;

use super::{Dtype, TensorInfo, TensorSource, TensorSpec};
use crate::oracle::Rng;
use std::collections::BTreeMap;
use std::io::Write;

/// Tensors held in memory for tests, served to the writers by name.
pub(super) struct Tensors {
    pub specs: Vec<TensorSpec>,
    pub data: BTreeMap<String, Vec<u8>>,
}

impl Tensors {
    /// Random bytes for each (name, dtype, shape).
    pub fn random(seed: u64, list: &[(&str, Dtype, &[u64])]) -> Tensors {
        let mut rng = Rng::new(seed);
        let mut specs = Vec::new();
        let mut data = BTreeMap::new();
        for &(name, dtype, shape) in list {
            let spec = TensorSpec::new(name, dtype, shape);
            let n = spec.byte_len().unwrap() as usize;
            data.insert(
                name.to_owned(),
                (0..n).map(|_| rng.next_u64() as u8).collect(),
            );
            specs.push(spec);
        }
        Tensors { specs, data }
    }

    /// A source serving these tensors and recording the order it was asked in.
    pub fn source<'a>(&'a self, calls: &'a mut Vec<String>) -> impl TensorSource + 'a {
        move |t: &TensorInfo, out: &mut dyn Write| {
            calls.push(t.name().to_owned());
            // write in two pieces to exercise streaming
            let bytes = &self.data[t.name()];
            let (a, b) = bytes.split_at(bytes.len() / 2);
            out.write_all(a)?;
            out.write_all(b)
        }
    }
}

/// One tensor of every supported dtype, plus a scalar and an empty tensor.
pub(super) fn every_dtype() -> Tensors {
    Tensors::random(
        1,
        &[
            ("model.embed.weight", Dtype::BF16, &[7, 5]),
            ("a.bool", Dtype::BOOL, &[9]),
            ("b.u8", Dtype::U8, &[3, 3]),
            ("c.i8", Dtype::I8, &[4]),
            ("d.e5m2", Dtype::F8_E5M2, &[2, 3]),
            ("e.e4m3", Dtype::F8_E4M3, &[6]),
            ("f.i16", Dtype::I16, &[5]),
            ("g.u16", Dtype::U16, &[1, 5]),
            ("h.f16", Dtype::F16, &[2, 2, 2]),
            ("i.i32", Dtype::I32, &[3]),
            ("j.u32", Dtype::U32, &[3]),
            ("k.f32", Dtype::F32, &[4, 3]),
            ("l.f64", Dtype::F64, &[2]),
            ("m.i64", Dtype::I64, &[2]),
            ("n.u64", Dtype::U64, &[1]),
            ("scalar", Dtype::F32, &[]),
            ("empty", Dtype::F16, &[0, 4]),
            ("zz.also.bf16", Dtype::BF16, &[3]),
        ],
    )
}
