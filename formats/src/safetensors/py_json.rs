//! JSON text as Python's `json.dumps(obj, indent=2, sort_keys=True)` writes it (keys sorted by
//! the caller through `BTreeMap`s): two-space indentation, `": "` and `","` separators, and
//! `ensure_ascii` escaping of every non-ASCII character as `\uXXXX` (UTF-16 surrogate pairs
//! beyond the BMP).

use serde::Serialize;
use serde_json::ser::{Formatter, PrettyFormatter};
use std::io::{self, Write};

struct PyFormatter(PrettyFormatter<'static>);

impl Formatter for PyFormatter {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut rest = fragment;
        while let Some(pos) = rest.find(|c: char| !c.is_ascii()) {
            w.write_all(&rest.as_bytes()[..pos])?;
            let c = rest[pos..].chars().next().unwrap_or('\u{FFFD}');
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                write!(w, "\\u{u:04x}")?;
            }
            rest = &rest[pos + c.len_utf8()..];
        }
        w.write_all(rest.as_bytes())
    }
}

/// `value` as Python's `json.dumps(value, indent=2)` text, without a trailing newline.
pub(crate) fn to_python_json<T: Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut out,
        PyFormatter(PrettyFormatter::with_indent(b"  ")),
    );
    value.serialize(&mut ser)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn matches_python_json_dumps_indent_2() {
        // expected: Python 3's output for
        // json.dumps({"metadata": {"total_size": 12}, "weight_map": {"a\u00e9\U0001F600\n": "x"},
        //             "z": {}, "l": [1, []]}, indent=2, sort_keys=True)
        let mut inner = BTreeMap::new();
        inner.insert("a\u{e9}\u{1F600}\n", "x");
        let v = serde_json::json!({
            "l": [1, []],
            "metadata": {"total_size": 12},
            "weight_map": inner,
            "z": {},
        });
        let text = String::from_utf8(to_python_json(&v).unwrap()).unwrap();
        let expected = "{\n  \"l\": [\n    1,\n    []\n  ],\n  \"metadata\": {\n    \"total_size\": 12\n  },\n  \
                        \"weight_map\": {\n    \"a\\u00e9\\ud83d\\ude00\\n\": \"x\"\n  },\n  \"z\": {}\n}";
        assert_eq!(text, expected);
    }
}
