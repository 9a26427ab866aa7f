//! The reference paths ASL uses (`$`, `$.a.b`, `$.a[0]`, `$['a b']`, and `$$.…` for the
//! context object): parse, read, and write (ResultPath). Written here rather than taken
//! from a JSONPath crate because ASL needs the *write* side (ResultPath creates and merges
//! fields) and only the "reference path" subset, which must be refused beyond that.

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Field(String),
    Index(usize),
}

/// A parsed reference path; `context` when it starts with `$$`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefPath {
    pub context: bool,
    pub segs: Vec<Seg>,
    pub text: String,
}

impl RefPath {
    pub fn parse(text: &str) -> Result<RefPath, String> {
        let (context, mut rest) = if let Some(r) = text.strip_prefix("$$") {
            (true, r)
        } else if let Some(r) = text.strip_prefix('$') {
            (false, r)
        } else {
            return Err(format!("`{text}` is not a path: it must start with `$`"));
        };
        let mut segs = Vec::new();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('.') {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                let name = &r[..end];
                if name.is_empty()
                    || name == "*"
                    || name.contains(['(', ')', '?', '@', ' ', ',', ':'])
                {
                    return Err(format!(
                        "`{text}`: only plain field names are supported in paths"
                    ));
                }
                segs.push(Seg::Field(name.to_string()));
                rest = &r[end..];
            } else if let Some(r) = rest.strip_prefix('[') {
                let end = r
                    .find(']')
                    .ok_or_else(|| format!("`{text}`: unclosed `[`"))?;
                let inner = &r[..end];
                if let Ok(i) = inner.parse::<usize>() {
                    segs.push(Seg::Index(i));
                } else if let Some(q) = inner.strip_prefix('\'').and_then(|q| q.strip_suffix('\''))
                {
                    segs.push(Seg::Field(q.to_string()));
                } else {
                    return Err(format!(
                        "`{text}`: `[{inner}]` is not supported (only `[n]` indexes and `['name']` fields: reference paths)"
                    ));
                }
                rest = &r[end + 1..];
            } else {
                return Err(format!("`{text}`: unexpected `{rest}`"));
            }
        }
        Ok(RefPath {
            context,
            segs,
            text: text.to_string(),
        })
    }

    /// The value at this path, if there is one.
    pub fn get<'a>(&self, root: &'a Value) -> Option<&'a Value> {
        let mut cur = root;
        for s in &self.segs {
            cur = match (s, cur) {
                (Seg::Field(f), Value::Object(m)) => m.get(f)?,
                (Seg::Index(i), Value::Array(a)) => a.get(*i)?,
                _ => return None,
            };
        }
        Some(cur)
    }

    /// The value at this path, taken out of `root` (which is used up): no copy of what is
    /// kept, nor of what is left.
    pub fn take(&self, mut root: Value) -> Option<Value> {
        let mut cur = &mut root;
        for s in &self.segs {
            cur = match (s, cur) {
                (Seg::Field(f), Value::Object(m)) => m.get_mut(f)?,
                (Seg::Index(i), Value::Array(a)) => a.get_mut(*i)?,
                _ => return None,
            };
        }
        Some(std::mem::take(cur))
    }

    /// `root` with `value` placed at this path (ResultPath): intermediate objects are
    /// created; an intermediate that exists but is not an object is an error.
    pub fn set(&self, root: Value, value: Value) -> Result<Value, String> {
        if self.segs.is_empty() {
            return Ok(value);
        }
        let mut out = root;
        if !out.is_object() {
            return Err(format!(
                "cannot apply ResultPath `{}` to a non-object input",
                self.text
            ));
        }
        let mut cur = &mut out;
        for (i, s) in self.segs.iter().enumerate() {
            let last = i + 1 == self.segs.len();
            let Seg::Field(f) = s else {
                return Err(format!("ResultPath `{}` cannot index arrays", self.text));
            };
            let map = match cur {
                Value::Object(m) => m,
                _ => {
                    return Err(format!(
                        "ResultPath `{}`: `{f}` is under a non-object",
                        self.text
                    ));
                }
            };
            if last {
                map.insert(f.clone(), value);
                return Ok(out);
            }
            cur = map
                .entry(f.clone())
                .or_insert_with(|| Value::Object(Map::new()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reference_paths_parse_and_read() {
        let v = json!({"a": {"b": [10, {"c": "x"}]}, "d e": 1});
        assert_eq!(RefPath::parse("$").unwrap().get(&v), Some(&v));
        assert_eq!(
            RefPath::parse("$.a.b[1].c").unwrap().get(&v),
            Some(&json!("x"))
        );
        assert_eq!(RefPath::parse("$['d e']").unwrap().get(&v), Some(&json!(1)));
        assert_eq!(RefPath::parse("$.missing").unwrap().get(&v), None);
        assert!(RefPath::parse("$$.Execution.Name").unwrap().context);
    }

    #[test]
    fn taking_gives_what_getting_reads() {
        let v = json!({"a": {"b": [1, {"c": true}]}, "d e": 1});
        for p in [
            "$",
            "$.a",
            "$.a.b",
            "$.a.b[1].c",
            "$['d e']",
            "$.missing",
            "$.a.b[7]",
            "$.a[0]",
        ] {
            let p = RefPath::parse(p).unwrap();
            assert_eq!(p.take(v.clone()).as_ref(), p.get(&v), "{}", p.text);
        }
    }

    #[test]
    fn non_reference_paths_are_refused() {
        for p in ["a.b", "$..a", "$.a[*]", "$.a[?(@.x)]", "$.a[0:2]"] {
            assert!(RefPath::parse(p).is_err(), "{p}");
        }
    }

    #[test]
    fn setting_creates_intermediate_objects_and_keeps_the_rest() {
        let p = RefPath::parse("$.x.y").unwrap();
        assert_eq!(
            p.set(json!({"a": 1}), json!(2)).unwrap(),
            json!({"a": 1, "x": {"y": 2}})
        );
        assert!(p.set(json!({"x": 5}), json!(2)).is_err());
        assert_eq!(
            RefPath::parse("$")
                .unwrap()
                .set(json!({"a": 1}), json!(3))
                .unwrap(),
            json!(3)
        );
    }
}
