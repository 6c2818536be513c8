//! Byte equality with `safetensors::serialize` and reading our files with the crate.

use super::every_dtype;
use crate::safetensors::{write_file, Dtype, SafetensorsFile};
use std::collections::{BTreeMap, HashMap};

fn crate_dtype(d: Dtype) -> safetensors::Dtype {
    serde_json::from_value(serde_json::Value::String(d.name().into())).unwrap()
}

/// `safetensors::serialize` of the same tensors.
fn reference_bytes(t: &super::Tensors, metadata: Option<HashMap<String, String>>) -> Vec<u8> {
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = t
        .specs
        .iter()
        .map(|s| {
            let shape: Vec<usize> = s.shape.iter().map(|&d| d as usize).collect();
            let view =
                safetensors::tensor::TensorView::new(crate_dtype(s.dtype), shape, &t.data[&s.name])
                    .unwrap();
            (s.name.clone(), view)
        })
        .collect();
    safetensors::serialize(views, metadata).unwrap()
}

#[test]
fn files_equal_the_reference_serializer_byte_for_byte() {
    let t = every_dtype();
    let dir = tempfile::tempdir().unwrap();
    let cases: [Option<BTreeMap<String, String>>; 3] = [
        None,
        Some(BTreeMap::new()),
        Some([("format".to_owned(), "pt".to_owned())].into()),
    ];
    for (i, metadata) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("m{i}.safetensors"));
        let mut calls = Vec::new();
        write_file(
            &path,
            &t.specs,
            metadata.as_ref(),
            &mut t.source(&mut calls),
        )
        .unwrap();
        let expected = reference_bytes(&t, metadata.map(|m| m.into_iter().collect()));
        assert_eq!(std::fs::read(&path).unwrap(), expected, "metadata case {i}");
    }
}

#[test]
fn an_empty_file_equals_the_reference_serializer() {
    let t = super::Tensors::random(3, &[]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.safetensors");
    write_file(&path, &t.specs, None, &mut t.source(&mut Vec::new())).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), reference_bytes(&t, None));
    assert!(SafetensorsFile::open(&path).unwrap().is_empty());
}

#[test]
fn the_crate_reads_what_we_write() {
    let t = every_dtype();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let metadata: BTreeMap<String, String> = [("k".to_owned(), "v\u{e9}\"".to_owned())].into();
    write_file(
        &path,
        &t.specs,
        Some(&metadata),
        &mut t.source(&mut Vec::new()),
    )
    .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let (_, crate_meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(
        crate_meta
            .metadata()
            .as_ref()
            .unwrap()
            .get("k")
            .map(String::as_str),
        Some("v\u{e9}\"")
    );
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.len(), t.specs.len());
    for s in &t.specs {
        let v = st.tensor(&s.name).unwrap();
        assert_eq!(v.dtype(), crate_dtype(s.dtype), "{}", s.name);
        assert_eq!(
            v.shape().iter().map(|&d| d as u64).collect::<Vec<_>>(),
            s.shape,
            "{}",
            s.name
        );
        assert_eq!(v.data(), &t.data[&s.name][..], "{}", s.name);
    }
}

#[test]
fn we_read_what_the_crate_writes() {
    let t = every_dtype();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ref.safetensors");
    std::fs::write(
        &path,
        reference_bytes(&t, Some([("a".to_owned(), "b".to_owned())].into())),
    )
    .unwrap();
    let f = SafetensorsFile::open(&path).unwrap();
    assert_eq!(
        f.metadata().unwrap().get("a").map(String::as_str),
        Some("b")
    );
    for s in &t.specs {
        let v = f.tensor(&s.name).unwrap();
        assert_eq!((v.dtype(), v.shape()), (s.dtype, &s.shape[..]));
        assert_eq!(v.data(), &t.data[&s.name][..]);
    }
}
