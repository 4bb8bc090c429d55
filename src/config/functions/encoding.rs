//! Encoding functions: JSON, base64, SHA-256.

use base64::Engine;
use hcl::eval::FuncArgs;
use hcl::Value;
use sha2::{Digest, Sha256};

use super::str_arg;

pub(super) fn jsondecode(args: FuncArgs) -> Result<Value, String> {
    let text = &*str_arg(&args, 0);
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    if let Some(big) = inexact_integer(text) {
        return Err(format!(
            "the integer {big} is too large to be read exactly (at most 64 bits)"
        ));
    }
    serde_json::from_value(json).map_err(|e| e.to_string())
}

/// The first integer literal of a valid JSON text that neither an i64 nor a
/// u64 holds (serde_json would read it as a rounded float).
fn inexact_integer(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let (mut i, mut in_string) = (0, false);
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if b == b'-' || b.is_ascii_digit() {
            let end = bytes[i..]
                .iter()
                .position(|c| !matches!(c, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
                .map_or(bytes.len(), |n| i + n);
            let token = &text[i..end];
            let integer = !token.contains(['.', 'e', 'E']);
            if integer && token.parse::<i64>().is_err() && token.parse::<u64>().is_err() {
                return Some(token);
            }
            i = end;
            continue;
        }
        i += 1;
    }
    None
}

pub(super) fn base64encode(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::String(
        base64::engine::general_purpose::STANDARD.encode(&*str_arg(&args, 0)),
    ))
}

pub(super) fn base64decode(args: FuncArgs) -> Result<Value, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&*str_arg(&args, 0))
        .map_err(|e| format!("not valid base64: {e}"))?;
    String::from_utf8(bytes)
        .map(Value::String)
        .map_err(|_| "the decoded bytes are not valid UTF-8".to_string())
}

/// The SHA-256 of the string's UTF-8 bytes, in lower-case hex.
pub(super) fn sha256(args: FuncArgs) -> Result<Value, String> {
    let digest = Sha256::digest(str_arg(&args, 0).as_bytes());
    Ok(Value::String(
        digest.iter().map(|b| format!("{b:02x}")).collect(),
    ))
}
