//! The float types F32, F16 and BF16: conversion row by row as ggml does it
//! (`ggml_fp32_to_fp16_row`, `ggml_fp32_to_bf16_row_ref`).

use crate::ggml::codec::Codec;
use crate::ggml::fp;
use crate::ggml::types::GgmlType;

pub(crate) fn codec(ty: GgmlType) -> Option<Codec> {
    match ty {
        GgmlType::F32 => Some(Codec {
            dequantize: dequantize_f32,
            quantize: Some(quantize_f32),
        }),
        GgmlType::F16 => Some(Codec {
            dequantize: dequantize_f16,
            quantize: Some(quantize_f16),
        }),
        GgmlType::BF16 => Some(Codec {
            dequantize: dequantize_bf16,
            quantize: Some(quantize_bf16),
        }),
        _ => None,
    }
}

fn dequantize_f32(src: &[u8], dst: &mut [f32]) {
    for (d, s) in dst.iter_mut().zip(src.chunks_exact(4)) {
        *d = f32::from_le_bytes([s[0], s[1], s[2], s[3]]);
    }
}

fn quantize_f32(src: &[f32], dst: &mut [u8], _n: usize, _w: Option<&[f32]>) {
    for (d, s) in dst.chunks_exact_mut(4).zip(src) {
        d.copy_from_slice(&s.to_le_bytes());
    }
}

fn dequantize_f16(src: &[u8], dst: &mut [f32]) {
    use half::slice::HalfFloatSliceExt;
    // Whole slices at a time, so `half` can use the CPU's F16C conversions (exact, like ggml's).
    let mut buf = [half::f16::ZERO; 1024];
    for (d, s) in dst.chunks_mut(1024).zip(src.chunks(2048)) {
        let h = &mut buf[..d.len()];
        for (x, b) in h.iter_mut().zip(s.chunks_exact(2)) {
            *x = half::f16::from_bits(u16::from_le_bytes([b[0], b[1]]));
        }
        h.convert_to_f32_slice(d);
    }
}

fn quantize_f16(src: &[f32], dst: &mut [u8], _n: usize, _w: Option<&[f32]>) {
    for (d, s) in dst.chunks_exact_mut(2).zip(src) {
        d.copy_from_slice(&fp::f32_to_f16_bits(*s).to_le_bytes());
    }
}

fn dequantize_bf16(src: &[u8], dst: &mut [f32]) {
    for (d, s) in dst.iter_mut().zip(src.chunks_exact(2)) {
        *d = fp::bf16_bits_to_f32(u16::from_le_bytes([s[0], s[1]]));
    }
}

fn quantize_bf16(src: &[f32], dst: &mut [u8], _n: usize, _w: Option<&[f32]>) {
    for (d, s) in dst.chunks_exact_mut(2).zip(src) {
        d.copy_from_slice(&fp::f32_to_bf16_bits(*s).to_le_bytes());
    }
}
