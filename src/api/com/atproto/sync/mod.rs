//! `com.atproto.sync`: methods not implemented here answer `MethodNotImplemented`.

use aurora_generated::com::atproto::sync::Service;

use crate::api::Api;

impl Service for Api {}
