//! Where things are in the YAML: field paths as Istio's validation prints
//! them (`spec.http[0].route[1].weight`), the [`Origin`] of each resource,
//! and the line a path is on.
//!
//! The YAML parser reports lines only for its own errors, so the line of a
//! field found wrong later is looked up by reading the document again and
//! stopping at that field; the parser then names its position. This costs
//! a second read of one document per error or warning, and nothing when
//! all is well.

use std::fmt;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::error::Location;

/// A field path: keys and sequence indices from the document's root.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FieldPath(Vec<Segment>);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

impl FieldPath {
    /// The document's root.
    pub(crate) fn root() -> Self {
        Self::default()
    }

    /// This path, then the map key `key`.
    pub(crate) fn key(&self, key: &str) -> Self {
        let mut p = self.clone();
        p.0.push(Segment::Key(key.to_owned()));
        p
    }

    /// This path, then the sequence index `index`.
    pub(crate) fn index(&self, index: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Segment::Index(index));
        p
    }

    /// The path of a field `serde_ignored` reports.
    pub(crate) fn from_ignored(path: &serde_ignored::Path<'_>) -> Self {
        use serde_ignored::Path;
        match path {
            Path::Root => Self::root(),
            Path::Seq { parent, index } => Self::from_ignored(parent).index(*index),
            Path::Map { parent, key } => Self::from_ignored(parent).key(key),
            Path::Some { parent }
            | Path::NewtypeStruct { parent }
            | Path::NewtypeVariant { parent } => Self::from_ignored(parent),
        }
    }

    /// The keys of the path when it has no indices, for comparisons.
    pub(crate) fn keys(&self) -> Vec<&str> {
        self.0
            .iter()
            .map(|s| match s {
                Segment::Key(k) => k.as_str(),
                Segment::Index(_) => "[]",
            })
            .collect()
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(k) if i == 0 => f.write_str(k)?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Where a resource came from: the source's name, the document in it and,
/// for resources read by [`parse`](super::parse), the text, so that lines
/// can be found.
#[derive(Clone, Debug)]
pub struct Origin {
    source: Arc<str>,
    document: Option<usize>,
    text: Option<Arc<str>>,
}

impl Origin {
    /// The origin of a resource built in code or read elsewhere: errors
    /// about it name `source` and `document` (counted from 1) but no line.
    pub fn new(source: impl Into<Arc<str>>, document: Option<usize>) -> Self {
        Self {
            source: source.into(),
            document,
            text: None,
        }
    }

    /// Document `document` (counted from 1) of `text`.
    pub(crate) fn in_text(source: Arc<str>, document: usize, text: Arc<str>) -> Self {
        Self {
            source,
            document: Some(document),
            text: Some(text),
        }
    }

    /// The source's name.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The document, counted from 1.
    pub fn document(&self) -> Option<usize> {
        self.document
    }

    /// The location of `path` in this resource, with its line when it can
    /// be found (the nearest enclosing field's when the field itself is
    /// not written).
    pub(crate) fn locate(&self, resource: Option<&str>, path: &FieldPath) -> Location {
        Location {
            source: self.source.clone(),
            document: self.document,
            resource: resource.map(str::to_owned),
            line: self.line(path),
            path: path.to_string(),
        }
    }

    /// The location of the document as a whole, at `line`.
    pub(crate) fn at_line(&self, resource: Option<&str>, line: Option<usize>) -> Location {
        Location {
            source: self.source.clone(),
            document: self.document,
            resource: resource.map(str::to_owned),
            line,
            path: String::new(),
        }
    }

    fn line(&self, path: &FieldPath) -> Option<usize> {
        let text = self.text.as_deref()?;
        let doc =
            serde_yaml_ng::Deserializer::from_str(text).nth(self.document?.checked_sub(1)?)?;
        let err = Locate(&path.0).deserialize(doc).err()?;
        err.location().map(|l| l.line())
    }
}

/// Walks a document along a path and fails where it stops, so that the
/// parser's error carries that position.
struct Locate<'p>(&'p [Segment]);

const HERE: &str = "located";

impl<'de> DeserializeSeed<'de> for Locate<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(Walk(self.0))
    }
}

struct Walk<'p>(&'p [Segment]);

impl Walk<'_> {
    fn here<E: de::Error>(&self) -> Result<(), E> {
        Err(E::custom(HERE))
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((Segment::Key(want), rest)) = self.0.split_first() else {
            return self.here();
        };
        while let Some(key) = map.next_key::<IgnoredOrString>()? {
            if key.0.as_deref() == Some(want.as_str()) {
                return map.next_value_seed(Locate(rest));
            }
            map.next_value::<IgnoredAny>()?;
        }
        self.here()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((Segment::Index(want), rest)) = self.0.split_first() else {
            return self.here();
        };
        for _ in 0..*want {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return self.here();
            }
        }
        seq.next_element_seed(Locate(rest))?;
        self.here()
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.here()
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.here()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.here()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.here()
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.here()
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.here()
    }
}

/// A map key: its text when it is a string, else nothing.
struct IgnoredOrString(Option<String>);

impl<'de> serde::Deserialize<'de> for IgnoredOrString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;

        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = IgnoredOrString;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map key")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(IgnoredOrString(Some(v.to_owned())))
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(IgnoredOrString(None))
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(IgnoredOrString(None))
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(IgnoredOrString(None))
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(IgnoredOrString(None))
            }

            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(IgnoredOrString(None))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(IgnoredOrString(None))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(IgnoredOrString(None))
            }
        }

        deserializer.deserialize_any(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "---\nkind: VirtualService\nspec:\n  http:\n  - route:\n    - weight: 5\n      foo: 1\n    - weight: 7\n---\nkind: Other\nspec: {a: [1, 2]}\n";

    fn line(document: usize, path: &FieldPath) -> Option<usize> {
        Origin::in_text("t.yaml".into(), document, TEXT.into()).line(path)
    }

    #[test]
    fn paths_print_as_istio_writes_them() {
        let p = FieldPath::root()
            .key("spec")
            .key("http")
            .index(0)
            .key("route")
            .index(1);
        assert_eq!(p.to_string(), "spec.http[0].route[1]");
        assert_eq!(p.keys(), ["spec", "http", "[]", "route", "[]"]);
    }

    #[test]
    fn finds_the_line_of_a_field() {
        let route = FieldPath::root()
            .key("spec")
            .key("http")
            .index(0)
            .key("route");
        assert_eq!(line(1, &route.index(1).key("weight")), Some(8));
        assert_eq!(line(1, &route.index(0).key("foo")), Some(7));
        // An absent field: the nearest enclosing one.
        assert_eq!(line(1, &route.index(1).key("headers")), Some(8));
        assert_eq!(line(1, &route.index(9)), Some(6));
        assert_eq!(
            line(2, &FieldPath::root().key("spec").key("a").index(1)),
            Some(11)
        );
        assert_eq!(line(3, &FieldPath::root()), None);
        let none = Origin::new("t.yaml", Some(1));
        assert_eq!(none.line(&route), None);
    }
}
