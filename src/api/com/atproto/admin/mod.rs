//! `com.atproto.admin`: methods not implemented here answer `MethodNotImplemented`.

use aurora_generated::com::atproto::admin::Service;

use crate::api::Api;

impl Service for Api {}
