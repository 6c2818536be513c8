//! Checks the port against the pinned llama-quantize: `fixtures/recipe/*.json`, recorded by
//! `scripts/gen-recipe-goldens.py`, hold llama-quantize's processing order and the type it
//! chose for every tensor of small synthetic models, for many file types and options, and the
//! errors it raised. Every run is replayed here from its argument list.

use super::*;
use crate::quantize::{allowed_types_help, parse_ftype};
use qforge_formats::gguf::{GgufArray, GgufValue};
use serde_json::Value;
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/recipe")
}

fn metadata(doc: &Value) -> Vec<(String, GgufValue)> {
    let ints = |v: &Value| -> Vec<i64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect()
    };
    doc["metadata"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| {
            let key = kv[0].as_str().unwrap().to_owned();
            let v = &kv[2];
            let value = match kv[1].as_str().unwrap() {
                "u32" => GgufValue::U32(v.as_u64().unwrap() as u32),
                "i32" => GgufValue::I32(v.as_i64().unwrap() as i32),
                "f32" => GgufValue::F32(v.as_f64().unwrap() as f32),
                "str" => GgufValue::string(v.as_str().unwrap()),
                "arr_i32" => {
                    GgufValue::Array(GgufArray::I32(ints(v).iter().map(|&x| x as i32).collect()))
                }
                "arr_u32" => {
                    GgufValue::Array(GgufArray::U32(ints(v).iter().map(|&x| x as u32).collect()))
                }
                other => panic!("unknown metadata type {other}"),
            };
            (key, value)
        })
        .collect()
}

fn tensors(doc: &Value) -> Vec<TensorDesc> {
    doc["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let ty = GgmlType::from_name(t[1].as_str().unwrap()).unwrap();
            let dims: Vec<u64> = t[2]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap())
                .collect();
            TensorDesc::new(t[0].as_str().unwrap(), ty, &dims)
        })
        .collect()
}

fn expand_types(rle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for tok in rle.split(' ') {
        match tok.split_once('*') {
            Some((t, n)) => out.extend(std::iter::repeat_n(t.to_owned(), n.parse().unwrap())),
            None => out.push(tok.to_owned()),
        }
    }
    out
}

/// A run's argument list interpreted as llama-quantize's `main` does (only the options the
/// goldens use).
struct Run {
    params: Result<RecipeParams, String>,
    allow_requantize: bool,
    imatrix: Option<Vec<(String, usize)>>,
}

fn interpret(run: &Value) -> Run {
    let args: Vec<&str> = run["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let imatrix: Option<Vec<(String, usize)>> = run.get("imatrix").map(|m| {
        m.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap() as usize))
            .collect()
    });
    let mut positional = Vec::new();
    let mut flags = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        if a.starts_with("--") {
            let takes_value = matches!(
                a,
                "--output-tensor-type"
                    | "--token-embedding-type"
                    | "--tensor-type"
                    | "--tensor-type-file"
                    | "--imatrix"
            );
            flags.push((a, if takes_value { Some(args[i + 1]) } else { None }));
            i += if takes_value { 2 } else { 1 };
        } else {
            positional.push(a);
            i += 1;
        }
    }
    let ftype = positional.last().unwrap();
    let option = parse_ftype(ftype).unwrap_or_else(|| panic!("ftype {ftype}"));
    let mut params = RecipeParams::for_option(option);
    let mut allow_requantize = false;
    let mut build = || -> Result<(), String> {
        for (flag, value) in &flags {
            match *flag {
                "--dry-run" => params.dry_run = true,
                "--pure" => params.pure = true,
                "--leave-output-tensor" => params.quantize_output_tensor = false,
                "--allow-requantize" => allow_requantize = true,
                "--imatrix" => params.has_imatrix = true,
                "--output-tensor-type" => {
                    params.output_tensor_type = Some(parse_ggml_type(value.unwrap()).unwrap())
                }
                "--token-embedding-type" => {
                    params.token_embedding_type = Some(parse_ggml_type(value.unwrap()).unwrap())
                }
                "--tensor-type" => params
                    .tensor_types
                    .push(TensorTypeOverride::parse(value.unwrap()).map_err(|e| format!("{e:?}"))?),
                "--tensor-type-file" => params.tensor_types.extend(
                    parse_tensor_type_file(run["tensor_type_file"].as_str().unwrap())
                        .map_err(|e| format!("{e:?}"))?,
                ),
                other => panic!("unexpected flag {other}"),
            }
        }
        Ok(())
    };
    let res = build();
    Run {
        params: res.map(|()| params),
        allow_requantize,
        imatrix,
    }
}

/// Plans a run and, for runs that convert (no `--dry-run`), checks every converted tensor.
/// Returns the plan or the first error, as text.
fn replay(model: &ModelDesc, order: &[TensorDesc], run: &Run) -> Result<QuantizePlan, String> {
    let params = run.params.clone()?;
    let plan = plan_quantization(model, &params, order).map_err(|e| format!("{e:?}\n{e}"))?;
    if !params.dry_run {
        for t in &plan.tensors {
            let entry = match &run.imatrix {
                None => ImatrixEntry::NoImatrix,
                Some(m) => match m.iter().find(|(n, _)| *n == t.name) {
                    None => ImatrixEntry::NotFound,
                    Some(&(_, len)) => ImatrixEntry::Found { len },
                },
            };
            check_conversion(t, entry, run.allow_requantize).map_err(|e| format!("{e:?}\n{e}"))?;
        }
    }
    Ok(plan)
}

/// Whether our error text stands for the error llama-quantize reported.
fn same_error(llama: &str, llama_tensor: Option<&str>, ours: &str) -> bool {
    if llama.contains("(abort)") {
        return ours.contains("llama.cpp aborts here");
    }
    if llama == "quantized data validation failed" {
        return ours.starts_with("RowNotBlockAligned");
    }
    if llama.contains("regular expression") {
        return ours.starts_with("InvalidPattern");
    }
    let text = ours.split_once('\n').map_or(ours, |(_, t)| t);
    text.starts_with(llama) && llama_tensor.is_none_or(|t| text.contains(&format!("tensor: {t},")))
}

#[test]
fn plans_match_llama_quantize() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "goldens missing in {:?}", fixtures());

    let mut failures: Vec<String> = Vec::new();
    let (mut n_runs, mut n_tensors) = (0usize, 0usize);
    for path in &files {
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let name = doc["model"].as_str().unwrap();
        let model = ModelDesc::from_metadata(&metadata(&doc)).unwrap();
        let file_order = tensors(&doc);

        let mut order = file_order.clone();
        order::sort_for_quantize(&mut order, |t| &t.name);
        if let Some(expected) = doc["order"].as_array() {
            let expected: Vec<&str> = expected
                .iter()
                .map(|i| file_order[i.as_u64().unwrap() as usize].name.as_str())
                .collect();
            let got: Vec<&str> = order.iter().map(|t| t.name.as_str()).collect();
            if got != expected {
                failures.push(format!(
                    "{name}: processing order differs:\n  ours   {got:?}\n  llama  {expected:?}"
                ));
                continue;
            }
        }

        for run in doc["runs"].as_array().unwrap() {
            n_runs += 1;
            let what = format!("{name} {}", run["args"]);
            let result = replay(&model, &order, &interpret(run));
            match (run.get("error").and_then(Value::as_str), result) {
                (Some(llama), Ok(_)) => failures.push(format!(
                    "{what}: llama-quantize failed ({llama}), we did not"
                )),
                (Some(llama), Err(ours)) => {
                    let tensor = run["error_tensor"].as_str();
                    if !same_error(llama, tensor, &ours) {
                        failures.push(format!(
                            "{what}: llama-quantize: {llama} ({tensor:?}); ours: {ours}"
                        ));
                    }
                }
                (None, Err(ours)) => failures.push(format!("{what}: we failed: {ours}")),
                (None, Ok(plan)) => {
                    let expected = expand_types(run["types"].as_str().unwrap());
                    assert_eq!(expected.len(), plan.tensors.len(), "{what}: golden length");
                    for (t, want) in plan.tensors.iter().zip(&expected) {
                        n_tensors += 1;
                        if t.target.name() != want {
                            failures.push(format!(
                                "{what}: {} -> ours {}, llama {want}",
                                t.name, t.target
                            ));
                        }
                    }
                    let nf = run["n_fallback"].as_u64().unwrap() as usize;
                    if plan.n_fallback() != nf {
                        failures.push(format!(
                            "{what}: {} fallbacks, llama {nf}",
                            plan.n_fallback()
                        ));
                    }
                    let wri = run["will_require_imatrix"].as_bool().unwrap();
                    if plan.will_require_imatrix != wri {
                        failures.push(format!(
                            "{what}: will_require_imatrix {}, llama {wri}",
                            plan.will_require_imatrix
                        ));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches with llama-quantize over {n_runs} runs; first ones:\n{}",
        failures.len(),
        failures
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        n_runs > 500 && n_tensors > 50_000,
        "{n_runs} runs, {n_tensors} tensors"
    );
}

#[test]
fn help_table_matches_llama_quantize() {
    let expected = std::fs::read_to_string(fixtures().join("quantize-help.txt")).unwrap();
    assert_eq!(allowed_types_help(), expected);
}
