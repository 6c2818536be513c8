//! `ggml_validate_row_data`: the check llama-quantize runs on every quantized chunk, refusing
//! infinities and NaNs in float data and in the blocks' fp16 scales.

use super::types::GgmlType;

/// Byte offsets of the fp16 scale fields llama.cpp checks in one block of `ty`.
fn f16_scale_offsets(ty: GgmlType) -> &'static [usize] {
    use GgmlType::*;
    match ty {
        Q4_0 | Q5_0 | Q8_0 | Q1_0 | Q2_0 | IQ1_S | IQ2_XXS | IQ2_XS | IQ2_S | IQ3_XXS | IQ3_S
        | IQ4_XS | IQ4_NL => &[0],
        Q4_1 | Q5_1 | Q4_K | Q5_K => &[0, 2],
        Q2_K => &[80, 82],
        Q3_K => &[108],
        Q6_K => &[208],
        TQ1_0 => &[52],
        TQ2_0 => &[64],
        _ => &[],
    }
}

fn fp16_problem(h: u16) -> Option<&'static str> {
    if h & 0x7fff == 0x7c00 {
        Some("inf")
    } else if h & 0x7c00 == 0x7c00 {
        Some("nan")
    } else {
        None
    }
}

/// Checks `data` (whole blocks of `ty`) as ggml does; the error names the problem and the block.
pub fn validate_row_data(ty: GgmlType, data: &[u8]) -> Result<(), String> {
    let ts = ty.type_size();
    if data.len() % ts != 0 {
        return Err(format!(
            "invalid size {} for type {ty} (type size = {ts})",
            data.len()
        ));
    }
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    match ty {
        GgmlType::F32 => {
            let any_special = data.chunks_exact(4).fold(false, |acc, c| {
                acc | (u32::from_le_bytes([c[0], c[1], c[2], c[3]]) & 0x7f80_0000 == 0x7f80_0000)
            });
            if !any_special {
                return Ok(());
            }
            for (i, c) in data.chunks_exact(4).enumerate() {
                let f = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                if !f.is_finite() {
                    return Err(format!(
                        "found {} value at block {i}",
                        if f.is_nan() { "nan" } else { "inf" }
                    ));
                }
            }
        }
        GgmlType::F64 => {
            for (i, c) in data.chunks_exact(8).enumerate() {
                let f = f64::from_le_bytes(c.try_into().expect("8 bytes"));
                if !f.is_finite() {
                    return Err(format!(
                        "found {} value at block {i}",
                        if f.is_nan() { "nan" } else { "inf" }
                    ));
                }
            }
        }
        GgmlType::F16 => {
            // A branch-free scan first (it vectorises); the slow loop only names the culprit.
            let any_special = data
                .chunks_exact(2)
                .fold(false, |acc, c| acc | (u16_at(c, 0) & 0x7c00 == 0x7c00));
            if !any_special {
                return Ok(());
            }
            for (i, c) in data.chunks_exact(2).enumerate() {
                if let Some(p) = fp16_problem(u16_at(c, 0)) {
                    return Err(format!("found {p} value at block {i}"));
                }
            }
        }
        GgmlType::BF16 => {
            for (i, c) in data.chunks_exact(2).enumerate() {
                let h = u16_at(c, 0) & 0x7fff;
                if h > 0x7f80 {
                    return Err(format!("found NaN in BF16 value {i}"));
                }
                if h == 0x7f80 {
                    return Err(format!("found infinity in BF16 value {i}"));
                }
            }
        }
        GgmlType::Q8_K => {
            for (i, b) in data.chunks_exact(ts).enumerate() {
                if !f32::from_le_bytes([b[0], b[1], b[2], b[3]]).is_finite() {
                    return Err(format!("found non-finite scale at block {i}"));
                }
            }
        }
        GgmlType::MXFP4 => {
            for (i, b) in data.chunks_exact(ts).enumerate() {
                if b[0] == 0xff {
                    return Err(format!("found invalid e value 255 at block {i}"));
                }
            }
        }
        GgmlType::IQ1_M => {
            for (i, b) in data.chunks_exact(ts).enumerate() {
                // The fp16 scale is spread over the top nibbles of the four u16 scales at byte 48.
                let sc = |k: usize| u16_at(b, 48 + 2 * k);
                let h = (sc(0) >> 12)
                    | ((sc(1) >> 8) & 0x00f0)
                    | ((sc(2) >> 4) & 0x0f00)
                    | (sc(3) & 0xf000);
                if let Some(p) = fp16_problem(h) {
                    return Err(format!("found {p} value at block {i}"));
                }
            }
        }
        GgmlType::I8 | GgmlType::I16 | GgmlType::I32 | GgmlType::I64 | GgmlType::NVFP4 => {}
        // ggml has no validation case for Q8_1, so it reports every Q8_1 buffer as invalid.
        GgmlType::Q8_1 => return Err(format!("invalid type {ty}")),
        _ => {
            let offs = f16_scale_offsets(ty);
            for (i, b) in data.chunks_exact(ts).enumerate() {
                for &o in offs {
                    if let Some(p) = fp16_problem(u16_at(b, o)) {
                        return Err(format!("found {p} value at block {i}"));
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_offsets_lie_inside_their_blocks() {
        for ty in GgmlType::ALL {
            for &o in f16_scale_offsets(ty) {
                assert!(o + 2 <= ty.type_size(), "{ty}");
            }
        }
    }

    #[test]
    fn rejects_non_finite_scales_and_values() {
        let mut q4k = vec![0u8; 144];
        assert!(validate_row_data(GgmlType::Q4_K, &q4k).is_ok());
        q4k[2..4].copy_from_slice(&0x7c00u16.to_le_bytes());
        assert!(validate_row_data(GgmlType::Q4_K, &q4k)
            .unwrap_err()
            .contains("inf"));
        let mut q6k = vec![0u8; 210];
        q6k[208..210].copy_from_slice(&0x7e00u16.to_le_bytes());
        assert!(validate_row_data(GgmlType::Q6_K, &q6k)
            .unwrap_err()
            .contains("nan"));
        assert!(validate_row_data(GgmlType::F32, &f32::NAN.to_le_bytes()).is_err());
        assert!(validate_row_data(GgmlType::F32, &1.5f32.to_le_bytes()).is_ok());
        assert!(validate_row_data(GgmlType::Q8_0, &[0u8; 33]).is_err());
    }
}
