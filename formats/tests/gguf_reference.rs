//! The GGUF reader and writer against the reference implementations: gguf-py 0.19.0 (reader
//! and writer, through scripts/oracle/gguf_dump.py and gguf_write.py) and the pinned llama.cpp's
//! C writer (the output of `llama-quantize` and `llama-gguf-split`).
//!
//! - files written by gguf-py parse exactly as gguf-py parses them;
//! - files written by qforge parse in gguf-py exactly as they were meant;
//! - qforge's writer reproduces gguf-py's and llama.cpp's files byte for byte from the same
//!   metadata and tensors (dims given as stored: gguf-py writes `len(shape)` dims, the C writer
//!   `ggml_n_dims`, i.e. without trailing 1s; qforge writes the dims it is given);
//! - split sets made by `llama-gguf-split` open as one model with the unsplit file's tensors.
//!
//! Needs `scripts/build-oracle.sh`; with `QFORGE_SKIP_ORACLE=1` and no oracle the tests return.

mod common;

use common::dump::{assert_same, file_json, kvs_json, normalize, spec_json, tensor_json};
use common::oracle::{fixture, oracle, Oracle};
use common::sha256::sha256_hex;
use common::Rng;
use qforge_formats::ggml::GgmlType;
use qforge_formats::gguf::split::{split_path, GgufSet};
use qforge_formats::gguf::{
    pad, parse_header, GgufArray, GgufFile, GgufValue, GgufWriter, ReadMode, TensorSpec,
    GGUF_DEFAULT_ALIGNMENT,
};
use serde_json::Value;
use std::path::Path;

const MODES: [ReadMode; 2] = [ReadMode::Mmap, ReadMode::Buffered];

/// Metadata in file order.
type Kvs = Vec<(String, GgufValue)>;
/// Tensors with their data, in file order.
type Tensors = Vec<(TensorSpec, Vec<u8>)>;

fn kv(key: &str, v: GgufValue) -> (String, GgufValue) {
    (key.to_string(), v)
}

fn s(x: &str) -> GgufValue {
    GgufValue::string(x)
}

/// A tensor with deterministic random data of the right size.
fn tensor(rng: &mut Rng, name: &str, ty: GgmlType, dims: &[u64]) -> (TensorSpec, Vec<u8>) {
    let spec = TensorSpec {
        name: name.into(),
        ty,
        dims: dims.to_vec(),
    };
    let n = spec.n_bytes().expect("whole blocks") as usize;
    (spec, rng.bytes(n))
}

/// Every scalar type, with the extremes of each, non-UTF-8 and empty strings, and special floats.
fn scalar_kvs() -> Vec<(String, GgufValue)> {
    use GgufValue as V;
    vec![
        kv("general.architecture", s("llama")),
        kv("t.u8", V::U8(255)),
        kv("t.i8", V::I8(-128)),
        kv("t.u16", V::U16(u16::MAX)),
        kv("t.i16", V::I16(i16::MIN)),
        kv("t.u32", V::U32(u32::MAX)),
        kv("t.i32", V::I32(i32::MIN)),
        kv("t.f32", V::F32(1e-5)),
        kv("t.f32.neg_zero", V::F32(-0.0)),
        kv("t.f32.inf", V::F32(f32::NEG_INFINITY)),
        kv("t.f32.nan", V::F32(f32::NAN)),
        kv("t.f32.subnormal", V::F32(f32::from_bits(1))),
        kv("t.bool.true", V::Bool(true)),
        kv("t.bool.false", V::Bool(false)),
        kv("t.str", s("naïve ▁token 日本語 🦙")),
        kv("t.str.empty", s("")),
        kv("t.str.bytes", V::String(vec![0xff, 0xfe, 0x00, 0x80, b'a'])),
        kv("t.u64", V::U64(u64::MAX)),
        kv("t.i64", V::I64(i64::MIN)),
        kv("t.f64", V::F64(std::f64::consts::PI)),
        kv("t.f64.max", V::F64(f64::MAX)),
    ]
}

/// Arrays of every element type gguf-py can write (it refuses empty arrays).
fn array_kvs() -> Vec<(String, GgufValue)> {
    use GgufArray as A;
    use GgufValue as V;
    vec![
        kv("a.u8", V::Array(A::U8(vec![0, 1, 254, 255]))),
        kv("a.i8", V::Array(A::I8(vec![-128, -1, 0, 127]))),
        kv("a.u16", V::Array(A::U16(vec![0, 65535]))),
        kv("a.i16", V::Array(A::I16(vec![-32768, 32767, 5]))),
        kv("a.u32", V::Array(A::U32(vec![u32::MAX, 0, 7]))),
        kv("a.i32", V::Array(A::I32((-300..300).collect()))),
        kv(
            "a.f32",
            V::Array(A::F32(vec![
                0.5,
                -0.0,
                f32::INFINITY,
                f32::NAN,
                3.4e38,
                -1e-40,
            ])),
        ),
        kv("a.bool", V::Array(A::Bool(vec![true, false, true]))),
        kv(
            "a.str",
            V::Array(A::String(vec![
                b"<s>".to_vec(),
                Vec::new(),
                "▁the".as_bytes().to_vec(),
                vec![0xc3, 0x28],
            ])),
        ),
        kv("a.u64", V::Array(A::U64(vec![u64::MAX, 1 << 40]))),
        kv("a.i64", V::Array(A::I64(vec![i64::MIN, i64::MAX, -1]))),
        kv("a.f64", V::Array(A::F64(vec![1e300, -2.5, f64::NAN]))),
        kv("a.one", V::Array(A::U8(vec![42]))),
    ]
}

/// Tensors of 1 to 4 dims, of float, integer and block-quantized types, with sizes that are
/// not multiples of the alignment, a trailing dimension of 1 and an empty tensor.
fn mixed_tensors(seed: u64) -> Vec<(TensorSpec, Vec<u8>)> {
    let mut r = Rng::new(seed);
    vec![
        tensor(&mut r, "one_d.f32", GgmlType::F32, &[7]),
        tensor(&mut r, "three_d.f16", GgmlType::F16, &[4, 3, 2]),
        tensor(&mut r, "four_d.bf16", GgmlType::BF16, &[2, 3, 1, 5]),
        tensor(&mut r, "trailing_one.f32", GgmlType::F32, &[9, 1]),
        tensor(&mut r, "q4_0", GgmlType::Q4_0, &[64, 3]),
        tensor(&mut r, "q8_0.3d", GgmlType::Q8_0, &[32, 2, 2]),
        tensor(&mut r, "q4_K", GgmlType::Q4_K, &[256, 2]),
        tensor(&mut r, "q6_K", GgmlType::Q6_K, &[512]),
        tensor(&mut r, "iq4_nl", GgmlType::IQ4_NL, &[32, 1]),
        tensor(&mut r, "i8", GgmlType::I8, &[3]),
        tensor(&mut r, "i16", GgmlType::I16, &[5, 1]),
        tensor(&mut r, "i32", GgmlType::I32, &[5]),
        tensor(&mut r, "i64", GgmlType::I64, &[2, 2]),
        tensor(&mut r, "f64", GgmlType::F64, &[3]),
        tensor(&mut r, "empty.f32", GgmlType::F32, &[0, 4]),
        tensor(&mut r, "after_empty.f16", GgmlType::F16, &[1]),
    ]
}

/// Named test files: metadata, tensors. Alignment comes from `general.alignment` when present.
fn cases() -> Vec<(&'static str, Kvs, Tensors)> {
    let mut all = scalar_kvs();
    all.extend(array_kvs());
    let mut aligned = vec![
        kv("general.architecture", s("llama")),
        kv("general.alignment", GgufValue::U32(64)),
    ];
    aligned.extend(array_kvs());
    let mut r = Rng::new(9);
    vec![
        ("all_kv_types", all, mixed_tensors(1)),
        ("alignment_64", aligned, mixed_tensors(2)),
        (
            "alignment_256_first",
            vec![kv("general.alignment", GgufValue::U32(256))],
            mixed_tensors(3),
        ),
        ("no_tensors", scalar_kvs(), Vec::new()),
        ("no_kvs", Vec::new(), mixed_tensors(4)),
        ("empty", Vec::new(), Vec::new()),
        (
            "one_3d",
            vec![kv("general.architecture", s("x"))],
            vec![tensor(&mut r, "w", GgmlType::F32, &[3, 5, 7])],
        ),
        (
            "one_1d",
            vec![kv("general.architecture", s("x"))],
            vec![tensor(&mut r, "w", GgmlType::F16, &[33])],
        ),
    ]
}

fn alignment_of(kvs: &[(String, GgufValue)]) -> u64 {
    kvs.iter()
        .find(|(k, _)| k == "general.alignment")
        .and_then(|(_, v)| v.as_u32())
        .map_or(GGUF_DEFAULT_ALIGNMENT, u64::from)
}

/// Writes a file with qforge's writer.
fn write_ours(
    path: &Path,
    kvs: &[(String, GgufValue)],
    tensors: &[(TensorSpec, Vec<u8>)],
    alignment: u64,
) {
    let specs = tensors.iter().map(|(t, _)| t.clone()).collect();
    let mut w = GgufWriter::create(path, kvs, specs, alignment).expect("create");
    for (t, data) in tensors {
        w.write_tensor(&t.name, data).expect("write_tensor");
    }
    w.finish().expect("finish");
}

/// Reads every tensor of `path` with qforge's reader: metadata, tensor specs and data.
fn read_all(path: &Path) -> (Kvs, Tensors, u64) {
    let f = GgufFile::open(path).unwrap_or_else(|e| panic!("{e}"));
    let tensors = f
        .header()
        .tensors
        .iter()
        .map(|t| {
            let spec = TensorSpec {
                name: t.name.clone(),
                ty: t.ty,
                dims: t.dims.clone(),
            };
            (spec, f.tensor_data(t).unwrap().into_owned())
        })
        .collect();
    (f.header().kvs.clone(), tensors, f.header().alignment)
}

/// Asserts that two KV lists are equal, comparing floats by their bits (so NaN equals itself).
fn assert_same_kvs(what: &str, a: &[(String, GgufValue)], b: &[(String, GgufValue)]) {
    let (mut ja, mut jb) = (kvs_json(a), kvs_json(b));
    normalize(&mut ja);
    normalize(&mut jb);
    for (i, (x, y)) in ja
        .as_array()
        .unwrap()
        .iter()
        .zip(jb.as_array().unwrap())
        .enumerate()
    {
        assert_eq!(x, y, "{what}: KV {i} differs");
    }
    assert_eq!(a.len(), b.len(), "{what}: number of KVs differs");
}

/// Checks qforge's parse of `path` (both read modes, and `parse_header` on the bytes) against
/// gguf-py's. A file without tensors has no data section: llama.cpp (and qforge) put it right
/// after the header, gguf-py after the padding, so for those the two offsets are compared apart.
fn check_against_gguf_py(o: &Oracle, what: &str, path: &Path) {
    let theirs = o.dump(path);
    for mode in MODES {
        let f =
            GgufFile::open_with(path, mode).unwrap_or_else(|e| panic!("{what} ({mode:?}): {e}"));
        let ours = file_json(&f);
        let no_tensors = f.header().tensors.is_empty();
        assert_same(&format!("{what} ({mode:?})"), &ours, &theirs, no_tensors);
        if no_tensors {
            let (a, b) = (
                f.header().data_offset,
                theirs["data_offset"].as_u64().unwrap(),
            );
            assert_eq!(
                pad(a, f.header().alignment),
                b,
                "{what}: header end {a}, gguf-py data offset {b}"
            );
        }
    }
    let bytes = std::fs::read(path).unwrap();
    let h = parse_header(&bytes[..], bytes.len() as u64, path).unwrap();
    let f = GgufFile::open(path).unwrap();
    assert_same_kvs(&format!("{what}: parse_header"), &h.kvs, &f.header().kvs);
    assert_eq!(h.tensors, f.header().tensors, "{what}: parse_header");
    assert_eq!(
        h.data_offset,
        f.header().data_offset,
        "{what}: parse_header"
    );
}

#[test]
fn fixture_parses_as_in_gguf_py() {
    let Some(o) = oracle() else { return };
    let path = fixture("tiny-llama-f16.gguf");
    check_against_gguf_py(&o, "tiny-llama-f16.gguf", &path);
    let f = GgufFile::open(&path).unwrap();
    assert_eq!(f.header().architecture(), Some("llama"));
    assert_eq!(f.header().tensors.len(), 21);
}

#[test]
fn f32_and_bf16_variants_parse_as_in_gguf_py() {
    let Some(o) = oracle() else { return };
    let dir = tempfile::tempdir().unwrap();
    for dtype in ["f32", "bf16"] {
        let out = dir.path().join(format!("tiny-llama-{dtype}.gguf"));
        let script = fixture("make_fixtures.py");
        let mut cmd = std::process::Command::new(&o.python);
        cmd.arg(&script)
            .arg("--dtype")
            .arg(dtype)
            .arg("--out")
            .arg(&out);
        o.run_ok("make_fixtures.py", &mut cmd);
        check_against_gguf_py(&o, dtype, &out);
        let f = GgufFile::open(&out).unwrap();
        let want = if dtype == "f32" {
            GgmlType::F32
        } else {
            GgmlType::BF16
        };
        assert_eq!(f.header().tensor("blk.1.ffn_down.weight").unwrap().ty, want);
    }
}

#[test]
fn gguf_py_files_parse_as_in_gguf_py_and_qforge_writes_the_same_bytes() {
    let Some(o) = oracle() else { return };
    let dir = tempfile::tempdir().unwrap();
    for (name, kvs, tensors) in cases() {
        let py = dir.path().join(format!("{name}.py.gguf"));
        o.write(&spec_json(&kvs, &tensors), &py);
        check_against_gguf_py(&o, name, &py);
        let f = GgufFile::open(&py).unwrap();
        assert_same_kvs(
            &format!("{name}: read back, given to gguf-py"),
            &f.header().kvs,
            &kvs,
        );
        let ours = dir.path().join(format!("{name}.qforge.gguf"));
        write_ours(&ours, &kvs, &tensors, alignment_of(&kvs));
        let (a, b) = (std::fs::read(&ours).unwrap(), std::fs::read(&py).unwrap());
        let first = a.iter().zip(&b).position(|(x, y)| x != y);
        assert!(a == b, "{name}: qforge's file ({} bytes) differs from gguf-py's ({} bytes), first at {first:?}", a.len(), b.len());
    }
}

#[test]
fn qforge_files_parse_in_gguf_py_as_written() {
    use GgufArray as A;
    use GgufValue as V;
    let Some(o) = oracle() else { return };
    let dir = tempfile::tempdir().unwrap();
    // gguf-py cannot write empty arrays, but llama.cpp and gguf-py read them.
    let empty_arrays = vec![
        kv("e.u8", V::Array(A::U8(vec![]))),
        kv("e.i8", V::Array(A::I8(vec![]))),
        kv("e.u16", V::Array(A::U16(vec![]))),
        kv("e.i16", V::Array(A::I16(vec![]))),
        kv("e.u32", V::Array(A::U32(vec![]))),
        kv("e.i32", V::Array(A::I32(vec![]))),
        kv("e.f32", V::Array(A::F32(vec![]))),
        kv("e.bool", V::Array(A::Bool(vec![]))),
        kv("e.str", V::Array(A::String(vec![]))),
        kv("e.u64", V::Array(A::U64(vec![]))),
        kv("e.i64", V::Array(A::I64(vec![]))),
        kv("e.f64", V::Array(A::F64(vec![]))),
    ];
    let mut all_cases = cases();
    let mut kvs = scalar_kvs();
    kvs.extend(empty_arrays);
    kvs.push(kv("general.alignment", V::U32(128)));
    all_cases.push(("empty_arrays_align_128", kvs, mixed_tensors(5)));
    for (name, kvs, tensors) in all_cases {
        let path = dir.path().join(format!("{name}.gguf"));
        let alignment = alignment_of(&kvs);
        write_ours(&path, &kvs, &tensors, alignment);
        let theirs = o.dump(&path);
        // Expected values from the input alone, not from qforge's reader.
        let mut offset = 0;
        let want_tensors: Vec<Value> = tensors
            .iter()
            .map(|(t, data)| {
                let v = tensor_json(&t.name, t.ty, &t.dims, offset, data);
                offset += (data.len() as u64).div_ceil(alignment) * alignment;
                v
            })
            .collect();
        let mut want = theirs.clone();
        want["version"] = 3.into();
        want["alignment"] = alignment.into();
        want["tensor_count"] = tensors.len().into();
        want["kv_count"] = kvs.len().into();
        want["kvs"] = kvs_json(&kvs);
        want["tensors"] = Value::Array(want_tensors);
        assert_same(name, &want, &theirs, false);
        let len = std::fs::metadata(&path).unwrap().len();
        assert_eq!(
            len,
            theirs["data_offset"].as_u64().unwrap() + offset,
            "{name}: file length"
        );
    }
}

/// Rewrites `path` with qforge's writer from qforge's parse and compares the bytes.
fn assert_rewrites_identically(what: &str, path: &Path, dir: &Path) {
    let (kvs, tensors, alignment) = read_all(path);
    let out = dir.join(format!("{what}.rewritten.gguf"));
    write_ours(&out, &kvs, &tensors, alignment);
    let (a, b) = (std::fs::read(&out).unwrap(), std::fs::read(path).unwrap());
    let first = a.iter().zip(&b).position(|(x, y)| x != y);
    assert!(a == b, "{what}: rewritten file ({} bytes) differs from the original ({} bytes), first at {first:?}", a.len(), b.len());
}

#[test]
fn qforge_rewrites_gguf_py_and_llama_cpp_files_byte_for_byte() {
    let Some(o) = oracle() else { return };
    let dir = tempfile::tempdir().unwrap();
    let src = fixture("tiny-llama-f16.gguf");
    assert_rewrites_identically("fixture (gguf-py writer)", &src, dir.path());
    // llama-quantize writes with ggml's C writer: n_dims without trailing 1s, alignment 32.
    for ftype in ["Q4_K_M", "Q8_0", "F32"] {
        let q = dir.path().join(format!("{ftype}.gguf"));
        o.run_ok(
            "llama-quantize",
            o.tool("llama-quantize").arg(&src).arg(&q).arg(ftype),
        );
        check_against_gguf_py(&o, ftype, &q);
        assert_rewrites_identically(ftype, &q, dir.path());
    }
}

/// Splits the fixture with `llama-gguf-split --split ARGS` into `dir/split-0000i-of-0000n.gguf`.
fn gguf_split(o: &Oracle, dir: &Path, args: &[&str]) -> String {
    let prefix = dir.join("split").to_str().unwrap().to_string();
    let mut cmd = o.tool("llama-gguf-split");
    cmd.arg("--split")
        .args(args)
        .arg(fixture("tiny-llama-f16.gguf"))
        .arg(&prefix);
    o.run_ok("llama-gguf-split --split", &mut cmd);
    prefix
}

/// Checks that the set at `prefix` holds the fixture's metadata and tensors.
fn check_split_set(o: &Oracle, prefix: &str, want_count: usize) {
    let whole = GgufFile::open(fixture("tiny-llama-f16.gguf")).unwrap();
    for mode in MODES {
        let set = GgufSet::open(split_path(prefix, 0, want_count), mode)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(set.shards().len(), want_count);
        assert!(set.is_split());
        let meta = &set.first().header().kvs;
        assert_same_kvs(
            "shard 0 carries all metadata",
            &meta[..whole.header().kvs.len()],
            &whole.header().kvs,
        );
        for (i, shard) in set.shards().iter().enumerate() {
            let keys: Vec<&str> = shard.header().kvs.iter().map(|(k, _)| k.as_str()).collect();
            let split_keys = &keys[keys.len() - 3..];
            // gguf-split's order (tools/gguf-split/gguf-split.cpp, split_strategy).
            assert_eq!(
                split_keys,
                ["split.no", "split.tensors.count", "split.count"]
            );
            assert_eq!(
                shard.header().get("split.no"),
                Some(&GgufValue::U16(i as u16))
            );
            if i > 0 {
                assert_eq!(keys.len(), 3, "shard {i} carries only the split keys");
            }
        }
        let got: Vec<_> = set.tensors().collect();
        assert_eq!(got.len(), whole.header().tensors.len());
        for ((shard, t), w) in got.iter().zip(&whole.header().tensors) {
            assert_eq!((&t.name, t.ty, &t.dims), (&w.name, w.ty, &w.dims));
            let data = set.shards()[*shard].tensor_data(t).unwrap();
            assert_eq!(
                sha256_hex(&data),
                sha256_hex(&whole.tensor_data(w).unwrap()),
                "{}",
                t.name
            );
        }
    }
    let dir = Path::new(prefix).parent().unwrap();
    for i in 0..want_count {
        let p = split_path(prefix, i, want_count);
        check_against_gguf_py(o, &format!("shard {i}"), &p);
        assert_rewrites_identically(&format!("shard-{i}"), &p, dir);
    }
}

#[test]
fn split_sets_from_llama_gguf_split_open_as_the_whole_model() {
    let Some(o) = oracle() else { return };
    // 21 tensors, at most 8 per shard: 3 shards.
    let dir = tempfile::tempdir().unwrap();
    let prefix = gguf_split(&o, dir.path(), &["--split-max-tensors", "8"]);
    check_split_set(&o, &prefix, 3);

    // Size-based split; shard 0 without tensors.
    let dir2 = tempfile::tempdir().unwrap();
    let prefix2 = gguf_split(
        &o,
        dir2.path(),
        &["--split-max-size", "1M", "--no-tensor-first-split"],
    );
    let n = std::fs::read_dir(dir2.path()).unwrap().count();
    assert!(
        n >= 4,
        "expected a metadata-only shard and at least 3 data shards, got {n} files"
    );
    check_split_set(&o, &prefix2, n);
    let first = GgufFile::open(split_path(&prefix2, 0, n)).unwrap();
    assert!(first.header().tensors.is_empty());

    // llama-gguf-split --merge gives back the fixture's tensors, with split.count = 0.
    let merged = dir.path().join("merged.gguf");
    let mut cmd = o.tool("llama-gguf-split");
    cmd.arg("--merge")
        .arg(split_path(&prefix, 0, 3))
        .arg(&merged);
    o.run_ok("llama-gguf-split --merge", &mut cmd);
    let set = GgufSet::open(&merged, ReadMode::Mmap).unwrap();
    assert!(!set.is_split());
    let (whole, m) = (
        GgufFile::open(fixture("tiny-llama-f16.gguf")).unwrap(),
        set.first(),
    );
    assert_eq!(m.header().get("split.count"), Some(&GgufValue::U16(0)));
    assert_eq!(m.header().tensors.len(), whole.header().tensors.len());
    for (a, b) in m.header().tensors.iter().zip(&whole.header().tensors) {
        assert_eq!(
            m.tensor_data(a).unwrap(),
            whole.tensor_data(b).unwrap(),
            "{}",
            a.name
        );
    }
    assert_rewrites_identically("merged", &merged, dir.path());
}

#[test]
fn broken_split_sets_are_refused() {
    let Some(o) = oracle() else { return };
    let dir = tempfile::tempdir().unwrap();
    let prefix = gguf_split(&o, dir.path(), &["--split-max-tensors", "8"]);
    let first = split_path(&prefix, 0, 3);

    // Opening from a later shard.
    let err = GgufSet::open(split_path(&prefix, 1, 3), ReadMode::Mmap)
        .err()
        .expect("shard 2 alone");
    assert!(err.to_string().contains("split.no"), "{err}");

    // A shard file under a name that does not follow the pattern.
    let renamed = dir.path().join("model.gguf");
    std::fs::copy(&first, &renamed).unwrap();
    let err = GgufSet::open(&renamed, ReadMode::Mmap)
        .err()
        .expect("renamed shard");
    assert!(err.to_string().contains("-00001-of-00003.gguf"), "{err}");

    // A missing shard.
    let (p1, p2) = (split_path(&prefix, 1, 3), split_path(&prefix, 2, 3));
    let kept = dir.path().join("kept.gguf");
    std::fs::rename(&p2, &kept).unwrap();
    let err = GgufSet::open(&first, ReadMode::Mmap)
        .err()
        .expect("missing shard");
    assert!(err.to_string().contains("-00003-of-00003.gguf"), "{err}");

    // Shards in the wrong places.
    std::fs::rename(&p1, &p2).unwrap();
    std::fs::rename(&kept, &p1).unwrap();
    let err = GgufSet::open(&first, ReadMode::Mmap)
        .err()
        .expect("swapped shards");
    assert!(err.to_string().contains("split.no = 1"), "{err}");
}

/// The documented n_dims difference (reference notes §1.3): gguf-py stores `len(shape)` dims,
/// ggml's C writer `ggml_n_dims`, without trailing 1s. A gguf-py file passed through
/// `llama-gguf-split` (C writer) comes back with trimmed dims; qforge reads dims as stored and
/// reproduces either file from its own parse.
#[test]
fn c_writer_drops_trailing_unit_dims_and_qforge_keeps_what_is_stored() {
    let Some(o) = oracle() else { return };
    let dir = tempfile::tempdir().unwrap();
    let kvs = vec![kv("general.architecture", s("x"))];
    let tensors = mixed_tensors(6);
    let py = dir.path().join("py.gguf");
    o.write(&spec_json(&kvs, &tensors), &py);
    let prefix = dir.path().join("c").to_str().unwrap().to_string();
    let mut cmd = o.tool("llama-gguf-split");
    cmd.args(["--split", "--split-max-tensors", "1000"])
        .arg(&py)
        .arg(&prefix);
    o.run_ok("llama-gguf-split --split", &mut cmd);
    let c = split_path(&prefix, 0, 1);
    let (from_py, from_c) = (GgufFile::open(&py).unwrap(), GgufFile::open(&c).unwrap());
    let mut trimmed = 0;
    for (p, c) in from_py
        .header()
        .tensors
        .iter()
        .zip(&from_c.header().tensors)
    {
        let mut want = p.dims.clone();
        while want.len() > 1 && want.last() == Some(&1) {
            want.pop();
        }
        trimmed += usize::from(want.len() != p.dims.len());
        assert_eq!(c.dims, want, "{}: C writer dims", p.name);
        assert_eq!(
            from_c.tensor_data(c).unwrap(),
            from_py.tensor_data(p).unwrap(),
            "{}",
            p.name
        );
    }
    assert!(trimmed >= 3, "the case has tensors with trailing 1s");
    check_against_gguf_py(&o, "C-written", &c);
    assert_rewrites_identically("C-written", &c, dir.path());
    assert_rewrites_identically("gguf-py-written", &py, dir.path());
}
