//! `qforge tokenize`: a model's token ids for a text, as llama-tokenize prints them.

use anyhow::{Context, Result};
use qforge_calibration::tokenizer::Tokenizer;
use std::io::{Read, Write};
use std::path::PathBuf;

/// Arguments of `qforge tokenize` (llama-tokenize's names).
#[derive(Debug, clap::Args)]
pub struct TokenizeArgs {
    /// Model whose vocabulary to use (GGUF; only the metadata is read).
    #[arg(short = 'm', long = "model", value_name = "MODEL")]
    pub model: PathBuf,
    /// Text to tokenize.
    #[arg(short = 'p', long = "prompt", value_name = "TEXT", conflicts_with_all = ["file", "stdin"])]
    pub prompt: Option<String>,
    /// Read the text from a file.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        conflicts_with = "stdin"
    )]
    pub file: Option<PathBuf>,
    /// Read the text from standard input.
    #[arg(long)]
    pub stdin: bool,
    /// Print only the ids, as `[1, 2, 3]`.
    #[arg(long)]
    pub ids: bool,
    /// Do not add BOS even when the vocabulary asks for it.
    #[arg(long)]
    pub no_bos: bool,
    /// Recognise special tokens (`<s>`, `<|im_start|>`, ...) written in the text (the default).
    #[arg(long, overrides_with = "no_parse_special")]
    pub parse_special: bool,
    /// Treat special-token text as plain text.
    #[arg(long)]
    pub no_parse_special: bool,
    /// Do not process escapes (`\\n`, `\\t`, `\\xNN`, ...) in the text.
    #[arg(long)]
    pub no_escape: bool,
    /// Also print the number of tokens.
    #[arg(long)]
    pub show_count: bool,
}

/// Runs `qforge tokenize`.
pub fn run(a: TokenizeArgs) -> Result<()> {
    let gguf = qforge_formats::gguf::GgufFile::open(&a.model)
        .with_context(|| format!("opening {}", a.model.display()))?;
    let tok = Tokenizer::from_gguf(gguf.header())
        .with_context(|| format!("{}: reading the tokenizer", a.model.display()))?;
    let mut text: Vec<u8> = if let Some(p) = &a.prompt {
        p.clone().into_bytes()
    } else if let Some(f) = &a.file {
        std::fs::read(f).with_context(|| format!("reading {}", f.display()))?
    } else if a.stdin {
        let mut v = Vec::new();
        std::io::stdin()
            .read_to_end(&mut v)
            .context("reading standard input")?;
        v
    } else {
        anyhow::bail!("give the text with -p TEXT, -f FILE or --stdin");
    };
    if !a.no_escape {
        text = process_escapes(&text);
    }
    let add_special = tok.add_bos() && !a.no_bos;
    let ids = tok.encode_bytes(&text, add_special, !a.no_parse_special);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if a.ids {
        let list: Vec<String> = ids.iter().map(u32::to_string).collect();
        writeln!(out, "[{}]", list.join(", "))?;
    } else {
        for &id in &ids {
            let piece = tok.token_to_piece(id, true);
            // Raw bytes up to the first NUL, as llama-tokenize's printf("%s") writes them on Unix.
            let end = piece.iter().position(|&b| b == 0).unwrap_or(piece.len());
            write!(out, "{id:6} -> '")?;
            out.write_all(&piece[..end])?;
            writeln!(out, "'")?;
        }
    }
    if a.show_count {
        writeln!(out, "Total number of tokens: {}", ids.len())?;
    }
    Ok(())
}

/// llama.cpp's `string_process_escapes`: `\\n \\r \\t \\' \\" \\\\` and `\\xNN` (two characters read
/// by `strtol` in base 16); any other backslash pair is kept as it is.
fn process_escapes(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'\\' && i + 1 < input.len() {
            i += 1;
            match input[i] {
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'\'' => out.push(b'\''),
                b'"' => out.push(b'"'),
                b'\\' => out.push(b'\\'),
                b'x' if i + 2 < input.len()
                    && strtol_hex2(input[i + 1], input[i + 2]).is_some() =>
                {
                    out.push(strtol_hex2(input[i + 1], input[i + 2]).unwrap_or(0) as u8);
                    i += 2;
                }
                c => out.extend_from_slice(&[b'\\', c]),
            }
        } else {
            out.push(input[i]);
        }
        i += 1;
    }
    out
}

/// `strtol` in base 16 over exactly two characters that it consumes both of (optional leading
/// white space or sign, then hex digits).
fn strtol_hex2(a: u8, b: u8) -> Option<i64> {
    let hex = |c: u8| (c as char).to_digit(16).map(i64::from);
    match (a, hex(a), hex(b)) {
        (_, Some(h), Some(l)) => Some(h * 16 + l),
        (b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r' | b'+', None, Some(l)) => Some(l),
        (b'-', None, Some(l)) => Some(-l),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::process_escapes;

    #[test]
    fn escapes_as_llama_cpp() {
        assert_eq!(
            process_escapes(br"a\nb\tc\\d\'\x41\x4"),
            b"a\nb\tc\\d'A\\x4".to_vec()
        );
        assert_eq!(process_escapes(br"\q\"), br"\q\".to_vec());
        assert_eq!(process_escapes(br"\x-1z"), b"\xffz".to_vec());
    }
}
