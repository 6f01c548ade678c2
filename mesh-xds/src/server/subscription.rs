//! What one stream subscribed to for one type: named resources, the
//! wildcard, or both, following the xDS spec's rules for each protocol.

use std::collections::BTreeSet;

/// The wildcard's explicit name.
const WILDCARD: &str = "*";

/// The names one stream subscribed to for one type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Subscription {
    /// Every resource of the type, as Envoy's LDS and CDS ask.
    wildcard: bool,
    names: BTreeSet<String>,
    /// Whether an empty list still means the wildcard: only until the
    /// first non-empty list (the spec's "legacy wildcard").
    empty_is_wildcard: bool,
}

impl Default for Subscription {
    fn default() -> Self {
        Self {
            wildcard: false,
            names: BTreeSet::new(),
            empty_is_wildcard: true,
        }
    }
}

impl Subscription {
    /// How many names are subscribed by name.
    pub(super) fn len(&self) -> usize {
        self.names.len()
    }

    /// The names subscribed by name (the wildcard aside).
    pub(super) fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    /// The names subscribed by name now and not in `before`.
    pub(super) fn added_since<'a>(&'a self, before: &'a Self) -> impl Iterator<Item = String> + 'a {
        self.names.difference(&before.names).cloned()
    }

    /// Whether the resource `name` is subscribed.
    pub(super) fn wants(&self, name: &str) -> bool {
        self.wildcard || self.names.contains(name)
    }

    /// State of the world: the request's list replaces the subscription.
    /// An empty list is the wildcard until the client has sent a non-empty
    /// one; after that it unsubscribes everything.
    pub(super) fn replace(&mut self, names: &[String]) {
        if names.is_empty() {
            self.wildcard = self.empty_is_wildcard;
            self.names.clear();
            return;
        }
        self.empty_is_wildcard = false;
        self.wildcard = names.iter().any(|n| n == WILDCARD);
        self.names = names.iter().filter(|n| *n != WILDCARD).cloned().collect();
    }

    /// Delta: the request's lists change the subscription. A first
    /// request subscribing to nothing is the wildcard; after that the
    /// wildcard goes only by unsubscribing `*`.
    pub(super) fn apply(&mut self, first: bool, subscribe: &[String], unsubscribe: &[String]) {
        if first && subscribe.is_empty() {
            self.wildcard = true;
        }
        for name in subscribe {
            if name == WILDCARD {
                self.wildcard = true;
            } else {
                self.names.insert(name.clone());
            }
        }
        for name in unsubscribe {
            if name == WILDCARD {
                self.wildcard = false;
            } else {
                self.names.remove(name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn a_first_empty_list_is_the_wildcard_and_stays_so() {
        let mut s = Subscription::default();
        s.replace(&[]);
        assert!(s.wants("anything"));
        s.replace(&[]);
        assert!(s.wants("anything"));
    }

    #[test]
    fn an_empty_list_after_names_unsubscribes_everything() {
        let mut s = Subscription::default();
        s.replace(&names(&["a"]));
        assert!(s.wants("a"));
        assert!(!s.wants("b"));
        s.replace(&[]);
        assert!(!s.wants("a"));
        assert!(!s.wants("b"));
    }

    #[test]
    fn a_star_is_the_wildcard_beside_names() {
        let mut s = Subscription::default();
        s.replace(&names(&["a"]));
        s.replace(&names(&["*", "a"]));
        assert!(s.wants("b"));
        s.replace(&names(&["a"]));
        assert!(!s.wants("b"));
    }

    #[test]
    fn delta_wildcard_lasts_until_star_is_unsubscribed() {
        let mut s = Subscription::default();
        s.apply(true, &[], &[]);
        assert!(s.wants("b"));
        s.apply(false, &names(&["a"]), &[]);
        assert!(s.wants("b"));
        s.apply(false, &[], &names(&["*"]));
        assert!(!s.wants("b"));
        assert!(s.wants("a"));
    }

    #[test]
    fn delta_names_come_and_go() {
        let mut s = Subscription::default();
        s.apply(true, &names(&["a", "b"]), &[]);
        assert!(!s.wants("c"));
        s.apply(false, &[], &names(&["a"]));
        assert!(!s.wants("a"));
        assert!(s.wants("b"));
    }
}
