//! Writing then reading, in both read modes; the writer's streaming order and failure handling.

use super::every_dtype;
use crate::safetensors::{
    layout, temp_path, write_file, Dtype, ErrorKind, ReadMode, SafetensorsFile, TensorInfo,
    TensorSpec,
};
use std::collections::BTreeMap;
use std::io::{self, Write};

#[test]
fn round_trip_in_both_read_modes() {
    let t = every_dtype();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let metadata: BTreeMap<String, String> =
        [("format".into(), "pt".into()), ("b".into(), "2".into())].into();
    write_file(
        &path,
        &t.specs,
        Some(&metadata),
        &mut t.source(&mut Vec::new()),
    )
    .unwrap();
    for mode in [ReadMode::Mmap, ReadMode::Buffered] {
        let f = SafetensorsFile::open_with(&path, mode).unwrap();
        assert_eq!(f.read_mode(), mode);
        assert_eq!(f.metadata(), Some(&metadata));
        let mut expected_names: Vec<&str> = t.specs.iter().map(|s| s.name.as_str()).collect();
        expected_names.sort_unstable();
        assert_eq!(f.names().collect::<Vec<_>>(), expected_names);
        let mut seen = 0;
        for view in f.tensors() {
            let view = view.unwrap();
            let spec = t.specs.iter().find(|s| s.name == view.name()).unwrap();
            assert_eq!(view.dtype(), spec.dtype);
            assert_eq!(view.shape(), &spec.shape[..]);
            assert_eq!(view.data(), &t.data[view.name()][..]);
            assert_eq!(view.n_elements(), spec.shape.iter().product::<u64>());
            seen += 1;
        }
        assert_eq!(seen, t.specs.len());
        assert!(matches!(
            f.tensor("nope").unwrap_err().kind,
            ErrorKind::TensorNotFound(_)
        ));
    }
}

#[test]
fn float_tensors_convert_to_f32_and_others_are_refused() {
    let values = [1.5f32, -0.25, 65504.0, 3.0e-8];
    let f32_bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let f16_bytes: Vec<u8> = values
        .iter()
        .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
        .collect();
    let bf16_bytes: Vec<u8> = values
        .iter()
        .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
        .collect();
    let e4m3: Vec<u8> = vec![0x38, 0xBE, 0x7E, 0x7F]; // 1.0, -1.75, 448, NaN
    let data: BTreeMap<&str, Vec<u8>> = [
        ("f32", f32_bytes),
        ("f16", f16_bytes),
        ("bf16", bf16_bytes),
        ("e4m3", e4m3),
        ("i32", vec![0; 16]),
    ]
    .into();
    let specs = vec![
        TensorSpec::new("f32", Dtype::F32, [2, 2]),
        TensorSpec::new("f16", Dtype::F16, [4]),
        TensorSpec::new("bf16", Dtype::BF16, [4]),
        TensorSpec::new("e4m3", Dtype::F8_E4M3, [4]),
        TensorSpec::new("i32", Dtype::I32, [4]),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.safetensors");
    let mut source = |t: &TensorInfo, out: &mut dyn Write| out.write_all(&data[t.name()]);
    write_file(&path, &specs, None, &mut source).unwrap();
    let f = SafetensorsFile::open(&path).unwrap();
    assert_eq!(f.tensor("f32").unwrap().to_f32().unwrap(), values);
    let h: Vec<f32> = values
        .iter()
        .map(|&v| half::f16::from_f32(v).to_f32())
        .collect();
    assert_eq!(f.tensor("f16").unwrap().to_f32().unwrap(), h);
    let b: Vec<f32> = values
        .iter()
        .map(|&v| half::bf16::from_f32(v).to_f32())
        .collect();
    assert_eq!(f.tensor("bf16").unwrap().to_f32().unwrap(), b);
    let e = f.tensor("e4m3").unwrap().to_f32().unwrap();
    assert_eq!(&e[..3], &[1.0, -1.75, 448.0]);
    assert!(e[3].is_nan());
    let err = f.tensor("i32").unwrap().to_f32().unwrap_err();
    assert!(matches!(
        err.kind,
        ErrorKind::NotFloat {
            dtype: Dtype::I32,
            ..
        }
    ));
    assert!(err.to_string().contains("f.safetensors"), "{err}");
    let mut short = [0f32; 3];
    let err = f
        .tensor("f32")
        .unwrap()
        .to_f32_into(&mut short)
        .unwrap_err();
    assert!(matches!(
        err.kind,
        ErrorKind::OutputLength {
            elements: 4,
            out_len: 3,
            ..
        }
    ));
}

#[test]
fn the_source_is_asked_for_tensors_in_file_order_once_each() {
    let t = every_dtype();
    let dir = tempfile::tempdir().unwrap();
    let mut calls = Vec::new();
    let written = write_file(
        dir.path().join("m.safetensors"),
        &t.specs,
        None,
        &mut t.source(&mut calls),
    )
    .unwrap();
    let order: Vec<String> = layout(&t.specs)
        .unwrap()
        .iter()
        .map(|i| i.name().to_owned())
        .collect();
    assert_eq!(calls, order);
    assert_eq!(
        written
            .iter()
            .map(|i| i.name().to_owned())
            .collect::<Vec<_>>(),
        order
    );
    // descending dtype, then name
    for w in written.windows(2) {
        assert!(
            (w[1].dtype(), w[0].name()) <= (w[0].dtype(), w[1].name()),
            "{} before {}",
            w[0].name(),
            w[1].name()
        );
    }
}

fn assert_nothing_left(dir: &std::path::Path, path: &std::path::Path) {
    assert!(!path.exists(), "{} was created", path.display());
    assert!(!temp_path(path).exists(), "temporary file left behind");
    assert_eq!(std::fs::read_dir(dir).unwrap().count(), 0);
}

#[test]
fn a_failing_or_miscounting_source_leaves_no_file() {
    let specs = vec![
        TensorSpec::new("a", Dtype::F32, [4]),
        TensorSpec::new("b", Dtype::F32, [2]),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");

    let mut short =
        |t: &TensorInfo, out: &mut dyn Write| out.write_all(&vec![0u8; t.byte_len() as usize - 1]);
    let err = write_file(&path, &specs, None, &mut short).unwrap_err();
    assert!(
        matches!(
            err.kind,
            ErrorKind::SourceLength {
                expected: 16,
                written: 15,
                ..
            }
        ),
        "{err}"
    );
    assert_nothing_left(dir.path(), &path);

    let mut long =
        |t: &TensorInfo, out: &mut dyn Write| out.write_all(&vec![0u8; t.byte_len() as usize + 3]);
    let err = write_file(&path, &specs, None, &mut long).unwrap_err();
    assert!(
        matches!(
            err.kind,
            ErrorKind::SourceLength {
                expected: 16,
                written: 19,
                ..
            }
        ),
        "{err}"
    );
    assert_nothing_left(dir.path(), &path);

    let mut failing = |t: &TensorInfo, _: &mut dyn Write| -> io::Result<()> {
        Err(io::Error::other(format!("cannot produce {}", t.name())))
    };
    let err = write_file(&path, &specs, None, &mut failing).unwrap_err();
    assert!(
        matches!(&err.kind, ErrorKind::Source { tensor, .. } if tensor == "a"),
        "{err}"
    );
    assert!(err.to_string().contains("cannot produce a"), "{err}");
    assert_nothing_left(dir.path(), &path);
}

#[test]
fn invalid_specs_are_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let mut never =
        |_: &TensorInfo, _: &mut dyn Write| -> io::Result<()> { panic!("source called") };
    for specs in [
        vec![
            TensorSpec::new("a", Dtype::F32, [1]),
            TensorSpec::new("a", Dtype::F16, [1]),
        ],
        vec![TensorSpec::new("__metadata__", Dtype::F32, [1])],
    ] {
        let err = write_file(&path, &specs, None, &mut never).unwrap_err();
        assert!(matches!(err.kind, ErrorKind::Usage(_)), "{err}");
    }
    let huge = vec![TensorSpec::new("h", Dtype::F64, [u64::MAX / 4, 2])];
    let err = write_file(&path, &huge, None, &mut never).unwrap_err();
    assert!(matches!(err.kind, ErrorKind::SizeOverflow { .. }), "{err}");
    let sum_overflows = vec![
        TensorSpec::new("x", Dtype::U8, [u64::MAX]),
        TensorSpec::new("y", Dtype::U8, [2]),
    ];
    let err = write_file(&path, &sum_overflows, None, &mut never).unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Usage(_)), "{err}");
    assert_nothing_left(dir.path(), &path);
}

#[test]
fn an_existing_file_is_replaced_only_on_success() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    std::fs::write(&path, b"old").unwrap();
    let specs = vec![TensorSpec::new("a", Dtype::U8, [2])];
    let mut failing =
        |_: &TensorInfo, _: &mut dyn Write| -> io::Result<()> { Err(io::Error::other("no")) };
    assert!(write_file(&path, &specs, None, &mut failing).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), b"old");
    let mut ok = |_: &TensorInfo, out: &mut dyn Write| out.write_all(&[7, 8]);
    write_file(&path, &specs, None, &mut ok).unwrap();
    assert_eq!(
        SafetensorsFile::open(&path)
            .unwrap()
            .tensor("a")
            .unwrap()
            .data(),
        &[7, 8]
    );
}
