//! The library's integration tests, one binary (`tidy.rs`, the architecture rules, is the
//! other). Each module is one former test file; `inputs` holds the hostile-input generators
//! the fuzz targets share.

mod contract_embedded;
mod engine;
mod guard;
mod hostile_inputs;
mod http_bounds;
mod inputs;
mod load;
mod load_server;
