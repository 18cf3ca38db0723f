//! The bureaus' sources: files on object storage (`files`) and databases, including other
//! Flight SQL services (`database`). This is the only code in Bund that connects to a
//! bureau's systems.

pub(crate) mod database;
pub(crate) mod files;
