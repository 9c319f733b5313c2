//! `com.atproto.temp.checkSignupQueue`: this server signs people up at once; there is no queue
//! to wait in.

use aurora_generated::com::atproto::temp::check_signup_queue::Output;

pub fn handle() -> Output {
    Output { activated: true, place_in_queue: None, estimated_time_ms: None, extra: Default::default() }
}
