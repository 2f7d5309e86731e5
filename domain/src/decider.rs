//! The decider pattern: pure `decide` and `evolve`, plus a given/when/then
//! harness for tests.

use crate::DomainError;
use chrono::{DateTime, Utc};

pub trait Decider {
    type State: Default + Clone;
    type Command;
    type Event: Clone;

    /// Decides which events a command produces in a state, or rejects it.
    fn decide(
        state: &Self::State,
        command: &Self::Command,
        now: DateTime<Utc>,
    ) -> Result<Vec<Self::Event>, DomainError>;

    /// Folds one event into the state.
    fn evolve(state: Self::State, event: &Self::Event) -> Self::State;

    /// Folds a history into the state.
    fn fold<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self::State
    where
        Self::Event: 'a,
    {
        events
            .into_iter()
            .fold(Self::State::default(), Self::evolve)
    }
}

/// Given events, when a command, then events or an error.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use std::fmt::Debug;

    pub struct Given<D: Decider> {
        state: D::State,
        now: DateTime<Utc>,
    }

    pub fn given<D: Decider>(events: &[D::Event]) -> Given<D> {
        Given {
            state: D::fold(events.iter()),
            now: DateTime::UNIX_EPOCH,
        }
    }

    impl<D: Decider> Given<D>
    where
        D::Event: PartialEq + Debug,
    {
        pub fn when(self, command: D::Command) -> Then<D> {
            Then {
                result: D::decide(&self.state, &command, self.now),
            }
        }
    }

    pub struct Then<D: Decider> {
        result: Result<Vec<D::Event>, DomainError>,
    }

    impl<D: Decider> Then<D>
    where
        D::Event: PartialEq + Debug,
    {
        #[track_caller]
        pub fn then(self, expected: Vec<D::Event>) {
            assert_eq!(self.result, Ok(expected));
        }
        #[track_caller]
        pub fn then_error(self, expected: DomainError) {
            assert_eq!(self.result, Err(expected));
        }
        #[track_caller]
        pub fn then_error_matches(self, pred: impl Fn(&DomainError) -> bool) {
            match self.result {
                Err(e) if pred(&e) => {}
                other => panic!("unexpected result {other:?}"),
            }
        }
    }
}
