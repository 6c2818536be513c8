//! Which Hugging Face architecture a GGUF model is exported as: the entry of the convert
//! architecture table ([`crate::convert::arch::ARCHITECTURES`]) whose `gguf_arch` matches.

use super::error::ExportError;
use super::meta::Meta;
use crate::convert::arch::{self, ArchSpec, Experts};

/// The `model_type` transformers expects for an entry.
pub fn model_type(spec: &ArchSpec) -> &'static str {
    match spec.hf_names[0] {
        "MistralForCausalLM" => "mistral",
        "MixtralForCausalLM" => "mixtral",
        "Qwen2ForCausalLM" => "qwen2",
        "Qwen3ForCausalLM" => "qwen3",
        "Qwen3MoeForCausalLM" => "qwen3_moe",
        "Gemma2ForCausalLM" => "gemma2",
        "Gemma3ForCausalLM" => "gemma3_text",
        "Phi3ForCausalLM" => "phi3",
        _ => "llama",
    }
}

/// The table entry to export `meta`'s model as. `requested` (an HF architecture name) wins when
/// given and its entry has the same GGUF architecture. Otherwise: `llama` models with experts
/// are Mixtral, those whose `general.name`/`general.basename` says "mistral" are Mistral, the
/// rest Llama; every other GGUF architecture has one entry.
pub fn choose(meta: &Meta, requested: Option<&str>) -> Result<&'static ArchSpec, ExportError> {
    let candidates: Vec<&'static ArchSpec> = arch::ARCHITECTURES
        .iter()
        .copied()
        .filter(|a| a.gguf_arch == meta.arch)
        .collect();
    if candidates.is_empty() {
        let mut names: Vec<&str> = arch::ARCHITECTURES.iter().map(|a| a.gguf_arch).collect();
        names.dedup();
        return Err(ExportError::UnsupportedArchitecture {
            path: meta.path.clone(),
            arch: meta.arch.clone(),
            supported: names.join(", "),
        });
    }
    if let Some(r) = requested {
        return candidates
            .iter()
            .copied()
            .find(|a| a.hf_names.contains(&r))
            .ok_or_else(|| {
                ExportError::meta(
                    &meta.path,
                    "general.architecture",
                    format!(
                        "a {} model cannot be exported as {r} (possible: {})",
                        meta.arch,
                        candidates
                            .iter()
                            .map(|a| a.hf_names[0])
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            });
    }
    if candidates.len() == 1 {
        return Ok(candidates[0]);
    }
    let experts = meta.opt_u64("expert_count")?.unwrap_or(0) > 0;
    let name = ["general.name", "general.basename"]
        .iter()
        .filter_map(|k| meta.any_str(k))
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    let pick = |f: &dyn Fn(&ArchSpec) -> bool| candidates.iter().copied().find(|a| f(a));
    let found = if experts {
        pick(&|a| a.experts != Experts::None)
    } else if name.contains("mistral") {
        pick(&|a| a.experts == Experts::None && a.hf_names[0] == "MistralForCausalLM")
    } else {
        pick(&|a| a.experts == Experts::None && a.hf_names[0] == "LlamaForCausalLM")
    };
    found.ok_or_else(|| {
        ExportError::meta(
            &meta.path,
            "general.architecture",
            format!("no Hugging Face architecture fits this {} model", meta.arch),
        )
    })
}
