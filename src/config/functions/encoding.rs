//! Encoding functions: JSON, base64, SHA-256.

use base64::Engine;
use hcl::eval::FuncArgs;
use hcl::Value;
use sha2::{Digest, Sha256};

use super::str_arg;

pub(super) fn jsondecode(args: FuncArgs) -> Result<Value, String> {
    let json: serde_json::Value =
        serde_json::from_str(str_arg(&args, 0)).map_err(|e| format!("invalid JSON: {e}"))?;
    serde_json::from_value(json).map_err(|e| e.to_string())
}

pub(super) fn base64encode(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::String(
        base64::engine::general_purpose::STANDARD.encode(str_arg(&args, 0)),
    ))
}

pub(super) fn base64decode(args: FuncArgs) -> Result<Value, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(str_arg(&args, 0))
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
