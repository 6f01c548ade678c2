//! productpage's sessions: who signed in, by the random token of the
//! `session` cookie, as Flask's session cookie keeps the user. Bounded:
//! past [`MAX_SESSIONS`] the oldest is forgotten.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

/// The most sessions kept.
pub(super) const MAX_SESSIONS: usize = 10_000;

/// The cookie a session is kept in.
pub(super) const COOKIE: &str = "session";

/// The signed-in users, by token; clones share them.
#[derive(Clone, Debug, Default)]
pub struct Sessions {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    users: HashMap<String, String>,
    order: VecDeque<String>,
}

impl Sessions {
    /// Signs `user` in: the token of their new session.
    pub fn start(&self, user: &str) -> String {
        let token = format!("{:032x}", rand::random::<u128>());
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        while inner.users.len() >= MAX_SESSIONS {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            inner.users.remove(&oldest);
        }
        inner.users.insert(token.clone(), user.to_owned());
        inner.order.push_back(token.clone());
        token
    }

    /// The user of the session `token`, if it is one.
    pub fn user(&self, token: &str) -> Option<String> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.users.get(token).cloned()
    }

    /// Ends the session `token`.
    pub fn end(&self, token: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.users.remove(token).is_some() {
            inner.order.retain(|t| t != token);
        }
    }
}

/// The session token in the `Cookie` headers of `headers`.
pub(super) fn token(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE).then_some(value)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_kept_by_token_and_bounded() {
        let sessions = Sessions::default();
        let jason = sessions.start("jason");
        assert_eq!(sessions.user(&jason).as_deref(), Some("jason"));
        for i in 0..MAX_SESSIONS {
            sessions.start(&format!("user{i}"));
        }
        assert_eq!(sessions.user(&jason), None, "the oldest is forgotten");
        let ann = sessions.start("ann");
        sessions.end(&ann);
        assert_eq!(sessions.user(&ann), None);
    }

    #[test]
    fn the_token_is_read_among_other_cookies() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::COOKIE,
            "a=1; session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(token(&headers), Some("abc"));
        headers.insert(http::header::COOKIE, "sessions=x".parse().unwrap());
        assert_eq!(token(&headers), None);
    }
}
