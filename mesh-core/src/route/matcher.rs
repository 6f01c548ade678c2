//! What a route matches on: the path, the method, the authority, headers and
//! query parameters, with Envoy's `RouteMatch` semantics (Istio's
//! `HTTPMatchRequest` maps onto it one to one).

use std::fmt;

use http::HeaderName;
use regex::Regex;

use super::RouteError;

/// How a string is matched (Envoy's `StringMatcher`). Regular expressions
/// must match the whole value, as Envoy's `safe_regex` does.
#[derive(Clone, Debug)]
pub enum StringMatch {
    /// Equal to the value.
    Exact(String),
    /// Starts with the value.
    Prefix(String),
    /// Ends with the value.
    Suffix(String),
    /// Contains the value.
    Contains(String),
    /// The whole string matches the expression.
    Regex(Regex),
}

impl StringMatch {
    /// A whole-string regular expression match; an invalid pattern is an
    /// error naming it.
    pub fn regex(pattern: &str) -> Result<Self, RouteError> {
        Ok(StringMatch::Regex(compile(pattern)?))
    }

    /// Whether `value` matches; ASCII case is ignored when `ignore_case`
    /// (regular expressions carry their own `(?i)`).
    pub fn matches(&self, value: &str, ignore_case: bool) -> bool {
        let value = value.as_bytes();
        match self {
            StringMatch::Exact(s) if ignore_case => value.eq_ignore_ascii_case(s.as_bytes()),
            StringMatch::Exact(s) => value == s.as_bytes(),
            StringMatch::Prefix(s) => value
                .get(..s.len())
                .is_some_and(|head| eq(head, s.as_bytes(), ignore_case)),
            StringMatch::Suffix(s) => value
                .len()
                .checked_sub(s.len())
                .is_some_and(|at| eq(&value[at..], s.as_bytes(), ignore_case)),
            StringMatch::Contains(s) if ignore_case => {
                value
                    .windows(s.len().max(1))
                    .any(|w| w.eq_ignore_ascii_case(s.as_bytes()))
                    || s.is_empty()
            }
            StringMatch::Contains(s) => {
                s.is_empty() || value.windows(s.len()).any(|w| w == s.as_bytes())
            }
            StringMatch::Regex(r) => std::str::from_utf8(value).is_ok_and(|v| r.is_match(v)),
        }
    }
}

impl PartialEq for StringMatch {
    fn eq(&self, other: &Self) -> bool {
        use StringMatch::*;
        match (self, other) {
            (Exact(a), Exact(b))
            | (Prefix(a), Prefix(b))
            | (Suffix(a), Suffix(b))
            | (Contains(a), Contains(b)) => a == b,
            (Regex(a), Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

// Regular expressions compare by pattern, which is reflexive.
impl Eq for StringMatch {}

impl From<&str> for StringMatch {
    /// Equal to `value`.
    fn from(value: &str) -> Self {
        StringMatch::Exact(value.to_owned())
    }
}

impl From<String> for StringMatch {
    /// Equal to `value`.
    fn from(value: String) -> Self {
        StringMatch::Exact(value)
    }
}

impl fmt::Display for StringMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StringMatch::Exact(s) => write!(f, "exact {s:?}"),
            StringMatch::Prefix(s) => write!(f, "prefix {s:?}"),
            StringMatch::Suffix(s) => write!(f, "suffix {s:?}"),
            StringMatch::Contains(s) => write!(f, "contains {s:?}"),
            StringMatch::Regex(r) => write!(f, "regex {:?}", unanchored(r)),
        }
    }
}

fn eq(a: &[u8], b: &[u8], ignore_case: bool) -> bool {
    if ignore_case {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

/// Compiles `pattern` anchored at both ends (a whole-string match).
///
/// The pattern must parse on its own first: wrapped in the anchors
/// unchecked, one that closes a group it never opened (`a)|(b`) would
/// close the anchoring group instead and match anywhere.
pub(super) fn compile(pattern: &str) -> Result<Regex, RouteError> {
    build(pattern, pattern)?;
    build(pattern, &format!("^(?:{pattern})$"))
}

/// Compiles `pattern` as written (for rewrites, which replace matches).
pub(super) fn compile_unanchored(pattern: &str) -> Result<Regex, RouteError> {
    build(pattern, pattern)
}

/// With a size limit, so a hostile configuration cannot make matching
/// expensive; errors name the pattern as written.
fn build(written: &str, pattern: &str) -> Result<Regex, RouteError> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| RouteError::InvalidRegex {
            pattern: written.to_owned(),
            reason: e.to_string(),
        })
}

/// The pattern as written, without the anchors [`compile`] adds.
pub(super) fn unanchored(r: &Regex) -> &str {
    let s = r.as_str();
    s.strip_prefix("^(?:")
        .and_then(|s| s.strip_suffix(")$"))
        .unwrap_or(s)
}

/// How the path (without the query) is matched.
#[derive(Clone, Debug, PartialEq)]
pub struct PathMatch {
    /// The match itself: Envoy's `prefix`, `path` (exact), `safe_regex`.
    pub kind: StringMatch,
    /// Ignore ASCII case (Envoy's `case_sensitive: false`, Istio's
    /// `ignoreUriCase`). Does not apply to regular expressions.
    pub ignore_case: bool,
}

impl Default for PathMatch {
    /// Every path: prefix `/`.
    fn default() -> Self {
        Self {
            kind: StringMatch::Prefix("/".into()),
            ignore_case: false,
        }
    }
}

/// How one header is matched (Envoy's `HeaderMatcher`). A header sent more
/// than once is matched on its values joined with `,`, as Envoy does.
#[derive(Clone, Debug, PartialEq)]
pub struct HeaderMatcher {
    /// The header. The method and authority have matchers of their own in
    /// [`RouteMatch`](super::RouteMatch).
    pub name: HeaderName,
    /// What its value must be.
    pub kind: HeaderMatch,
    /// Match when the header does *not* match (Envoy's `invert_match`,
    /// Istio's `withoutHeaders`).
    pub invert: bool,
}

/// The condition on a header's value.
#[derive(Clone, Debug, PartialEq)]
pub enum HeaderMatch {
    /// The value matches; an absent header never does.
    Value(StringMatch),
    /// The header is present (`true`) or absent (`false`).
    Present(bool),
    /// The value is an integer in `start..end` (Envoy's `range_match`).
    Range {
        /// Inclusive lower bound.
        start: i64,
        /// Exclusive upper bound.
        end: i64,
    },
}

impl HeaderMatcher {
    /// Whether a header with `value` (`None`: absent) satisfies the matcher.
    pub fn matches(&self, value: Option<&str>) -> bool {
        let hit = match (&self.kind, value) {
            (HeaderMatch::Present(want), v) => v.is_some() == *want,
            // Only an inverted matcher takes an absent header.
            (_, None) => return self.invert,
            (HeaderMatch::Value(m), Some(v)) => m.matches(v, false),
            (HeaderMatch::Range { start, end }, Some(v)) => v
                .trim()
                .parse::<i64>()
                .is_ok_and(|n| (*start..*end).contains(&n)),
        };
        hit != self.invert
    }
}

/// How one query parameter is matched (Envoy's `QueryParameterMatcher`).
#[derive(Clone, Debug, PartialEq)]
pub struct QueryMatcher {
    /// The parameter name, compared exactly.
    pub name: String,
    /// The value's match; `None` means the parameter need only be present.
    pub value: Option<StringMatch>,
}

impl QueryMatcher {
    /// Whether the query string `query` (without `?`) satisfies the matcher.
    /// The first occurrence of the parameter is the one matched, as Envoy.
    pub fn matches(&self, query: Option<&str>) -> bool {
        match query_param(query, &self.name) {
            None => false,
            Some(v) => self.value.as_ref().is_none_or(|m| m.matches(v, false)),
        }
    }
}

/// The raw value of the first `name` parameter in `query`.
pub fn query_param<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_matches() {
        let exact = StringMatch::Exact("Jason".into());
        assert!(exact.matches("Jason", false));
        assert!(!exact.matches("jason", false));
        assert!(exact.matches("jason", true));
        assert!(StringMatch::Prefix("/rev".into()).matches("/reviews", false));
        assert!(StringMatch::Prefix("/REV".into()).matches("/reviews", true));
        assert!(!StringMatch::Prefix("/reviews/1".into()).matches("/rev", false));
        assert!(StringMatch::Suffix(".css".into()).matches("/a.css", false));
        assert!(StringMatch::Contains("view".into()).matches("/reviews", false));
        assert!(StringMatch::Contains("VIEW".into()).matches("/reviews", true));
        let re = StringMatch::regex("/reviews/[0-9]+").unwrap();
        assert!(re.matches("/reviews/12", false));
        assert!(
            !re.matches("/reviews/12/x", false),
            "regex must match whole"
        );
        assert_eq!(re.to_string(), "regex \"/reviews/[0-9]+\"");
    }

    #[test]
    fn a_pattern_cannot_escape_the_whole_string_anchors() {
        // Each would match inside a longer value if it could close the
        // anchoring group: `^(?:a)|(b)$` matches "xxb" and "axx".
        for pattern in ["a)|(b", "a)|.*|(b", ".*)|(?:x", "x)(?:"] {
            let err = StringMatch::regex(pattern).unwrap_err();
            assert!(err.to_string().contains(&format!("{pattern:?}")), "{err}");
        }
        // Alternation inside the pattern is anchored as a whole.
        let re = StringMatch::regex("a|b").unwrap();
        assert!(re.matches("a", false) && re.matches("b", false));
        assert!(!re.matches("ab", false) && !re.matches("xb", false));
        // A pattern that leaves a comment open cannot swallow the anchors.
        assert!(StringMatch::regex("(?x)a#").is_err());
    }

    #[test]
    fn bad_regex_names_the_pattern() {
        let err = StringMatch::regex("/reviews/(").unwrap_err();
        assert!(err.to_string().contains("\"/reviews/(\""), "{err}");
    }

    #[test]
    fn header_matchers() {
        let m = |kind, invert| HeaderMatcher {
            name: HeaderName::from_static("end-user"),
            kind,
            invert,
        };
        let jason = m(
            HeaderMatch::Value(StringMatch::Exact("jason".into())),
            false,
        );
        assert!(jason.matches(Some("jason")));
        assert!(!jason.matches(Some("bob")));
        assert!(!jason.matches(None));
        let not_jason = m(HeaderMatch::Value(StringMatch::Exact("jason".into())), true);
        assert!(not_jason.matches(Some("bob")));
        assert!(not_jason.matches(None));
        assert!(!not_jason.matches(Some("jason")));
        assert!(m(HeaderMatch::Present(true), false).matches(Some("")));
        assert!(!m(HeaderMatch::Present(true), false).matches(None));
        assert!(m(HeaderMatch::Present(false), false).matches(None));
        assert!(m(HeaderMatch::Present(true), true).matches(None));
        let range = m(HeaderMatch::Range { start: 10, end: 20 }, false);
        assert!(range.matches(Some("10")));
        assert!(!range.matches(Some("20")));
        assert!(!range.matches(Some("x")));
    }

    #[test]
    fn query_matchers() {
        let m = QueryMatcher {
            name: "user".into(),
            value: Some(StringMatch::Exact("jason".into())),
        };
        assert!(m.matches(Some("a=1&user=jason")));
        assert!(!m.matches(Some("a=1&user=bob&user=jason")));
        assert!(!m.matches(None));
        let present = QueryMatcher {
            name: "debug".into(),
            value: None,
        };
        assert!(present.matches(Some("debug")));
        assert!(!present.matches(Some("debugging=1")));
    }
}
