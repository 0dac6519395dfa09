//! ThingWorx's own `config.json` files are not strict JSON: the shipped
//! `config.json.documented` carries `//` comments and the `complete` sample
//! has Windows paths with bare backslashes (`"c:\some\folder"`). The EMS reads
//! them with a forgiving parser, so Tether accepts the same: comments
//! (`//`, `/* */`) and trailing commas are dropped, and a backslash that does not
//! start a JSON escape is kept as a literal backslash.

/// Rewrites forgiving JSON text into strict JSON. Never fails: what stays
/// invalid is reported by the JSON parser afterwards (with line and column).
pub(crate) fn normalize(input: &str) -> String {
    let stripped = strip_comments_and_fix_escapes(input);
    drop_trailing_commas(&stripped)
}

fn strip_comments_and_fix_escapes(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let mut chars = input.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            match c {
                '\\' => match chars.peek() {
                    Some('"' | '\\' | '/' | 'b' | 'f' | 'n' | 'r' | 't' | 'u') => {
                        out.push('\\');
                        if let Some(next) = chars.next() {
                            out.push(next);
                        }
                    }
                    // Not a JSON escape: keep the backslash itself.
                    _ => out.push_str("\\\\"),
                },
                '"' => {
                    in_string = false;
                    out.push(c);
                }
                _ => out.push(c),
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '/' if chars.peek() == Some(&'/') => {
                // Line comment: skip to the end of the line, keep the newline.
                for skipped in chars.by_ref() {
                    if skipped == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = '\0';
                for skipped in chars.by_ref() {
                    if skipped == '\n' {
                        out.push('\n');
                    }
                    if prev == '*' && skipped == '/' {
                        break;
                    }
                    prev = skipped;
                }
            }
            _ => out.push(c),
        }
    }
    out
}

fn drop_trailing_commas(input: &str) -> String {
    let bytes: Vec<char> = input.chars().collect();
    let mut out = String::with_capacity(input.len());
    let mut in_string = false;
    let mut escaped = false;
    for (i, &c) in bytes.iter().enumerate() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        if c == '"' {
            in_string = true;
        }
        if c == ',' {
            let next = bytes[i + 1..].iter().find(|ch| !ch.is_whitespace());
            if matches!(next, Some('}' | ']')) {
                continue;
            }
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn comments_are_removed_outside_strings() {
        let text = "{\n// c\n\"a\": \"x//y\", /* b */ \"b\": 1 // t\n}";
        let v: serde_json::Value = serde_json::from_str(&normalize(text)).unwrap();
        assert_eq!(v["a"], "x//y");
        assert_eq!(v["b"], 1);
    }

    #[test]
    fn bare_backslashes_are_kept_literally() {
        // `\f` is a JSON escape (form feed), as in ThingWorx's own parser; `\s`, `\d` are not.
        let text = r#"{"p": "c:\some\dir", "q": "a\"b\n"}"#;
        let v: serde_json::Value = serde_json::from_str(&normalize(text)).unwrap();
        assert_eq!(v["p"], "c:\\some\\dir");
        assert_eq!(v["q"], "a\"b\n");
    }

    #[test]
    fn trailing_commas_are_dropped() {
        let text = "{\"a\": [1, 2, ], \"b\": {\"c\": \",\",},}";
        let v: serde_json::Value = serde_json::from_str(&normalize(text)).unwrap();
        assert_eq!(v["a"][1], 2);
        assert_eq!(v["b"]["c"], ",");
    }
}
