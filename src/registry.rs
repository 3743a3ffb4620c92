//! Named factories for the pluggable policies (schedulers, congestion controllers, path
//! managers): one [`Registry`] per kind, holding the built-in names and whatever a program
//! registers at run time, so that the command line, the Rust API and the C ABI accept the
//! same names and a researcher's policy, in their own crate, is one `register` call away:
//!
//! ```
//! use mptun::sched::{self, Decision, SchedContext, Scheduler, SubflowView};
//!
//! #[derive(Debug)]
//! struct FirstUsable;
//! impl Scheduler for FirstUsable {
//!     fn name(&self) -> &'static str { "first-usable" }
//!     fn schedule(&mut self, _ctx: &SchedContext, subflows: &[SubflowView]) -> Decision {
//!         sched::MinRtt::new().schedule(_ctx, subflows) // (a real one decides itself)
//!     }
//! }
//! sched::register("first-usable", || Box::new(FirstUsable)).unwrap();
//! assert!(sched::by_name("first-usable").is_some());
//! assert!(sched::names().contains(&"first-usable"));
//! ```
//!
//! Names are 1-32 characters of `a-z`, `0-9`, `-` and `_`; a name is taken once (built-in
//! names cannot be replaced). Registered names live as long as the program.

use core::fmt;
use std::sync::{Arc, RwLock};

/// Why a policy could not be registered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterError {
    /// A built-in or an earlier registration already has this name.
    Taken(String),
    /// Not 1-32 characters of `a-z`, `0-9`, `-`, `_`.
    BadName(String),
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterError::Taken(n) => write!(f, "the name {n:?} is already registered"),
            RegisterError::BadName(n) => write!(
                f,
                "{n:?} is not a policy name (1-32 characters of a-z, 0-9, '-', '_')"
            ),
        }
    }
}

impl std::error::Error for RegisterError {}

/// Built-in names plus run-time registrations of factories `F` (a `dyn Fn` type).
pub struct Registry<F: ?Sized + 'static> {
    builtin: &'static [&'static str],
    extra: RwLock<Vec<(&'static str, Arc<F>)>>,
}

impl<F: ?Sized + 'static> Registry<F> {
    /// A registry whose built-in names are `builtin` (their factories are the caller's own
    /// `match`; the registry only keeps the names taken).
    pub const fn new(builtin: &'static [&'static str]) -> Self {
        Registry {
            builtin,
            extra: RwLock::new(Vec::new()),
        }
    }

    /// Add `factory` under `name`.
    pub fn register(&self, name: &str, factory: Arc<F>) -> Result<(), RegisterError> {
        let ok = !name.is_empty()
            && name.len() <= 32
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !ok {
            return Err(RegisterError::BadName(name.to_string()));
        }
        let mut extra = self.extra.write().unwrap_or_else(|p| p.into_inner());
        if self.builtin.contains(&name) || extra.iter().any(|(n, _)| *n == name) {
            return Err(RegisterError::Taken(name.to_string()));
        }
        // registered names live as long as the program (configurations hold `&'static str`)
        let name: &'static str = Box::leak(name.to_string().into_boxed_str());
        extra.push((name, factory));
        Ok(())
    }

    /// The factory registered under `name` (not the built-ins).
    pub fn get(&self, name: &str) -> Option<Arc<F>> {
        let extra = self.extra.read().unwrap_or_else(|p| p.into_inner());
        extra
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| f.clone())
    }

    /// `name` as the registry's `&'static str` (built-in or registered), if known.
    pub fn canonical(&self, name: &str) -> Option<&'static str> {
        if let Some(b) = self.builtin.iter().find(|b| **b == name) {
            return Some(b);
        }
        let extra = self.extra.read().unwrap_or_else(|p| p.into_inner());
        extra.iter().find(|(n, _)| *n == name).map(|(n, _)| *n)
    }

    /// Every name: the built-ins, then the registered ones in registration order.
    pub fn names(&self) -> Vec<&'static str> {
        let extra = self.extra.read().unwrap_or_else(|p| p.into_inner());
        self.builtin
            .iter()
            .copied()
            .chain(extra.iter().map(|(n, _)| *n))
            .collect()
    }
}

impl<F: ?Sized + 'static> fmt::Debug for Registry<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Make = dyn Fn() -> u32 + Send + Sync;

    #[test]
    fn names_are_checked_taken_once_and_listed_in_order() {
        let r: Registry<Make> = Registry::new(&["a", "b"]);
        assert_eq!(r.names(), vec!["a", "b"]);
        assert_eq!(
            r.register("a", Arc::new(|| 1)),
            Err(RegisterError::Taken("a".into()))
        );
        for bad in ["", "Upper", "with:colon", "sp ace", &"x".repeat(33)] {
            assert_eq!(
                r.register(bad, Arc::new(|| 1)),
                Err(RegisterError::BadName(bad.to_string()))
            );
        }
        r.register("mine-2", Arc::new(|| 7)).unwrap();
        assert_eq!(
            r.register("mine-2", Arc::new(|| 8)),
            Err(RegisterError::Taken("mine-2".into()))
        );
        assert_eq!(r.get("mine-2").map(|f| f()), Some(7));
        assert!(r.get("a").is_none(), "built-ins are the caller's own match");
        assert_eq!(r.canonical("a"), Some("a"));
        assert_eq!(r.canonical("mine-2"), Some("mine-2"));
        assert_eq!(r.canonical("nope"), None);
        assert_eq!(r.names(), vec!["a", "b", "mine-2"]);
    }
}
