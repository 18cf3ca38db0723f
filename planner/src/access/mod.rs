//! A principal's view of the catalog, resolved once per configuration: the topic libraries
//! and open datasets planned over sealed tables (`views`), grants and policies validated
//! against the datasets and resolved per principal into an [`Access`] (`policy`), the
//! tables a session's catalog holds (`sealed`), and masks that another column undoes
//! (`derivable`, warnings of `bund check`).
//!
//! [`load`] is how a configuration directory becomes something to plan with: the catalogs
//! crate reads the files and opens the sources, this module adds the views and the access
//! of every principal, and every problem of both is reported together.

mod derivable;
mod policy;
mod sealed;
mod views;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use bund_catalogs::{Catalog, ConfigErrors, Error, LoadOptions};

pub(crate) use derivable::derivable_masks;
pub use policy::{Access, DEFAULT_MASK_ORDER, ScanPolicy, VisibleDataset};
pub(crate) use sealed::{DatasetScan, SealedTable};

/// A configuration loaded and resolved: the catalog with its views, and each principal's
/// access by principal id (`anonymous` included when granted).
pub(crate) struct Resolved {
    pub(crate) catalog: Catalog,
    pub(crate) access: HashMap<String, Arc<Access>>,
}

/// Reads the configuration directory, opens every source, plans every view and resolves
/// every principal's access. Returns every problem at once.
pub(crate) async fn load(opts: &LoadOptions) -> Result<Resolved, Error> {
    let mut errors = ConfigErrors::default();
    let mut catalog = Catalog::read(opts, &mut errors).await?;
    let state = catalog.load_state();
    let catalog_path = opts.config_dir.join("catalog.toml");
    views::plan(
        &catalog.views,
        &catalog_path,
        &state,
        &mut catalog.datasets,
        &mut errors,
    )
    .await;
    let access = if errors.is_empty() {
        policy::Resolver {
            path: &opts.config_dir.join("security.toml"),
            security: &catalog.security,
            unavailable: &catalog.unavailable,
            datasets: &catalog.datasets,
            state: &state,
        }
        .resolve(&mut errors)
    } else {
        HashMap::new()
    };
    if errors.is_empty() {
        Ok(Resolved { catalog, access })
    } else {
        Err(Error::Invalid(errors))
    }
}
