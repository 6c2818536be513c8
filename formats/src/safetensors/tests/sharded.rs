//! Sharded checkpoints: writing as `transformers` does, reading through the index, and the
//! index's failure modes.

use super::{every_dtype, Tensors};
use crate::safetensors::{
    write_checkpoint, Checkpoint, Dtype, ErrorKind, ReadMode, SafetensorsFile, ShardOptions,
    ShardedCheckpoint,
};
use std::collections::BTreeMap;
use std::path::Path;

fn options(max: u64) -> ShardOptions {
    ShardOptions {
        max_shard_size: max,
        ..ShardOptions::default()
    }
}

fn dir_listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_checkpoint_that_fits_is_one_file_without_index() {
    let t = every_dtype();
    let dir = tempfile::tempdir().unwrap();
    let out = write_checkpoint(
        dir.path(),
        &t.specs,
        None,
        &ShardOptions::default(),
        &mut t.source(&mut Vec::new()),
    )
    .unwrap();
    assert_eq!(dir_listing(dir.path()), ["model.safetensors"]);
    assert_eq!(out.index, None);
    let ck = Checkpoint::open(dir.path()).unwrap();
    assert!(matches!(ck, Checkpoint::Single(_)));
    assert_eq!(ck.len(), t.specs.len());
}

#[test]
fn shards_index_and_reading_back() {
    let t = Tensors::random(
        5,
        &[
            ("layers.0.w", Dtype::F32, &[10]),  // 40 bytes
            ("layers.0.b", Dtype::F32, &[5]),   // 20
            ("embed", Dtype::BF16, &[100]),     // 200, larger than the limit: own shard
            ("layers.1.w", Dtype::F32, &[10]),  // 40
            ("layers.1.n", Dtype::F16, &[4]),   // 8
            ("layers.1.idx", Dtype::I64, &[2]), // 16
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let metadata: BTreeMap<String, String> = [("format".to_owned(), "pt".to_owned())].into();
    let mut calls = Vec::new();
    let out = write_checkpoint(
        dir.path(),
        &t.specs,
        Some(&metadata),
        &options(64),
        &mut t.source(&mut calls),
    )
    .unwrap();
    // huggingface_hub's split: embed alone (appended while [w0, b0] is still open), then
    // [w0, b0] (60 bytes), then [w1, n1, idx1] (exactly 64 bytes, which is allowed)
    assert_eq!(
        dir_listing(dir.path()),
        [
            "model-00001-of-00003.safetensors",
            "model-00002-of-00003.safetensors",
            "model-00003-of-00003.safetensors",
            "model.safetensors.index.json",
        ]
    );
    assert_eq!(out.total_size, 40 + 20 + 200 + 40 + 8 + 16);
    let shard_of = |name: &str| -> &'static str {
        match name {
            "embed" => "model-00001-of-00003.safetensors",
            "layers.0.w" | "layers.0.b" => "model-00002-of-00003.safetensors",
            _ => "model-00003-of-00003.safetensors",
        }
    };
    // every tensor was produced exactly once, shard by shard
    // (each shard in its file order: descending dtype, then name)
    assert_eq!(
        calls,
        [
            "embed",
            "layers.0.b",
            "layers.0.w",
            "layers.1.idx",
            "layers.1.w",
            "layers.1.n"
        ]
    );

    // the index, as transformers writes it
    let index_path = dir.path().join("model.safetensors.index.json");
    let text = std::fs::read_to_string(&index_path).unwrap();
    let mut expected =
        String::from("{\n  \"metadata\": {\n    \"total_size\": 324\n  },\n  \"weight_map\": {\n");
    let mut names: Vec<&str> = t.specs.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    let lines: Vec<String> = names
        .iter()
        .map(|n| format!("    \"{n}\": \"{}\"", shard_of(n)))
        .collect();
    expected.push_str(&lines.join(",\n"));
    expected.push_str("\n  }\n}\n");
    assert_eq!(text, expected);

    // each shard is a valid file for the reference crate, with the per-shard metadata
    for file in &out.files {
        let bytes = std::fs::read(file).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        for (name, view) in st.tensors() {
            assert_eq!(shard_of(&name), file.file_name().unwrap().to_str().unwrap());
            assert_eq!(view.data(), &t.data[&name][..]);
        }
        assert_eq!(
            SafetensorsFile::open(file).unwrap().metadata(),
            Some(&metadata)
        );
    }

    for mode in [ReadMode::Mmap, ReadMode::Buffered] {
        let ck = Checkpoint::open_with(dir.path(), mode).unwrap();
        let Checkpoint::Sharded(s) = &ck else {
            panic!("not sharded")
        };
        assert_eq!(s.total_size(), Some(324));
        // order: shard file names, then names within each shard
        assert_eq!(
            ck.names().collect::<Vec<_>>(),
            [
                "embed",
                "layers.0.b",
                "layers.0.w",
                "layers.1.idx",
                "layers.1.n",
                "layers.1.w"
            ]
        );
        for v in ck.tensors() {
            let v = v.unwrap();
            assert_eq!(v.data(), &t.data[v.name()][..]);
            assert_eq!(
                v.path().file_name().unwrap().to_str().unwrap(),
                shard_of(v.name())
            );
        }
        assert_eq!(
            ck.tensor("layers.1.n").unwrap().data(),
            &t.data["layers.1.n"][..]
        );
        assert!(matches!(
            ck.tensor("missing").unwrap_err().kind,
            ErrorKind::TensorNotFound(_)
        ));
    }
    // opening the index file directly works too
    assert_eq!(Checkpoint::open(&index_path).unwrap().len(), 6);
}

/// A two-shard checkpoint to break in various ways.
fn two_shards(dir: &Path) -> Tensors {
    let t = Tensors::random(
        8,
        &[
            ("a", Dtype::F32, &[4]),
            ("b", Dtype::F32, &[4]),
            ("c", Dtype::F32, &[4]),
        ],
    );
    write_checkpoint(
        dir,
        &t.specs,
        None,
        &options(32),
        &mut t.source(&mut Vec::new()),
    )
    .unwrap();
    t
}

fn rewrite_index(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> std::path::PathBuf {
    let path = dir.join("model.safetensors.index.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();
    path
}

#[test]
fn a_missing_shard_is_named() {
    let dir = tempfile::tempdir().unwrap();
    two_shards(dir.path());
    std::fs::remove_file(dir.path().join("model-00002-of-00002.safetensors")).unwrap();
    let e = ShardedCheckpoint::open(dir.path().join("model.safetensors.index.json")).unwrap_err();
    assert!(
        matches!(&e.kind, ErrorKind::MissingShard { shard } if shard == "model-00002-of-00002.safetensors"),
        "{e}"
    );
    assert!(e.path.ends_with("model.safetensors.index.json"));
}

#[test]
fn a_tensor_absent_from_its_shard_is_named() {
    let dir = tempfile::tempdir().unwrap();
    two_shards(dir.path());
    let index = rewrite_index(dir.path(), |v| {
        v["weight_map"]["ghost"] = "model-00001-of-00002.safetensors".into();
    });
    let e = ShardedCheckpoint::open(&index).unwrap_err();
    assert!(
        matches!(&e.kind, ErrorKind::TensorNotInShard { tensor, .. } if tensor == "ghost"),
        "{e}"
    );
    // mapped to the wrong shard
    let index = rewrite_index(dir.path(), |v| {
        v["weight_map"].as_object_mut().unwrap().remove("ghost");
        v["weight_map"]["c"] = "model-00001-of-00002.safetensors".into();
    });
    let e = ShardedCheckpoint::open(&index).unwrap_err();
    assert!(
        matches!(&e.kind, ErrorKind::TensorNotInShard { tensor, .. } if tensor == "c"),
        "{e}"
    );
}

#[test]
fn a_shard_tensor_missing_from_the_index_is_named() {
    let dir = tempfile::tempdir().unwrap();
    two_shards(dir.path());
    let index = rewrite_index(dir.path(), |v| {
        v["weight_map"].as_object_mut().unwrap().remove("b");
    });
    let e = ShardedCheckpoint::open(&index).unwrap_err();
    assert!(
        matches!(&e.kind, ErrorKind::TensorNotInIndex { tensor, .. } if tensor == "b"),
        "{e}"
    );
}

#[test]
fn malformed_indexes() {
    let dir = tempfile::tempdir().unwrap();
    two_shards(dir.path());
    let path = dir.path().join("model.safetensors.index.json");
    for text in [
        "{",
        "[]",
        r#"{"metadata":{}}"#,
        r#"{"weight_map":{"a":3}}"#,
        r#"{"weight_map":[]}"#,
    ] {
        std::fs::write(&path, text).unwrap();
        let e = ShardedCheckpoint::open(&path).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::BadIndex(_)), "{text}: {e}");
    }
    for shard in [
        "../model-00001-of-00002.safetensors",
        "/etc/passwd",
        "sub/x.safetensors",
        "..",
    ] {
        std::fs::write(
            &path,
            serde_json::json!({"weight_map": {"a": shard}}).to_string(),
        )
        .unwrap();
        let e = ShardedCheckpoint::open(&path).unwrap_err();
        assert!(
            matches!(&e.kind, ErrorKind::BadShardName(s) if s == shard),
            "{shard}: {e}"
        );
    }
    let e = Checkpoint::open(tempfile::tempdir().unwrap().path()).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::NoCheckpoint), "{e}");
}

#[test]
fn a_failed_sharded_write_leaves_nothing() {
    let t = Tensors::random(
        9,
        &[
            ("a", Dtype::F32, &[4]),
            ("b", Dtype::F32, &[4]),
            ("c", Dtype::F32, &[4]),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    let mut source = |info: &crate::safetensors::TensorInfo, out: &mut dyn std::io::Write| {
        n += 1;
        if n == 3 {
            return Err(std::io::Error::other("disk on fire"));
        }
        out.write_all(&t.data[info.name()])
    };
    let e = write_checkpoint(dir.path(), &t.specs, None, &options(32), &mut source).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Source { .. }), "{e}");
    assert!(
        dir_listing(dir.path()).is_empty(),
        "{:?}",
        dir_listing(dir.path())
    );
}
