//! The typed model of the configuration files: `catalog.toml` and `security.toml` as written
//! (`files`), principals, roles and credentials (`security`) and declared column types
//! (`types`). Grants and policies are kept here as data; the planner validates them against
//! the datasets and resolves them per principal. The server's own `server.toml` is the
//! server's (bund-server).

pub(crate) mod files;
pub(crate) mod security;
pub(crate) mod types;
