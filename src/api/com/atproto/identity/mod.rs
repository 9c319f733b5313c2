//! `com.atproto.identity`: methods not implemented here answer `MethodNotImplemented`.

use aurora_generated::com::atproto::identity::Service;

use crate::api::Api;

impl Service for Api {}
