//! What a NACK says: the resource that was rejected, the field at fault
//! (`virtual_hosts[0].routes[2].match.safe_regex.regex`) and why; and what a
//! conversion left out on purpose.

use std::fmt;

/// A resource the mesh cannot use. Its `Display` is the text sent back as
/// the NACK's `error_detail`:
///
/// ```text
/// RouteConfiguration "9080": virtual_hosts[0].routes[2].match.safe_regex.regex: invalid regex "(": …
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ResourceError {
    /// The resource's type, as xDS names it: `RouteConfiguration`,
    /// `Cluster`, `ClusterLoadAssignment` or `Listener`.
    pub type_name: &'static str,
    /// The resource's name.
    pub resource: String,
    /// The path to the field at fault, in the proto's field names; empty
    /// when the resource as a whole is at fault.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for ResourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}: ", self.type_name, self.resource)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.reason)
    }
}

/// A part of a resource that was accepted but not applied, because the mesh
/// does as gRPC's xDS client does and ignores it (a route that matches on
/// cookies, say). Worth a log line; not a reason to NACK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ignored {
    /// The path to the part left out.
    pub field: String,
    /// Why.
    pub reason: String,
}

impl fmt::Display for Ignored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// A field error not yet tied to its resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FieldError {
    pub(crate) field: String,
    pub(crate) reason: String,
}

impl FieldError {
    /// Ties the error to the resource `name` of type `type_name`.
    pub(crate) fn in_resource(self, type_name: &'static str, name: &str) -> ResourceError {
        ResourceError {
            type_name,
            resource: name.to_owned(),
            field: self.field,
            reason: self.reason,
        }
    }
}

/// Where in a resource a conversion is: a chain of field names, indices
/// and map keys kept on the stack, written out only when an error needs it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct At<'a> {
    parent: Option<&'a At<'a>>,
    step: Step<'a>,
}

#[derive(Clone, Copy, Debug)]
enum Step<'a> {
    Root,
    Field(&'static str),
    Index(usize),
    Key(&'a str),
}

impl<'a> At<'a> {
    /// The resource itself.
    pub(crate) const ROOT: At<'static> = At {
        parent: None,
        step: Step::Root,
    };

    /// The field `name` of this message.
    pub(crate) fn field<'b>(&'b self, name: &'static str) -> At<'b> {
        At {
            parent: Some(self),
            step: Step::Field(name),
        }
    }

    /// Element `i` of this list.
    pub(crate) fn index<'b>(&'b self, i: usize) -> At<'b> {
        At {
            parent: Some(self),
            step: Step::Index(i),
        }
    }

    /// The entry `key` of this map.
    pub(crate) fn key<'b>(&'b self, key: &'b str) -> At<'b> {
        At {
            parent: Some(self),
            step: Step::Key(key),
        }
    }

    /// An error at this field.
    pub(crate) fn error(&self, reason: impl fmt::Display) -> FieldError {
        FieldError {
            field: self.to_string(),
            reason: reason.to_string(),
        }
    }

    /// A note that this part was left out.
    pub(crate) fn ignored(&self, reason: impl fmt::Display) -> Ignored {
        Ignored {
            field: self.to_string(),
            reason: reason.to_string(),
        }
    }
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut steps = Vec::new();
        let mut at = Some(self);
        while let Some(a) = at {
            steps.push(a.step);
            at = a.parent;
        }
        let mut first = true;
        for step in steps.into_iter().rev() {
            match step {
                Step::Root => continue,
                Step::Field(name) if first => f.write_str(name)?,
                Step::Field(name) => write!(f, ".{name}")?,
                Step::Index(i) => write!(f, "[{i}]")?,
                Step::Key(k) => write!(f, "[{k:?}]")?,
            }
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_written_as_proto_fields() {
        let vhs = At::ROOT.field("virtual_hosts");
        let vh = vhs.index(0);
        let routes = vh.field("routes");
        let route = routes.index(2);
        let tpfc = route.field("typed_per_filter_config");
        let fault = tpfc.key("envoy.filters.http.fault");
        assert_eq!(
            fault.to_string(),
            r#"virtual_hosts[0].routes[2].typed_per_filter_config["envoy.filters.http.fault"]"#
        );
        assert_eq!(At::ROOT.to_string(), "");
    }

    #[test]
    fn display_is_the_nack_text() {
        let at = At::ROOT.field("name");
        let err = at.error("must not be empty").in_resource("Cluster", "");
        assert_eq!(err.to_string(), r#"Cluster "": name: must not be empty"#);
        let whole = At::ROOT.error("broken").in_resource("Cluster", "c");
        assert_eq!(whole.to_string(), r#"Cluster "c": broken"#);
    }
}
