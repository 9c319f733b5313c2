//! `com.atproto.lexicon`: methods not implemented here answer `MethodNotImplemented`.

use aurora_generated::com::atproto::lexicon::Service;

use crate::api::Api;

impl Service for Api {}
