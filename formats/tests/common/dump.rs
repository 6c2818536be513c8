//! qforge's view of a GGUF file in the JSON shape of `scripts/oracle/gguf_dump.py`, the same
//! encoding used for `scripts/oracle/gguf_write.py` specs, and a field-by-field comparison.

use super::sha256::sha256_hex;
use qforge_formats::ggml::GgmlType;
use qforge_formats::gguf::{GgufArray, GgufFile, GgufValue, TensorSpec};
use serde_json::{json, Map, Value};

/// Raw bytes as gguf_dump.py's latin-1 text: one character per byte.
pub fn latin1(b: &[u8]) -> Value {
    Value::String(b.iter().map(|&c| char::from(c)).collect())
}

fn f32_json(x: f32) -> (Value, Value) {
    (
        if x.is_finite() {
            json!(x as f64)
        } else {
            Value::Null
        },
        json!(x.to_bits()),
    )
}

fn f64_json(x: f64) -> (Value, Value) {
    (
        if x.is_finite() { json!(x) } else { Value::Null },
        json!(x.to_bits()),
    )
}

fn array_json(a: &GgufArray, out: &mut Map<String, Value>) {
    use GgufArray as A;
    out.insert("elem_type".into(), json!(a.elem_type().name()));
    let (value, bits): (Value, Option<Value>) = match a {
        A::U8(v) => (json!(v), None),
        A::I8(v) => (json!(v), None),
        A::U16(v) => (json!(v), None),
        A::I16(v) => (json!(v), None),
        A::U32(v) => (json!(v), None),
        A::I32(v) => (json!(v), None),
        A::U64(v) => (json!(v), None),
        A::I64(v) => (json!(v), None),
        A::Bool(v) => (json!(v), None),
        A::F32(v) => {
            let (x, b): (Vec<Value>, Vec<Value>) = v.iter().map(|&x| f32_json(x)).unzip();
            (Value::Array(x), Some(Value::Array(b)))
        }
        A::F64(v) => {
            let (x, b): (Vec<Value>, Vec<Value>) = v.iter().map(|&x| f64_json(x)).unzip();
            (Value::Array(x), Some(Value::Array(b)))
        }
        A::String(v) => {
            out.insert(
                "utf8".into(),
                v.iter().map(|s| std::str::from_utf8(s).is_ok()).collect(),
            );
            (v.iter().map(|s| latin1(s)).collect(), None)
        }
    };
    out.insert("value".into(), value);
    if let Some(b) = bits {
        out.insert("bits".into(), b);
    }
}

/// One KV as gguf_dump.py prints it.
pub fn kv_json(key: &str, v: &GgufValue) -> Value {
    use GgufValue as V;
    let mut m = Map::new();
    m.insert("key".into(), json!(key));
    m.insert("type".into(), json!(v.value_type().name()));
    let mut put = |value: Value| {
        m.insert("value".into(), value);
    };
    match v {
        V::U8(x) => put(json!(x)),
        V::I8(x) => put(json!(x)),
        V::U16(x) => put(json!(x)),
        V::I16(x) => put(json!(x)),
        V::U32(x) => put(json!(x)),
        V::I32(x) => put(json!(x)),
        V::U64(x) => put(json!(x)),
        V::I64(x) => put(json!(x)),
        V::Bool(x) => put(json!(x)),
        V::F32(x) => {
            let (value, bits) = f32_json(*x);
            put(value);
            m.insert("bits".into(), bits);
        }
        V::F64(x) => {
            let (value, bits) = f64_json(*x);
            put(value);
            m.insert("bits".into(), bits);
        }
        V::String(s) => {
            put(latin1(s));
            m.insert("utf8".into(), json!(std::str::from_utf8(s).is_ok()));
        }
        V::Array(a) => array_json(a, &mut m),
    }
    Value::Object(m)
}

/// The KVs of a file or spec as a JSON list.
pub fn kvs_json(kvs: &[(String, GgufValue)]) -> Value {
    kvs.iter().map(|(k, v)| kv_json(k, v)).collect()
}

/// One tensor record as gguf_dump.py prints it.
pub fn tensor_json(name: &str, ty: GgmlType, dims: &[u64], offset: u64, data: &[u8]) -> Value {
    json!({
        "name": name, "type": ty.id(), "dims": dims, "offset": offset,
        "n_bytes": data.len(), "sha256": sha256_hex(data),
    })
}

/// qforge's view of an open file in gguf_dump.py's shape (tensor data read through
/// `tensor_data`, so the digests check data access too).
pub fn file_json(f: &GgufFile) -> Value {
    let h = f.header();
    let tensors: Vec<Value> = h
        .tensors
        .iter()
        .map(|t| {
            let data = f
                .tensor_data(t)
                .unwrap_or_else(|e| panic!("tensor_data({}): {e}", t.name));
            tensor_json(&t.name, t.ty, &t.dims, t.offset, &data)
        })
        .collect();
    json!({
        "version": h.version, "byte_order": "I", "alignment": h.alignment, "data_offset": h.data_offset,
        "tensor_count": h.tensors.len(), "kv_count": h.kvs.len(),
        "kvs": kvs_json(&h.kvs), "tensors": tensors,
    })
}

/// A gguf_write.py spec for `kvs` and tensors with their data, written under `dir` when large.
pub fn spec_json(kvs: &[(String, GgufValue)], tensors: &[(TensorSpec, Vec<u8>)]) -> Value {
    let tensors: Vec<Value> = tensors
        .iter()
        .map(|(t, data)| {
            let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
            json!({"name": t.name, "type": t.ty.id(), "dims": t.dims, "data_hex": hex})
        })
        .collect();
    json!({"kvs": kvs_json(kvs), "tensors": tensors})
}

/// Removes each float's "value" where its exact "bits" are present, so that comparisons do not
/// depend on how either side prints or parses decimal floats.
pub fn normalize(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if m.contains_key("bits") {
                m.remove("value");
            }
            m.values_mut().for_each(normalize);
        }
        Value::Array(a) => a.iter_mut().for_each(normalize),
        _ => {}
    }
}

/// Asserts that two dumps are equal, field by field, KV by KV and tensor by tensor, so that a
/// failure names the first difference. `what` identifies the file. With `ignore_data_offset`
/// the `data_offset` field is skipped (see `zero-tensor files` in gguf_reference.rs).
pub fn assert_same(what: &str, ours: &Value, theirs: &Value, ignore_data_offset: bool) {
    let (mut a, mut b) = (ours.clone(), theirs.clone());
    normalize(&mut a);
    normalize(&mut b);
    for field in [
        "version",
        "alignment",
        "data_offset",
        "tensor_count",
        "kv_count",
    ] {
        if field == "data_offset" && ignore_data_offset {
            continue;
        }
        assert_eq!(
            a[field], b[field],
            "{what}: {field} differs (ours, gguf-py)"
        );
    }
    for list in ["kvs", "tensors"] {
        let (la, lb) = (a[list].as_array().unwrap(), b[list].as_array().unwrap());
        for (i, (x, y)) in la.iter().zip(lb).enumerate() {
            assert_eq!(x, y, "{what}: {list}[{i}] differs (ours, gguf-py)");
        }
        assert_eq!(
            la.len(),
            lb.len(),
            "{what}: number of {list} differs (ours, gguf-py)"
        );
    }
}
