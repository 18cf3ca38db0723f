//! The statement a session is planning: for whom, what it touched, until when.
//!
//! Every statement is planned in a copy of one session made when the catalog is loaded
//! (`engine.rs`); building a session for each statement registered every function again,
//! about a tenth of a `SELECT 1`'s server time. What differs between statements travels in
//! the copy's configuration as a [`Scope`], where the secure-scan rewrite and the deadline
//! checks between the optimizer's rules read it. A plan analysed without a scope is refused
//! (`rewrite.rs`).

use std::any::Any;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use datafusion::common::config::{ConfigEntry, ConfigExtension, ConfigOptions, ExtensionOptions};
use datafusion::common::{Result, plan_err};

use crate::access::Access;
use crate::rewrite::Touched;

/// One statement's principal, the datasets and policies its rewrite touched, and the end of
/// its planning.
#[derive(Clone)]
pub(crate) struct Scope {
    pub(crate) access: Arc<Access>,
    pub(crate) touched: Arc<Mutex<Touched>>,
    pub(crate) deadline: Option<Instant>,
}

impl Scope {
    /// The scope of the statement `config` belongs to, if any.
    pub(crate) fn of(config: &ConfigOptions) -> Option<&Scope> {
        config.extensions.get::<Scope>()
    }
}

impl std::fmt::Debug for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl ConfigExtension for Scope {
    const PREFIX: &'static str = "bund_scope";
}

impl ExtensionOptions for Scope {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    /// Nothing in a scope is a setting: `SET bund_scope.…` changes nothing.
    fn set(&mut self, key: &str, _value: &str) -> Result<()> {
        plan_err!("{}.{key} is not a setting", Self::PREFIX)
    }

    /// Listed nowhere (`SHOW ALL`, information_schema.df_settings).
    fn entries(&self) -> Vec<ConfigEntry> {
        Vec::new()
    }
}
