//! Where things are in the YAML: field paths as Istio's validation prints
//! them (`spec.http[0].route[1].weight`), the [`Origin`] of each resource,
//! and the line a path is on.
//!
//! The YAML parser reports lines only for its own errors, so the line of a
//! field found wrong later is looked up by reading its document again, on
//! its own, and stopping at that field; the parser then names its position.
//! Where each document of a file starts is found once, by one more read of
//! the file, the first time a line in it is wanted. Each error or warning
//! then costs a read of its own document only, and nothing is read again
//! when all is well.

use std::fmt;
use std::sync::{Arc, OnceLock};

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
    text: Option<Arc<Text>>,
}

/// The text of a file, shared by the origins of its resources, and where
/// its documents start once that is first wanted.
#[derive(Debug)]
pub(crate) struct Text {
    text: Box<str>,
    starts: OnceLock<Vec<Start>>,
}

/// Where a document starts: the byte offset of the line its content starts
/// on, and that line's number (from 1).
#[derive(Clone, Copy, Debug)]
struct Start {
    offset: usize,
    line: usize,
}

impl Text {
    /// `text`, its document starts not yet found.
    pub(crate) fn new(text: &str) -> Arc<Self> {
        Arc::new(Self {
            text: text.into(),
            starts: OnceLock::new(),
        })
    }

    /// The start of document `document` (counted from 0), reading the whole
    /// text the first time.
    fn start(&self, document: usize) -> Option<Start> {
        let starts = self.starts.get_or_init(|| {
            // The reader goes on yielding documents after a syntax error:
            // stop at the first document whose start the parser cannot tell.
            serde_yaml_ng::Deserializer::from_str(&self.text)
                .map_while(|doc| {
                    read_a_document();
                    let err = FirstNode.deserialize(doc).err()?;
                    if !err.to_string().starts_with(HERE) {
                        return None;
                    }
                    let at = err.location()?;
                    let before = self.text.get(..at.index())?;
                    let offset = before.rfind(['\n', '\r']).map_or(0, |i| i + 1);
                    Some(Start {
                        offset,
                        line: at.line(),
                    })
                })
                .collect()
        });
        starts.get(document).copied()
    }

    /// The line of `path` in document `document` (counted from 0): that
    /// document alone is read.
    fn line(&self, document: usize, path: &FieldPath) -> Option<usize> {
        let start = self.start(document)?;
        let doc = serde_yaml_ng::Deserializer::from_str(&self.text[start.offset..]).next()?;
        read_a_document();
        let err = Locate(&path.0).deserialize(doc).err()?;
        err.location().map(|l| l.line() + start.line - 1)
    }
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
    pub(crate) fn in_text(source: Arc<str>, document: usize, text: Arc<Text>) -> Self {
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
        self.text
            .as_deref()?
            .line(self.document?.checked_sub(1)?, path)
    }
}

/// Fails at a document's first node, so that the parser's error carries
/// where the document's content starts.
struct FirstNode;

impl<'de> DeserializeSeed<'de> for FirstNode {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(Walk(&[]))
    }
}

#[cfg(test)]
thread_local! {
    /// Documents read to find lines, on this thread.
    static DOCUMENTS_READ: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Counts a document read to find a line (in tests).
fn read_a_document() {
    #[cfg(test)]
    DOCUMENTS_READ.with(|n| n.set(n.get() + 1));
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
        Origin::in_text("t.yaml".into(), document, Text::new(TEXT)).line(path)
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

    #[test]
    fn documents_that_do_not_start_at_the_left_margin() {
        let text = Text::new(
            "# notes\n\n---\n  kind: A\n  spec:\n    x: 1\n--- {kind: B,\n  spec: {y: 2}}\n---\n- a\n- b: 3\n",
        );
        let origin = |d| Origin::in_text("t.yaml".into(), d, text.clone());
        let x = FieldPath::root().key("spec").key("x");
        assert_eq!(origin(1).line(&x), Some(6));
        let y = FieldPath::root().key("spec").key("y");
        assert_eq!(origin(2).line(&y), Some(8));
        assert_eq!(
            origin(3).line(&FieldPath::root().index(1).key("b")),
            Some(11)
        );
    }

    #[test]
    fn a_line_lookup_reads_one_document_not_those_before_it() {
        let n = 40;
        let text: String = (0..n)
            .map(|i| format!("---\nkind: VirtualService\nspec:\n  n: {i}\n"))
            .collect();
        let text = Text::new(&text);
        let n_at = FieldPath::root().key("spec").key("n");
        DOCUMENTS_READ.with(|c| c.set(0));
        for d in 1..=n {
            let origin = Origin::in_text("t.yaml".into(), d, text.clone());
            assert_eq!(origin.line(&n_at), Some(4 * d), "document {d}");
        }
        // Once through the file to find where documents start, then one
        // document per lookup.
        assert_eq!(DOCUMENTS_READ.with(|c| c.get()), 2 * n);
    }
}
