//! The checkpoint's tensors in the converter's order (`ModelBase.index_tensors`): safetensors
//! parts in sorted file-name order (from the index's weight map when there is one), tensor names
//! sorted within each part, each name passed through the `filter_tensors` chain.

use super::error::ConvertError;
use qforge_formats::safetensors::{Dtype, SafetensorsFile, TensorView, INDEX_FILE_NAME};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// One tensor of the checkpoint.
#[derive(Clone, Debug)]
pub struct SourceTensor {
    /// The name after `filter_tensors` (what the model class sees).
    pub name: String,
    /// The name stored in the file.
    pub stored_name: String,
    /// Index into [`Sources::files`].
    pub file: usize,
    /// Stored dtype.
    pub dtype: Dtype,
    /// Stored shape (outermost first).
    pub shape: Vec<u64>,
}

/// The opened safetensors parts and their tensors in order.
pub struct Sources {
    /// Opened parts, sorted by file name.
    pub files: Vec<SafetensorsFile>,
    /// Tensors in the converter's iteration order.
    pub tensors: Vec<SourceTensor>,
}

/// `TextModel.filter_tensors` + `ModelBase.filter_tensors` (+ LlamaModel's `text_model.`).
fn filter_name(name: &str) -> Option<String> {
    const PREFIXES: &[&str] = &[
        "mlp",
        "vit.",
        "vpm.",
        "siglip2.",
        "conformer.",
        "merger.",
        "resampler.",
        "sound_encoder.",
        "sound_projection.",
        "speech_embeddings.",
    ];
    const INFIXES: &[&str] = &[
        "visual.",
        "vision.",
        "audio.",
        "talker.",
        "vision_",
        "audio_",
        "token2wav.",
        "code2wav.",
        "projector.",
        "pre_mm_projector_norm",
        "image_newline",
        "view_seperator",
        "patch_embed",
        "patch_embedding",
        "patch_merger.",
        "patch_merge_mlp.",
        "model.connector.",
    ];
    let name = name.replace("text_model.", "");
    if PREFIXES.iter().any(|p| name.starts_with(p)) || INFIXES.iter().any(|i| name.contains(i)) {
        return None;
    }
    let mut name = name;
    if name.ends_with("e_score_correction_bias") {
        name = name.replace("e_score_correction_bias", "e_score_correction.bias");
    }
    if name.contains("language_model.") {
        name = name.replace("language_model.", "");
    }
    Some(name)
}

/// Opens the checkpoint in `dir`. `skip` is the model class's own filter.
pub fn open(dir: &Path, skip: fn(&str) -> bool) -> Result<Sources, ConvertError> {
    let listing = std::fs::read_dir(dir).map_err(|e| ConvertError::io(dir, e))?;
    let mut part_names = Vec::new();
    for entry in listing {
        let entry = entry.map_err(|e| ConvertError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("model") && name.ends_with(".safetensors") {
            part_names.push(name);
        }
    }
    part_names.sort();
    let index_path = dir.join(INDEX_FILE_NAME);
    let mut index_names: Option<(BTreeSet<String>, HashMap<String, String>)> = None;
    if index_path.is_file() {
        let index = super::config::read_json_object(&index_path)?;
        let Some(Value::Object(map)) = index.get("weight_map") else {
            return Err(ConvertError::config(&index_path, "no weight_map object"));
        };
        let mut parts = BTreeSet::new();
        let mut names = BTreeSet::new();
        let mut owner = HashMap::new();
        for (tensor, file) in map {
            let Some(file) = file.as_str() else {
                return Err(ConvertError::config(
                    &index_path,
                    format!("weight_map entry {tensor:?} is not a file name"),
                ));
            };
            if file.is_empty() || file.contains(['/', '\\', '\0']) || file == "." || file == ".." {
                return Err(ConvertError::config(
                    &index_path,
                    format!("weight_map names the file {file:?}, which is not a plain file name"),
                ));
            }
            parts.insert(file.to_string());
            names.insert(tensor.clone());
            owner.insert(tensor.clone(), file.to_string());
        }
        for p in &parts {
            if !dir.join(p).is_file() {
                return Err(ConvertError::config(
                    &index_path,
                    format!("shard {p:?} listed in the weight map is missing"),
                ));
            }
        }
        part_names = parts.into_iter().collect();
        index_names = Some((names, owner));
    }
    if part_names.is_empty() {
        return Err(ConvertError::NoWeights(dir.to_path_buf()));
    }
    let mut files = Vec::with_capacity(part_names.len());
    let mut tensors: Vec<SourceTensor> = Vec::new();
    let mut position: HashMap<String, usize> = HashMap::new();
    let mut from_parts = BTreeSet::new();
    for (fi, part) in part_names.iter().enumerate() {
        let file = SafetensorsFile::open(dir.join(part))?;
        let mut infos: Vec<_> = file.infos().iter().collect();
        infos.sort_by(|a, b| a.name().cmp(b.name()));
        for info in infos {
            from_parts.insert(info.name().to_string());
            if skip(info.name()) {
                continue;
            }
            let Some(name) = filter_name(info.name()) else {
                continue;
            };
            let t = SourceTensor {
                name: name.clone(),
                stored_name: info.name().to_string(),
                file: fi,
                dtype: info.dtype(),
                shape: info.shape().to_vec(),
            };
            match position.get(&name) {
                Some(&i) => tensors[i] = t,
                None => {
                    position.insert(name, tensors.len());
                    tensors.push(t);
                }
            }
        }
        files.push(file);
    }
    if let Some((names, owner)) = index_names {
        if let Some(missing) = names.difference(&from_parts).next() {
            let shard = owner.get(missing).cloned().unwrap_or_default();
            return Err(ConvertError::tensor(
                dir.join(&shard),
                missing.clone(),
                format!("listed in {INDEX_FILE_NAME} but not stored in {shard}"),
            ));
        }
        if let Some(extra) = from_parts.difference(&names).next() {
            return Err(ConvertError::tensor(
                &index_path,
                extra.clone(),
                "stored in a shard but not listed in the weight map",
            ));
        }
    }
    Ok(Sources { files, tensors })
}

impl Sources {
    /// The path of the file holding `t`.
    pub fn path_of(&self, t: &SourceTensor) -> PathBuf {
        self.files[t.file].path().to_path_buf()
    }

    /// The tensor's stored data, checked to be of a float dtype.
    pub fn view(&self, t: &SourceTensor) -> Result<TensorView<'_>, ConvertError> {
        let view = self.files[t.file].tensor(&t.stored_name)?;
        if !view.dtype().is_float() {
            return Err(ConvertError::tensor(
                self.path_of(t),
                &t.stored_name,
                format!("dtype {} is not a float type", view.dtype().name()),
            ));
        }
        Ok(view)
    }

    /// The tensor's values as f32 (exact for f16, bf16 and f32).
    pub fn read_f32(&self, t: &SourceTensor) -> Result<Vec<f32>, ConvertError> {
        Ok(self.view(t)?.to_f32()?)
    }

    /// Lets the kernel drop the tensor's mapped pages (they are read again if it is used again),
    /// so that a conversion's resident memory stays at the few tensors in flight.
    pub fn release(&self, t: &SourceTensor) {
        let file = &self.files[t.file];
        if let Some(info) = file.header().tensor(&t.stored_name) {
            file.release(info);
        }
    }
}
