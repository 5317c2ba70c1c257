//! Errors for everything user data reaches: files, formats, arguments.
//! Shape mismatches inside the library are programmer errors and panic instead.

use std::path::PathBuf;

/// The library's error type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error, with the file it concerns. The I/O error is part of
    /// the message, not a separate `source()`: error reporters that print
    /// the chain (anyhow's `{:#}`) would say it twice.
    #[error("{path}: {error}")]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// A file whose contents do not match its format.
    #[error("{path}: {msg}")]
    Format {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },
    /// A value that is out of its allowed range or otherwise invalid.
    #[error("{0}")]
    Invalid(String),
    /// A download that failed on every source tried; the message lists them
    /// and says how to use files already on disk instead.
    #[error("{0}")]
    Download(String),
}

impl Error {
    /// A format error for `path`.
    pub fn format(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            msg: msg.into(),
        }
    }

    /// An I/O error for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error: source,
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
