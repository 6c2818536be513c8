//! A `qforge convert` SOURCE given as a Hugging Face repo id, `org/name[@revision]`.
//!
//! [`resolve`] turns SOURCE into a checkpoint directory: an existing local directory as it is;
//! otherwise the repo's snapshot in the Hugging Face cache (the standard
//! `models--org--name/{refs/<rev>, snapshots/<commit>/...}` layout), used with no network when
//! it already holds the checkpoint for that revision or when `HF_HUB_OFFLINE` is set, and
//! downloaded with hf-hub (honouring `HF_ENDPOINT` and `HF_TOKEN`) otherwise.
//!
//! The checkpoint is then presented through a directory named after the repo (links to the
//! snapshot's files), so the GGUF metadata derived from the directory name (`general.name`,
//! ...) is what converting a local download `name/` gives, not the commit hash.

use hf_hub::api::sync::ApiBuilder;
use hf_hub::{Cache, Repo, RepoType};
use std::path::{Path, PathBuf};

/// Tokenizer and generation files downloaded when the repo has them (`merges.txt` and
/// `vocab.json` too: the special-vocabulary reader falls back on merges.txt, as gguf-py does).
pub const TOKENIZER_FILES: &[&str] = &[
    "tokenizer.json",
    "tokenizer.model",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "generation_config.json",
    "chat_template.jinja",
    "merges.txt",
    "vocab.json",
];

const INDEX_FILE: &str = "model.safetensors.index.json";
const SINGLE_FILE: &str = "model.safetensors";

/// Errors resolving a hub SOURCE.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// SOURCE is neither a local directory nor a valid repo id.
    #[error("{source_arg}: not a local directory, nor a Hugging Face repo id (org/name[@revision]): {reason}")]
    InvalidId {
        /// The SOURCE as given.
        source_arg: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Offline and the cache does not hold the checkpoint.
    #[error("{repo}@{revision}: not in the Hugging Face cache {cache} ({what}) and HF_HUB_OFFLINE is set")]
    NotCached {
        /// `org/name`.
        repo: String,
        /// The revision asked for.
        revision: String,
        /// The cache directory searched.
        cache: PathBuf,
        /// What is missing.
        what: String,
    },
    /// A request to the hub failed.
    #[error("{repo}@{revision}: downloading {file}: {message}")]
    Download {
        /// `org/name`.
        repo: String,
        /// The revision asked for.
        revision: String,
        /// The file being fetched (or `(repo info)`).
        file: String,
        /// The hf-hub error.
        message: String,
    },
    /// A cached or downloaded file could not be read or linked.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

/// A parsed repo id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoId {
    /// `org/name`.
    pub repo: String,
    /// The revision (branch, tag or commit hash); `main` when not given.
    pub revision: String,
}

impl RepoId {
    /// Parses `org/name[@revision]`, with the hub's naming rules: each part of letters, digits,
    /// `-`, `_` and `.`, not starting or ending with `-` or `.`, no `--` or `..`, at most 96
    /// characters; a revision without whitespace or `..`.
    pub fn parse(s: &str) -> Result<RepoId, HubError> {
        let bad = |reason: &str| HubError::InvalidId {
            source_arg: s.to_string(),
            reason: reason.to_string(),
        };
        let (repo, revision) = match s.split_once('@') {
            Some((r, rev)) => (r, Some(rev)),
            None => (s, None),
        };
        let parts: Vec<&str> = repo.split('/').collect();
        if parts.len() != 2 {
            return Err(bad(
                "expected exactly one '/' between organisation and name",
            ));
        }
        for p in &parts {
            check_part(p).map_err(|r| bad(&r))?;
        }
        let revision = match revision {
            None => "main".to_string(),
            Some("") => return Err(bad("empty revision after '@'")),
            Some(r) => {
                if r.chars().any(|c| c.is_whitespace() || c.is_control())
                    || r.contains("..")
                    || r.starts_with('/')
                    || r.ends_with('/')
                {
                    return Err(bad(&format!("invalid revision {r:?}")));
                }
                r.to_string()
            }
        };
        Ok(RepoId {
            repo: repo.to_string(),
            revision,
        })
    }

    /// The repo's name (after the '/').
    pub fn name(&self) -> &str {
        self.repo.rsplit('/').next().unwrap_or(&self.repo)
    }

    /// The repo's folder in the cache, `models--org--name`.
    pub fn folder_name(&self) -> String {
        format!("models--{}", self.repo.replace('/', "--"))
    }
}

fn check_part(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("empty organisation or name".into());
    }
    if p.len() > 96 {
        return Err(format!("{p:?} is longer than 96 characters"));
    }
    if let Some(c) = p
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!("{p:?} contains {c:?}"));
    }
    if p.starts_with(['-', '.']) || p.ends_with(['-', '.']) {
        return Err(format!("{p:?} starts or ends with '-' or '.'"));
    }
    if p.contains("--") || p.contains("..") {
        return Err(format!("{p:?} contains '--' or '..'"));
    }
    Ok(())
}

/// The hub settings read from the environment.
#[derive(Debug, Clone)]
pub struct HubEnv {
    /// `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`.
    pub cache: PathBuf,
    /// `HF_HUB_OFFLINE` set to 1/true/yes/on.
    pub offline: bool,
    /// `$HF_ENDPOINT`, if set.
    pub endpoint: Option<String>,
    /// `$HF_TOKEN`, if set (otherwise hf-hub reads `$HF_HOME/token`).
    pub token: Option<String>,
}

impl HubEnv {
    /// Reads the environment.
    pub fn from_env() -> HubEnv {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let cache = if let Some(c) = var("HF_HUB_CACHE") {
            PathBuf::from(c)
        } else if let Some(h) = var("HF_HOME") {
            PathBuf::from(h).join("hub")
        } else {
            let home = var("HOME")
                .or_else(|| var("USERPROFILE"))
                .unwrap_or_else(|| ".".into());
            PathBuf::from(home).join(".cache/huggingface/hub")
        };
        let offline = var("HF_HUB_OFFLINE")
            .map(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
            .unwrap_or(false);
        HubEnv {
            cache,
            offline,
            endpoint: var("HF_ENDPOINT").map(|e| e.trim_end_matches('/').to_string()),
            token: var("HF_TOKEN"),
        }
    }
}

/// A resolved SOURCE: the directory to convert from. For a repo id it is a temporary directory
/// named after the repo holding links to the snapshot's files, removed when this is dropped.
#[derive(Debug)]
pub struct ResolvedSource {
    dir: PathBuf,
    view_root: Option<PathBuf>,
    /// The repo and its snapshot directory, for a repo id.
    pub hub: Option<(RepoId, PathBuf)>,
}

impl ResolvedSource {
    /// The checkpoint directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for ResolvedSource {
    fn drop(&mut self) {
        if let Some(root) = &self.view_root {
            let _ = std::fs::remove_dir_all(root);
        }
    }
}

/// Resolves SOURCE: an existing local directory wins (as does anything spelled as a path or
/// naming an existing file, left to the converter to refuse); otherwise a repo id, taken from
/// the cache or downloaded (see the module documentation).
pub fn resolve(source: &Path, env: &HubEnv) -> Result<ResolvedSource, HubError> {
    // An existing directory, and anything that is spelled as a path (absolute, `./`, `../`,
    // `~`) or exists as a file, is a local SOURCE: its errors are the converter's.
    let s = source.to_string_lossy();
    let path_like = source.is_absolute()
        || s.starts_with("./")
        || s.starts_with("../")
        || s.starts_with('~')
        || s.contains('\\')
        || source.exists();
    if path_like {
        return Ok(ResolvedSource {
            dir: source.to_path_buf(),
            view_root: None,
            hub: None,
        });
    }
    let s = source.to_str().ok_or_else(|| HubError::InvalidId {
        source_arg: source.display().to_string(),
        reason: "not valid UTF-8".into(),
    })?;
    let id = RepoId::parse(s)?;
    let snapshot = match cached_snapshot(&env.cache, &id) {
        Ok(dir) => dir,
        Err(what) if env.offline => {
            return Err(HubError::NotCached {
                repo: id.repo.clone(),
                revision: id.revision.clone(),
                cache: env.cache.clone(),
                what,
            })
        }
        Err(_) => download(&id, env)?,
    };
    let (view_root, dir) = make_view(&snapshot, id.name())?;
    Ok(ResolvedSource {
        dir,
        view_root: Some(view_root),
        hub: Some((id, snapshot)),
    })
}

/// The cached snapshot directory for `id` when it holds a whole checkpoint (config.json and the
/// safetensors index with every shard it lists, or model.safetensors); otherwise what is missing.
pub fn cached_snapshot(cache: &Path, id: &RepoId) -> Result<PathBuf, String> {
    let repo_dir = cache.join(id.folder_name());
    if !repo_dir.is_dir() {
        return Err(format!("no {}", id.folder_name()));
    }
    let is_commit = id.revision.len() == 40 && id.revision.chars().all(|c| c.is_ascii_hexdigit());
    let commit = if is_commit && repo_dir.join("snapshots").join(&id.revision).is_dir() {
        id.revision.clone()
    } else {
        let r = repo_dir.join("refs").join(&id.revision);
        match std::fs::read_to_string(&r) {
            Ok(c) => c.trim().to_string(),
            Err(_) => return Err(format!("no refs/{} and no such snapshot", id.revision)),
        }
    };
    if commit.is_empty() || commit.contains(['/', '\\']) || commit.contains("..") {
        return Err(format!("refs/{} holds no commit hash", id.revision));
    }
    let snap = repo_dir.join("snapshots").join(&commit);
    let missing = missing_files(&snap);
    if missing.is_empty() {
        Ok(snap)
    } else {
        Err(format!("snapshots/{commit} lacks {}", missing.join(", ")))
    }
}

/// The checkpoint files `dir` lacks: config.json, and the shards the safetensors index lists
/// (or model.safetensors when there is no index).
fn missing_files(dir: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    if !dir.join("config.json").is_file() {
        missing.push("config.json".to_string());
    }
    match shard_names(&dir.join(INDEX_FILE)) {
        Ok(Some(shards)) => missing.extend(shards.into_iter().filter(|s| !dir.join(s).is_file())),
        Ok(None) => {
            if !dir.join(SINGLE_FILE).is_file() {
                missing.push(format!("{INDEX_FILE} or {SINGLE_FILE}"));
            }
        }
        Err(e) => missing.push(format!("{INDEX_FILE} ({e})")),
    }
    missing
}

/// The shard files a safetensors index lists, sorted and deduplicated (`None`: no index file).
fn shard_names(index: &Path) -> Result<Option<Vec<String>>, String> {
    let text = match std::fs::read_to_string(index) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let map = v
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or("no weight_map object")?;
    let mut names = Vec::with_capacity(map.len());
    for f in map.values() {
        let f = f.as_str().ok_or("a weight_map value is not a string")?;
        if f.is_empty() || f.contains("..") || f.starts_with('/') || f.contains('\\') {
            return Err(format!("bad shard name {f:?}"));
        }
        names.push(f.to_string());
    }
    names.sort();
    names.dedup();
    Ok(Some(names))
}

/// Downloads the checkpoint files of `id` into the cache (with progress bars) and returns the
/// snapshot directory.
fn download(id: &RepoId, env: &HubEnv) -> Result<PathBuf, HubError> {
    let err = |file: &str, message: String| HubError::Download {
        repo: id.repo.clone(),
        revision: id.revision.clone(),
        file: file.to_string(),
        message,
    };
    let mut builder = ApiBuilder::from_cache(Cache::new(env.cache.clone()))
        .with_progress(true)
        .with_retries(2);
    if let Some(e) = &env.endpoint {
        builder = builder.with_endpoint(e.clone());
    }
    if env.token.is_some() {
        builder = builder.with_token(env.token.clone());
    }
    let api = builder
        .build()
        .map_err(|e| err("(client setup)", e.to_string()))?;
    let repo = api.repo(Repo::with_revision(
        id.repo.clone(),
        RepoType::Model,
        id.revision.clone(),
    ));
    let info = repo.info().map_err(|e| err("(repo info)", e.to_string()))?;
    let listed: std::collections::HashSet<&str> =
        info.siblings.iter().map(|s| s.rfilename.as_str()).collect();
    if info.sha.len() != 40 || !info.sha.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(err(
            "(repo info)",
            format!("bad commit hash {:?}", info.sha),
        ));
    }
    let snap = env
        .cache
        .join(id.folder_name())
        .join("snapshots")
        .join(&info.sha);
    let fetch = |file: &str| -> Result<PathBuf, HubError> {
        let local = snap.join(file);
        if local.is_file() {
            return Ok(local);
        }
        repo.download(file).map_err(|e| err(file, e.to_string()))
    };
    if !listed.contains("config.json") {
        return Err(err("config.json", "not in the repo".into()));
    }
    fetch("config.json")?;
    let shards = if listed.contains(INDEX_FILE) {
        let index = fetch(INDEX_FILE)?;
        shard_names(&index)
            .map_err(|e| err(INDEX_FILE, e))?
            .unwrap_or_default()
    } else if listed.contains(SINGLE_FILE) {
        vec![SINGLE_FILE.to_string()]
    } else {
        return Err(err(
            SINGLE_FILE,
            format!("the repo has neither {INDEX_FILE} nor {SINGLE_FILE}"),
        ));
    };
    for s in &shards {
        fetch(s)?;
    }
    for t in TOKENIZER_FILES {
        if listed.contains(t) {
            fetch(t)?;
        }
    }
    let missing = missing_files(&snap);
    if !missing.is_empty() {
        return Err(err(
            &missing.join(", "),
            format!("missing from {} after the download", snap.display()),
        ));
    }
    Ok(snap)
}

/// A fresh temporary directory holding `<name>/`, with a link to each file of `snapshot`.
fn make_view(snapshot: &Path, name: &str) -> Result<(PathBuf, PathBuf), HubError> {
    let io = |path: &Path, e: std::io::Error| HubError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let base = std::env::temp_dir();
    let mut n = 0u32;
    let root = loop {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let cand = base.join(format!("qforge-hub-{}-{nanos:08x}-{n}", std::process::id()));
        match std::fs::create_dir(&cand) {
            Ok(()) => break cand,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 100 => n += 1,
            Err(e) => return Err(io(&cand, e)),
        }
    };
    let dir = root.join(name);
    let filled = (|| {
        std::fs::create_dir(&dir).map_err(|e| io(&dir, e))?;
        for entry in std::fs::read_dir(snapshot).map_err(|e| io(snapshot, e))? {
            let entry = entry.map_err(|e| io(snapshot, e))?;
            let target = std::fs::canonicalize(entry.path()).map_err(|e| io(&entry.path(), e))?;
            link(&target, &dir.join(entry.file_name())).map_err(|e| io(&entry.path(), e))?;
        }
        Ok(())
    })();
    match filled {
        Ok(()) => Ok((root, dir)),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&root);
            Err(e)
        }
    }
}

#[cfg(unix)]
fn link(target: &Path, at: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, at)
}

#[cfg(windows)]
fn link(target: &Path, at: &Path) -> std::io::Result<()> {
    if target.is_dir() {
        std::os::windows::fs::symlink_dir(target, at)
    } else {
        std::fs::hard_link(target, at).or_else(|_| std::fs::copy(target, at).map(|_| ()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ids() {
        let id = RepoId::parse("meta-llama/Llama-3.1-8B").unwrap();
        assert_eq!(id.repo, "meta-llama/Llama-3.1-8B");
        assert_eq!(id.revision, "main");
        assert_eq!(id.name(), "Llama-3.1-8B");
        assert_eq!(id.folder_name(), "models--meta-llama--Llama-3.1-8B");
        let id = RepoId::parse("org/name@refs/pr/1").unwrap();
        assert_eq!(id.revision, "refs/pr/1");
        for bad in [
            "name",
            "a/b/c",
            "/name",
            "org/",
            "org/na me",
            "org/-x",
            "org/x..y",
            "org/a--b",
            "org/name@",
            "org/name@a b",
            "org/name@../x",
        ] {
            assert!(RepoId::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
