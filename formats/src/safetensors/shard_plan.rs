//! How tensors are split into shards: `huggingface_hub.split_state_dict_into_shards_factory`
//! (used by `transformers`' `save_pretrained`), applied to the tensors in the caller's order.

/// Groups tensor indices `0..sizes.len()` into shards of at most `max_shard_size` bytes of tensor
/// data, walking the tensors in order: a tensor larger than the limit gets a shard of its own
/// (appended at once, before the shard being filled), and a tensor that would push the current
/// shard over the limit closes it. Empty shards are never produced.
pub fn plan_shards(sizes: &[u64], max_shard_size: u64) -> Vec<Vec<usize>> {
    let mut shards = Vec::new();
    let mut current = Vec::new();
    let mut current_size = 0u64;
    for (i, &size) in sizes.iter().enumerate() {
        if size > max_shard_size {
            shards.push(vec![i]);
            continue;
        }
        if current_size.saturating_add(size) > max_shard_size {
            shards.push(std::mem::take(&mut current));
            current_size = 0;
        }
        current.push(i);
        current_size += size;
    }
    if !current.is_empty() {
        shards.push(current);
    }
    shards
}

/// The file name of shard `i` (0-based) of `n`: `{stem}-{i+1:05}-of-{n:05}.safetensors`.
pub fn shard_file_name(stem: &str, i: usize, n: usize) -> String {
    format!("{stem}-{:05}-of-{n:05}.safetensors", i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_fill_in_order_and_oversized_tensors_stand_alone() {
        assert_eq!(plan_shards(&[4, 4, 4], 8), vec![vec![0, 1], vec![2]]);
        assert_eq!(plan_shards(&[4, 4, 4], 12), vec![vec![0, 1, 2]]);
        // the oversized tensor 1 is appended before the shard holding tensor 0 is closed
        assert_eq!(
            plan_shards(&[4, 20, 4, 4], 8),
            vec![vec![1], vec![0, 2], vec![3]]
        );
        assert_eq!(plan_shards(&[20], 8), vec![vec![0]]);
        assert_eq!(plan_shards(&[0, 0, 8, 0], 8), vec![vec![0, 1, 2, 3]]);
        assert!(plan_shards(&[], 8).is_empty());
    }

    #[test]
    fn names_follow_transformers() {
        assert_eq!(
            shard_file_name("model", 0, 3),
            "model-00001-of-00003.safetensors"
        );
        assert_eq!(
            shard_file_name("model", 11, 12),
            "model-00012-of-00012.safetensors"
        );
    }
}
