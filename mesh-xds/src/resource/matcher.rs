//! Envoy's `StringMatcher` read as a mesh [`StringMatch`]: what routes'
//! header, method and authority matches and TLS contexts' subject alt name
//! matchers are written in.

use envoy_types::pb::envoy::r#type::matcher::v3::string_matcher::MatchPattern;
use envoy_types::pb::envoy::r#type::matcher::v3::{RegexMatcher, StringMatcher};
use mesh_core::route::StringMatch;

use crate::resource::error::{At, FieldError};

/// A `StringMatcher`. With `ignore_case`, literal matches become
/// case-insensitive regular expressions (it has no effect on `safe_regex`,
/// as in Envoy). A `custom` matcher is an error: the caller decides
/// whether to leave out what it was for.
pub(crate) fn string_match(m: &StringMatcher, at: &At<'_>) -> Result<StringMatch, FieldError> {
    let caseless = |field: &'static str, s: &str, before: &str, after: &str| {
        let pattern = format!("{before}(?i:{}){after}", regex::escape(s));
        compile(&pattern, &at.field(field))
    };
    let any = "(?s:.*)";
    Ok(match &m.match_pattern {
        None => return Err(at.error("no match pattern")),
        Some(MatchPattern::SafeRegex(r)) => regex(r, &at.field("safe_regex"))?,
        Some(MatchPattern::Custom(_)) => {
            return Err(at
                .field("custom")
                .error("custom matchers are not supported"));
        }
        Some(MatchPattern::Exact(s)) if !m.ignore_case => StringMatch::Exact(s.clone()),
        Some(MatchPattern::Prefix(s)) if !m.ignore_case => StringMatch::Prefix(s.clone()),
        Some(MatchPattern::Suffix(s)) if !m.ignore_case => StringMatch::Suffix(s.clone()),
        Some(MatchPattern::Contains(s)) if !m.ignore_case => StringMatch::Contains(s.clone()),
        Some(MatchPattern::Exact(s)) => caseless("exact", s, "", "")?,
        Some(MatchPattern::Prefix(s)) => caseless("prefix", s, "", any)?,
        Some(MatchPattern::Suffix(s)) => caseless("suffix", s, any, "")?,
        Some(MatchPattern::Contains(s)) => caseless("contains", s, any, any)?,
    })
}

/// A `RegexMatcher`: a whole-string match, RE2 syntax.
pub(crate) fn regex(r: &RegexMatcher, at: &At<'_>) -> Result<StringMatch, FieldError> {
    compile(&r.regex, &at.field("regex"))
}

/// The whole-string regular expression `pattern`.
pub(crate) fn compile(pattern: &str, at: &At<'_>) -> Result<StringMatch, FieldError> {
    StringMatch::regex(pattern).map_err(|e| at.error(e))
}
