//! The edge of managed training: the server side of the worker protocol,
//! dataset uploads and checkpoint downloads over REST, and their error shape.
//! The work itself is in `ftl_effects::training` and `ftl_effects::worker`.

pub mod http;
pub mod rest;
pub mod worker_api;
