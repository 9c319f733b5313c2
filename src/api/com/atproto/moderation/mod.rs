//! `com.atproto.moderation`: methods not implemented here answer `MethodNotImplemented`.

use aurora_generated::com::atproto::moderation::Service;

use crate::api::Api;

impl Service for Api {}
