//! A request path made canonical before authorization reads it and the
//! service gets it, as Envoy normalizes it behind istiod (Istio's
//! `MERGE_SLASHES` path normalization): percent-escapes of unreserved
//! characters decoded and the others in upper case, `\` read as `/`,
//! runs of `/` merged, and `.` and `..` segments resolved, never above
//! the root. Encoded slashes (`%2F`, `%5C`) stay encoded. Otherwise
//! `//admin`, `/public/../admin` or `/%61dmin` would pass a policy on
//! `/admin` and still reach it.

use std::borrow::Cow;

/// A path that cannot be read as a path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPath {
    /// Not origin form (`/…`): `*`, or empty.
    #[error("the request path {0:?} does not start with /")]
    NotAbsolute(String),
    /// A `%` not followed by two hex digits.
    #[error("the request path {0:?} has a malformed percent-escape")]
    BadEscape(String),
}

/// The canonical form of `path` (without its query).
///
/// ```
/// use mesh_tower::authorize::normalize_path;
///
/// assert_eq!(normalize_path("/a//b/./c/../d")?, "/a/b/d");
/// assert_eq!(normalize_path("/%61dmin/%2f")?, "/admin/%2F");
/// assert_eq!(normalize_path("/../..")?, "/");
/// # Ok::<(), mesh_tower::authorize::InvalidPath>(())
/// ```
pub fn normalize_path(path: &str) -> Result<Cow<'_, str>, InvalidPath> {
    if !path.starts_with('/') {
        return Err(InvalidPath::NotAbsolute(path.to_owned()));
    }
    if is_canonical(path) {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode(path)?;
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing = false;
    for segment in decoded.split('/').skip(1) {
        trailing = true;
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => {
                segments.push(s);
                trailing = false;
            }
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if trailing || segments.is_empty() {
        out.push('/');
    }
    Ok(Cow::Owned(out))
}

/// Whether `path` has nothing to normalize: no escape, no backslash, no
/// empty, `.` or `..` segment.
fn is_canonical(path: &str) -> bool {
    let b = path.as_bytes();
    !b.iter().any(|&c| c == b'%' || c == b'\\')
        && !path.contains("//")
        && !path.contains("/./")
        && !path.contains("/../")
        && !path.ends_with("/.")
        && !path.ends_with("/..")
}

/// `path` with unreserved escapes decoded, the others upper-cased, and
/// backslashes as slashes.
fn decode(path: &str) -> Result<String, InvalidPath> {
    let b = path.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = |j: usize| b.get(j).and_then(|c| (*c as char).to_digit(16));
                let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) else {
                    return Err(InvalidPath::BadEscape(path.to_owned()));
                };
                let byte = (hi * 16 + lo) as u8;
                if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                    out.push(byte as char);
                } else {
                    out.push('%');
                    out.push_str(&format!("{byte:02X}"));
                }
                i += 3;
            }
            b'\\' => {
                out.push('/');
                i += 1;
            }
            _ => {
                // Copy up to the next byte that needs a look, whole, so
                // multi-byte characters stay intact.
                let end = b[i..]
                    .iter()
                    .position(|&c| c == b'%' || c == b'\\')
                    .map_or(b.len(), |p| i + p);
                out.push_str(&path[i..end]);
                i = end;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_paths_are_borrowed() {
        for p in ["/", "/a", "/a/b/", "/a.b/c..d/.e", "/pkg.Service/Method"] {
            assert!(matches!(normalize_path(p), Ok(Cow::Borrowed(_))), "{p}");
        }
    }

    #[test]
    fn paths_are_made_canonical() {
        for (given, want) in [
            ("//admin", "/admin"),
            ("/public/../admin", "/admin"),
            ("/public/%2e%2E/admin", "/admin"),
            ("/%61dmin", "/admin"),
            ("/a\\..\\admin", "/admin"),
            ("/a/./b/.", "/a/b/"),
            ("/a/b/..", "/a/"),
            ("/..", "/"),
            ("/../../etc/passwd", "/etc/passwd"),
            ("/a%2fb%2F", "/a%2Fb%2F"),
            ("/a%00b", "/a%00b"),
            ("/caf%c3%a9/é", "/caf%C3%A9/é"),
        ] {
            assert_eq!(normalize_path(given).unwrap(), want, "{given}");
        }
    }

    #[test]
    fn what_is_not_a_path_is_refused() {
        assert!(matches!(
            normalize_path("*"),
            Err(InvalidPath::NotAbsolute(_))
        ));
        for p in ["/a%", "/a%2", "/a%zz"] {
            assert!(
                matches!(normalize_path(p), Err(InvalidPath::BadEscape(_))),
                "{p}"
            );
        }
    }
}
