//! Adapters: implementations of `crate::ports`. `embedded` (SQLite file + directory) is the
//! default, for one machine with no cloud account; the AWS adapters come beside it.

pub mod embedded;
