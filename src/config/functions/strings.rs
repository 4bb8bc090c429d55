//! String functions: trimming, testing, cutting and replacing.

use hcl::eval::FuncArgs;
use hcl::Value;

use super::numbers::int_arg;
use super::str_arg;

fn string(s: impl Into<String>) -> Result<Value, String> {
    Ok(Value::String(s.into()))
}

pub(super) fn trimspace(args: FuncArgs) -> Result<Value, String> {
    string(str_arg(&args, 0).trim())
}

/// Every character of the second argument is cut from both ends.
pub(super) fn trim(args: FuncArgs) -> Result<Value, String> {
    let cutset = str_arg(&args, 1);
    string(str_arg(&args, 0).trim_matches(|c| cutset.contains(c)))
}

pub(super) fn trimprefix(args: FuncArgs) -> Result<Value, String> {
    let (s, p) = (&*str_arg(&args, 0), &*str_arg(&args, 1));
    string(s.strip_prefix(p).unwrap_or(s))
}

pub(super) fn trimsuffix(args: FuncArgs) -> Result<Value, String> {
    let (s, p) = (&*str_arg(&args, 0), &*str_arg(&args, 1));
    string(s.strip_suffix(p).unwrap_or(s))
}

pub(super) fn startswith(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::Bool(
        str_arg(&args, 0).starts_with(&*str_arg(&args, 1)),
    ))
}

pub(super) fn endswith(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::Bool(
        str_arg(&args, 0).ends_with(&*str_arg(&args, 1)),
    ))
}

pub(super) fn strcontains(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::Bool(str_arg(&args, 0).contains(&*str_arg(&args, 1))))
}

/// By characters; a negative offset counts from the end, a negative length
/// takes the rest; an offset past either end gives less (or nothing).
pub(super) fn substr(args: FuncArgs) -> Result<Value, String> {
    let chars: Vec<char> = str_arg(&args, 0).chars().collect();
    let offset = int_arg(&args[1], "offset")?;
    let length = int_arg(&args[2], "length")?;
    let len = chars.len() as i128;
    let start = if offset < 0 {
        (len + i128::from(offset)).max(0)
    } else {
        i128::from(offset).min(len)
    };
    let end = if length < 0 {
        len
    } else {
        (start + i128::from(length)).min(len)
    };
    // Both within 0..=len, so within usize.
    let (start, end) = (start as usize, end as usize);
    string(chars[start..end].iter().collect::<String>())
}

/// The first letter of each word in upper case, as Go's `strings.Title`.
pub(super) fn title(args: FuncArgs) -> Result<Value, String> {
    let mut out = String::new();
    let mut prev = ' ';
    for c in str_arg(&args, 0).chars() {
        if is_separator(prev) {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev = c;
    }
    string(out)
}

fn is_separator(c: char) -> bool {
    if c.is_ascii() {
        return !(c.is_ascii_alphanumeric() || c == '_');
    }
    !c.is_alphanumeric() && c.is_whitespace()
}

/// A plain substring, or a regular expression written `/.../` (RE2's
/// syntax, as `regex`; `$1` and `${name}` in the replacement).
pub(super) fn replace(args: FuncArgs) -> Result<Value, String> {
    let (s, find, with) = (
        &*str_arg(&args, 0),
        &*str_arg(&args, 1),
        &*str_arg(&args, 2),
    );
    if let Some(pattern) = find.strip_prefix('/').and_then(|p| p.strip_suffix('/')) {
        let re = super::regex::compile(pattern)?;
        return string(re.replace_all(s, with));
    }
    string(s.replace(find, with))
}
