//! The edge of managed training: the server side of the worker protocol,
//! dataset uploads and checkpoint downloads over REST, and their error shape.
//! The work itself is in `ftl_effects::training` and `ftl_trainer::worker`;
//! the protocol's wire types are `ftl_domain::job::worker_protocol`.

pub mod http;
pub mod rest;
pub mod worker_api;
