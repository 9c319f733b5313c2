//! `com.atproto.label`: methods not implemented here answer `MethodNotImplemented`.

use aurora_generated::com::atproto::label::Service;

use crate::api::Api;

impl Service for Api {}
