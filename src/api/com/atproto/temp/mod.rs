//! `com.atproto.temp`: methods not implemented here answer `MethodNotImplemented`.

use aurora_generated::com::atproto::temp::Service;

use crate::api::Api;

impl Service for Api {}
