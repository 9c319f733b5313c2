//! Methods that need more than an ordinary session, shared by service auth and the proxy.

/// Methods no service-auth token may be minted for and the proxy never forwards: they manage
/// the account itself.
pub const PROTECTED: &[&str] = &[
    "com.atproto.admin.sendEmail",
    "com.atproto.identity.requestPlcOperationSignature",
    "com.atproto.identity.signPlcOperation",
    "com.atproto.identity.updateHandle",
    "com.atproto.server.activateAccount",
    "com.atproto.server.confirmEmail",
    "com.atproto.server.createAppPassword",
    "com.atproto.server.deactivateAccount",
    "com.atproto.server.getAccountInviteCodes",
    "com.atproto.server.getSession",
    "com.atproto.server.listAppPasswords",
    "com.atproto.server.requestAccountDelete",
    "com.atproto.server.requestEmailConfirmation",
    "com.atproto.server.requestEmailUpdate",
    "com.atproto.server.revokeAppPassword",
    "com.atproto.server.updateEmail",
];

/// Methods that need a full session or a privileged app password (private messages, and
/// moving the account elsewhere).
pub const PRIVILEGED: &[&str] = &[
    "com.atproto.server.createAccount",
    "chat.bsky.actor.deleteAccount",
    "chat.bsky.actor.exportAccountData",
    "chat.bsky.convo.deleteMessageForSelf",
    "chat.bsky.convo.getConvo",
    "chat.bsky.convo.getConvoForMembers",
    "chat.bsky.convo.getLog",
    "chat.bsky.convo.getMessages",
    "chat.bsky.convo.leaveConvo",
    "chat.bsky.convo.listConvos",
    "chat.bsky.convo.muteConvo",
    "chat.bsky.convo.sendMessage",
    "chat.bsky.convo.sendMessageBatch",
    "chat.bsky.convo.unmuteConvo",
    "chat.bsky.convo.updateRead",
];

pub fn is_protected(nsid: &str) -> bool {
    PROTECTED.iter().any(|m| m.eq_ignore_ascii_case(nsid))
}

pub fn is_privileged(nsid: &str) -> bool {
    PRIVILEGED.iter().any(|m| m.eq_ignore_ascii_case(nsid))
}
