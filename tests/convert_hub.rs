//! `qforge convert org/name[@revision]`: SOURCE as a Hugging Face repo id, resolved from a
//! fake cache (`$HF_HOME/hub`, standard layout) with no network; equal byte for byte to
//! converting the same checkpoint directory; clear refusals for uncached repos, incomplete
//! snapshots, malformed ids and unreachable endpoints.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const OTHER: &str = "fedcba9876543210fedcba9876543210fedcba98";

/// `$HF_HOME` with `models--org--llama2`: the llama2 fixture as snapshot COMMIT (files linked to
/// blobs, as huggingface_hub stores them), refs/main and refs/v1 -> COMMIT, refs/other -> OTHER,
/// a snapshot lacking its second shard.
fn fake_hf_home(base: &Path) -> PathBuf {
    let home = base.join("hf_home");
    let repo = home.join("hub").join("models--org--llama2");
    let blobs = repo.join("blobs");
    let snap = repo.join("snapshots").join(COMMIT);
    let other = repo.join("snapshots").join(OTHER);
    for d in [&blobs, &snap, &other, &repo.join("refs")] {
        std::fs::create_dir_all(d).unwrap();
    }
    let src = common::fixture("hf/llama2");
    let mut names: Vec<_> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    for (i, name) in names.iter().enumerate() {
        let blob = blobs.join(format!("blob{i:04}"));
        std::fs::copy(src.join(name), &blob).unwrap();
        std::os::unix::fs::symlink(format!("../../blobs/blob{i:04}"), snap.join(name)).unwrap();
        if name != "model-00002-of-00002.safetensors" {
            std::os::unix::fs::symlink(format!("../../blobs/blob{i:04}"), other.join(name))
                .unwrap();
        }
    }
    std::fs::write(repo.join("refs/main"), COMMIT).unwrap();
    std::fs::write(repo.join("refs/v1"), format!("{COMMIT}\n")).unwrap();
    std::fs::write(repo.join("refs/other"), OTHER).unwrap();
    home
}

/// `qforge convert SOURCE -o OUT --type f16` with HF_HOME set, TMPDIR in `base/tmp`, no
/// HF_HUB_CACHE and an endpoint nothing listens on (no request can reach the network).
fn convert(base: &Path, home: &Path, source: &str, out: &Path, offline: bool) -> Output {
    let tmp = base.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut cmd = common::qforge();
    cmd.arg("convert")
        .arg(source)
        .arg("-o")
        .arg(out)
        .args(["--type", "f16"])
        .env("HF_HOME", home)
        .env_remove("HF_HUB_CACHE")
        .env_remove("HF_TOKEN")
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .env("TMPDIR", &tmp);
    if offline {
        cmd.env("HF_HUB_OFFLINE", "1");
    } else {
        cmd.env_remove("HF_HUB_OFFLINE");
    }
    cmd.output().expect("run qforge")
}

fn reference(base: &Path) -> PathBuf {
    let r = base.join("ref.gguf");
    common::run_ok(
        Command::new(env!("CARGO_BIN_EXE_qforge"))
            .arg("convert")
            .arg(common::fixture("hf/llama2"))
            .arg("-o")
            .arg(&r)
            .args(["--type", "f16"]),
    );
    r
}

/// Asserts exit 1, every needle in stderr, no output file, and no temporary view left behind.
fn expect_failure(base: &Path, o: &Output, out: &Path, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stderr: {stderr}");
    for n in needles {
        assert!(
            stderr.contains(n),
            "stderr {stderr:?} does not mention {n:?}"
        );
    }
    assert!(!out.exists(), "{} was written", out.display());
    assert_tmp_empty(base);
}

fn assert_tmp_empty(base: &Path) {
    let left: Vec<_> = std::fs::read_dir(base.join("tmp")).unwrap().collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

#[test]
fn repo_id_equals_local_directory() {
    let base = common::scratch("convert_hub_equal");
    let home = fake_hf_home(&base);
    let r = reference(&base);
    for (i, source) in [
        "org/llama2".to_string(),
        "org/llama2@v1".to_string(),
        format!("org/llama2@{COMMIT}"),
    ]
    .iter()
    .enumerate()
    {
        for offline in [false, true] {
            let out = base.join(format!("out{i}-{offline}.gguf"));
            let o = convert(&base, &home, source, &out, offline);
            assert!(
                o.status.success(),
                "{source}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            common::assert_same_file(&r, &out);
            assert_tmp_empty(&base);
        }
    }
}

#[test]
fn uncached_repo_offline_fails_naming_it() {
    let base = common::scratch("convert_hub_uncached");
    let home = fake_hf_home(&base);
    let out = base.join("out.gguf");
    let o = convert(&base, &home, "org/absent-model", &out, true);
    expect_failure(&base, &o, &out, &["org/absent-model", "HF_HUB_OFFLINE"]);
    // a revision the cache has no ref for
    let o = convert(&base, &home, "org/llama2@v2", &out, true);
    expect_failure(&base, &o, &out, &["org/llama2@v2", "refs/v2"]);
}

#[test]
fn incomplete_snapshot_offline_names_the_missing_shard() {
    let base = common::scratch("convert_hub_incomplete");
    let home = fake_hf_home(&base);
    let out = base.join("out.gguf");
    let o = convert(&base, &home, "org/llama2@other", &out, true);
    expect_failure(
        &base,
        &o,
        &out,
        &["org/llama2@other", "model-00002-of-00002.safetensors"],
    );
}

#[test]
fn unreachable_endpoint_fails_naming_repo_and_file() {
    let base = common::scratch("convert_hub_network");
    let home = fake_hf_home(&base);
    let out = base.join("out.gguf");
    // not cached, not offline: the download is tried against an endpoint nobody listens on
    let o = convert(&base, &home, "org/absent-model", &out, false);
    expect_failure(&base, &o, &out, &["org/absent-model", "downloading"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stderr)
            .lines()
            .filter(|l| l.starts_with("error"))
            .count(),
        1
    );
}

#[test]
fn malformed_ids_are_refused() {
    let base = common::scratch("convert_hub_malformed");
    let home = fake_hf_home(&base);
    let out = base.join("out.gguf");
    for id in ["just-a-name", "org/na me", "a/b/c", "org/name@", "org/-bad"] {
        let o = convert(&base, &home, id, &out, false);
        expect_failure(&base, &o, &out, &[id, "repo id (org/name[@revision])"]);
    }
}
