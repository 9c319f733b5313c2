//! `com.atproto.server`: methods not implemented here answer `MethodNotImplemented`.

use aurora_generated::com::atproto::server::Service;

use crate::api::Api;

impl Service for Api {}
