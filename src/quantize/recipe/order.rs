//! The order in which `llama-quantize` visits tensors. The counter-based type rules depend on
//! it, and it is the order of the tensors in the output file.
//!
//! By default tensors come from `llama_model_loader::weights_map`, a `std::map` ordered by
//! `weight_name_comparer`: the block number that `sscanf(name, "blk.%d.", &layer)` reads (-1
//! when it reads none) compared numerically, then the name compared byte by byte. So the
//! non-block tensors (`output.weight`, `output_norm.weight`, `token_embd.weight`, ...) come
//! first, then `blk.0.*`, `blk.1.*`, ..., `blk.10.*` in numeric order.
//!
//! With `--keep-split` llama-quantize re-sorts that list by (split file index, data offset
//! within the split) with `std::sort`, i.e. the order of the input shards' data. Tensors are
//! unique in that key except for zero-byte tensors sharing an offset, whose relative order
//! `std::sort` leaves unspecified; [`keep_split_order`] keeps them in name order (a stable
//! sort of the name-ordered list).

use std::cmp::Ordering;

/// The block number `sscanf(name, "blk.%d.", &layer)` stores, or -1 when it stores none.
///
/// As glibc's `%d`: after the literal `blk.`, leading white space is skipped, an optional sign
/// and at least one digit are read, the value saturates to the 64-bit `long` range and is
/// then truncated to `int`. The trailing `.` of the format does not need to match.
pub fn layer_of(name: &str) -> i32 {
    let Some(rest) = name.as_bytes().strip_prefix(b"blk.") else {
        return -1;
    };
    let mut i = 0;
    while i < rest.len() && matches!(rest[i], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        i += 1;
    }
    let negative = match rest.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let start = i;
    let mut value: i128 = 0;
    while i < rest.len() && rest[i].is_ascii_digit() {
        value = (value * 10 + i128::from(rest[i] - b'0')).min(i128::from(i64::MAX) + 1);
        i += 1;
    }
    if i == start {
        return -1;
    }
    let value = if negative { -value } else { value };
    let long = value.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
    long as i32
}

/// `weight_name_comparer`: block number first, then the name byte-wise.
pub fn compare_tensor_names(a: &str, b: &str) -> Ordering {
    layer_of(a)
        .cmp(&layer_of(b))
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

/// Sorts `items` into llama-quantize's default processing order, by the name `name` returns.
pub fn sort_for_quantize<T>(items: &mut [T], name: impl Fn(&T) -> &str) {
    items.sort_by(|a, b| compare_tensor_names(name(a), name(b)));
}

/// Sorts `items` into the `--keep-split` processing order: by the tensor's split file index,
/// then by its data offset inside that file. Call it on a list already in
/// [`sort_for_quantize`] order (see the module documentation about ties).
pub fn keep_split_order<T>(items: &mut [T], key: impl Fn(&T) -> (u16, u64)) {
    items.sort_by_key(|t| key(t));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_numbers_follow_sscanf() {
        assert_eq!(layer_of("output.weight"), -1);
        assert_eq!(layer_of("blk.0.attn_q.weight"), 0);
        assert_eq!(layer_of("blk.17.ffn_up.weight"), 17);
        assert_eq!(layer_of("blk.007.attn_k.weight"), 7);
        assert_eq!(layer_of("blk.-2.x.weight"), -2);
        assert_eq!(layer_of("blk. 3.x"), 3);
        assert_eq!(layer_of("blk.3x"), 3);
        assert_eq!(layer_of("blk.x.attn_q.weight"), -1);
        assert_eq!(layer_of("v.blk.3.attn_q.weight"), -1);
        // 2^32 + 5 truncates to 5; beyond the long range it saturates to LONG_MAX, i.e. -1.
        assert_eq!(layer_of("blk.4294967301.a"), 5);
        assert_eq!(layer_of("blk.99999999999999999999999.a"), -1);
    }

    #[test]
    fn non_block_tensors_first_then_blocks_numerically() {
        let mut names = vec![
            "blk.10.attn_q.weight",
            "blk.2.ffn_up.weight",
            "token_embd.weight",
            "blk.2.attn_k.weight",
            "output.weight",
            "output_norm.weight",
        ];
        sort_for_quantize(&mut names, |s| s);
        assert_eq!(
            names,
            [
                "output.weight",
                "output_norm.weight",
                "token_embd.weight",
                "blk.2.attn_k.weight",
                "blk.2.ffn_up.weight",
                "blk.10.attn_q.weight",
            ]
        );
    }

    #[test]
    fn keep_split_orders_by_split_then_offset() {
        let mut items = vec![("a", 1u16, 0u64), ("b", 0, 64), ("c", 0, 0)];
        keep_split_order(&mut items, |t| (t.1, t.2));
        assert_eq!(items.iter().map(|t| t.0).collect::<String>(), "cba");
    }
}
