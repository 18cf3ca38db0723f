use std::fmt;
use std::path::PathBuf;

/// One problem found in a configuration file: which file, which entry, which field, what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// The entry, e.g. `bureau "police" table "residents"`; empty for the file itself.
    pub entry: String,
    /// The field within the entry, e.g. `location`; empty when the whole entry is wrong.
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if !self.entry.is_empty() {
            write!(f, ": {}", self.entry)?;
        }
        if !self.field.is_empty() {
            write!(f, ": field `{}`", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found while loading a configuration directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// Adds a problem: the file, the entry (empty for the whole file), the field (empty for
    /// the whole entry) and what is wrong.
    pub fn push(
        &mut self,
        file: &std::path::Path,
        entry: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.0.push(ConfigError {
            file: file.to_path_buf(),
            entry: entry.into(),
            field: field.into(),
            message: message.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{n} configuration error(s):\n{errors}", n = .0.len(), errors = .0)]
    Invalid(ConfigErrors),
    #[error("unknown principal or wrong password")]
    BadCredentials,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
