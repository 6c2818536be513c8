//! Tensor-name mapping (`gguf-py/gguf/tensor_mapping.py`, restricted to the names these
//! architectures use; the entries were listed from `get_tensor_name_map` of the pinned gguf-py).

/// Maps HF tensor names (without `.weight` / `.bias`) to GGUF names.
pub struct NameMap {
    /// Whole-model tensors: (HF name, GGUF name).
    pub global: &'static [(&'static str, &'static str)],
    /// Per-block tensors: (HF name after `model.layers.N.`, GGUF name after `blk.N.`).
    pub block: &'static [(&'static str, &'static str)],
}

impl NameMap {
    /// `TensorNameMap.get_name(name, try_suffixes=(".weight", ".bias"))`.
    pub fn map(&self, name: &str, n_blocks: u64) -> Option<String> {
        if let Some(n) = self.map_base(name, n_blocks) {
            return Some(n);
        }
        for suffix in [".weight", ".bias"] {
            if let Some(base) = name.strip_suffix(suffix) {
                if let Some(n) = self.map_base(base, n_blocks) {
                    return Some(n + suffix);
                }
            }
        }
        None
    }

    fn map_base(&self, base: &str, n_blocks: u64) -> Option<String> {
        if let Some((_, g)) = self.global.iter().find(|(h, g)| *h == base || *g == base) {
            return Some(g.to_string());
        }
        let (bid, rest) = if let Some(r) = base.strip_prefix("model.layers.") {
            r.split_once('.')?
        } else {
            let r = base.strip_prefix("blk.")?;
            let (bid, rest) = r.split_once('.')?;
            let (_, g) = self.block.iter().find(|(_, g)| *g == rest)?;
            return canonical_bid(bid, n_blocks).map(|b| format!("blk.{b}.{g}"));
        };
        let b = canonical_bid(bid, n_blocks)?;
        let (_, g) = self.block.iter().find(|(h, _)| *h == rest)?;
        Some(format!("blk.{b}.{g}"))
    }
}

/// A block number as the mapping table spells it (`str(bid)` for bid < n_blocks).
fn canonical_bid(s: &str, n_blocks: u64) -> Option<u64> {
    let b: u64 = s.parse().ok()?;
    (b.to_string() == s && b < n_blocks).then_some(b)
}

/// The first all-decimal dot-separated part of a name (the converter's `bid`).
pub fn block_id(name: &str) -> Option<u64> {
    name.split('.')
        .find(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        .and_then(|p| p.parse().ok())
}
