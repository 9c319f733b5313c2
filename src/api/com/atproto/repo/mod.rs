//! `com.atproto.repo`: methods not implemented here answer `MethodNotImplemented`.

use aurora_generated::com::atproto::repo::Service;

use crate::api::Api;

impl Service for Api {}
