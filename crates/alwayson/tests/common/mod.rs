//! Test helpers: bytes from the spec's notation.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

/// Bytes from the spec's notation: hex digits (spaces and `|` ignored) and `"quoted"` ASCII.
pub fn b(notation: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut nibble: Option<u8> = None;
    let mut chars = notation.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                assert!(
                    nibble.is_none(),
                    "odd hex digits before a string in {notation:?}"
                );
                for q in chars.by_ref() {
                    if q == '"' {
                        break;
                    }
                    out.push(q as u8);
                }
            }
            c if c.is_ascii_hexdigit() => {
                let v = c.to_digit(16).unwrap() as u8;
                match nibble.take() {
                    Some(h) => out.push(h << 4 | v),
                    None => nibble = Some(v),
                }
            }
            ' ' | '|' | '\n' => {}
            other => panic!("unexpected {other:?} in test notation"),
        }
    }
    assert!(nibble.is_none(), "odd number of hex digits in {notation:?}");
    out
}

/// Encodes a message into a Vec.
pub fn enc(m: &alwayson::Message) -> Vec<u8> {
    m.to_bytes().unwrap().to_vec()
}
