//! The embedded backend: everything under one state directory (`--state-dir`, default
//! `.broker`): `broker.db` (SQLite, WAL) holds the queues and the bus, `store/` the objects.
//! Several processes on one machine share it safely: every queue operation is one SQLite
//! transaction taken with `BEGIN IMMEDIATE`.

pub mod db;
pub mod dir_store;
pub mod sqlite_bus;
pub mod sqlite_queue;

pub use db::Db;
pub use dir_store::DirStore;
pub use sqlite_bus::SqliteBus;
pub use sqlite_queue::SqliteQueue;
