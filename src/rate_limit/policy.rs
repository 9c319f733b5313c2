//! Which limits each method counts against: the reference PDS's limits, names and keys.

use std::time::Duration;

const FIVE_MIN: Duration = Duration::from_secs(5 * 60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// A number of points a key may spend per window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// The counter's name, shared by every method that names it (and by every replica).
    pub name: &'static str,
    pub window: Duration,
    pub points: u32,
}

/// What a limit's counter is kept per.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyBy {
    /// The client's IP address.
    Ip,
    /// The account the credential acts for.
    Account,
    /// The sign-in identifier (lowercased) and the client's IP address.
    IdentifierAndIp,
    /// One counter for the whole server.
    Server,
}

/// What a request costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cost {
    Points(u32),
    /// Repository writes: 3 per create, 2 per update, 1 per delete (applyWrites adds them up).
    Writes,
}

#[derive(Clone, Copy, Debug)]
pub struct Rule {
    pub limit: Limit,
    pub key: KeyBy,
    pub cost: Cost,
}

const fn rule(name: &'static str, window: Duration, points: u32, key: KeyBy) -> Rule {
    Rule { limit: Limit { name, window, points }, key, cost: Cost::Points(1) }
}

/// Every XRPC request from one address (getRepo has its own).
pub const GLOBAL: Limit = Limit { name: "global-ip", window: FIVE_MIN, points: 3000 };

const REPO_WRITE_HOUR: Rule = Rule {
    limit: Limit { name: "repo-write-hour", window: HOUR, points: 5000 },
    key: KeyBy::Account,
    cost: Cost::Writes,
};
const REPO_WRITE_DAY: Rule = Rule {
    limit: Limit { name: "repo-write-day", window: DAY, points: 35_000 },
    key: KeyBy::Account,
    cost: Cost::Writes,
};

/// Sign-in attempts, shared by createSession and the sign-in pages.
pub const SIGN_IN: &[Rule] = &[
    rule("com.atproto.server.createSession-0", DAY, 300, KeyBy::IdentifierAndIp),
    rule("com.atproto.server.createSession-1", FIVE_MIN, 30, KeyBy::IdentifierAndIp),
];

/// Guesses at a mailed code, per account.
const EMAIL_CODE: Rule = rule("email-code", FIVE_MIN, 30, KeyBy::Account);

/// Failed administrator sign-ins, per address.
pub const ADMIN_AUTH: Limit = Limit { name: "admin-auth", window: FIVE_MIN, points: 30 };

/// The limits `nsid` counts against besides [`GLOBAL`].
pub fn rules(nsid: &str) -> &'static [Rule] {
    match nsid {
        "com.atproto.server.createSession" => SIGN_IN,
        "com.atproto.server.createAccount" => {
            const { &[rule("com.atproto.server.createAccount-0", FIVE_MIN, 100, KeyBy::Ip)] }
        }
        "com.atproto.server.deleteAccount" => {
            const { &[rule("com.atproto.server.deleteAccount-0", FIVE_MIN, 50, KeyBy::Ip)] }
        }
        // A reset code is looked up across every account, so wrong guesses anywhere add up:
        // the server-wide budget keeps their sum far below what guessing one would take.
        "com.atproto.server.resetPassword" => {
            const {
                &[
                    rule("com.atproto.server.resetPassword-0", FIVE_MIN, 50, KeyBy::Ip),
                    rule("reset-code-attempts", HOUR, 500, KeyBy::Server),
                ]
            }
        }
        "com.atproto.server.requestPasswordReset" => {
            const {
                &[
                    rule("com.atproto.server.requestPasswordReset-0", DAY, 50, KeyBy::Ip),
                    rule("com.atproto.server.requestPasswordReset-1", HOUR, 15, KeyBy::Ip),
                ]
            }
        }
        "com.atproto.server.requestAccountDelete" => {
            const { &[rule("com.atproto.server.requestAccountDelete-0", DAY, 15, KeyBy::Account)] }
        }
        "com.atproto.server.requestEmailConfirmation" => {
            const { &[rule("com.atproto.server.requestEmailConfirmation-0", DAY, 15, KeyBy::Account)] }
        }
        "com.atproto.server.requestEmailUpdate" => {
            const { &[rule("com.atproto.server.requestEmailUpdate-0", DAY, 15, KeyBy::Account)] }
        }
        "com.atproto.server.confirmEmail"
        | "com.atproto.server.updateEmail"
        | "com.atproto.identity.signPlcOperation" => const { &[EMAIL_CODE] },
        "com.atproto.identity.updateHandle" => {
            const {
                &[
                    rule("com.atproto.identity.updateHandle-0", FIVE_MIN, 10, KeyBy::Account),
                    rule("com.atproto.identity.updateHandle-1", DAY, 50, KeyBy::Account),
                ]
            }
        }
        "com.atproto.repo.uploadBlob" => const { &[rule("com.atproto.repo.uploadBlob-0", DAY, 1000, KeyBy::Account)] },
        "com.atproto.repo.createRecord"
        | "com.atproto.repo.putRecord"
        | "com.atproto.repo.deleteRecord"
        | "com.atproto.repo.applyWrites" => const { &[REPO_WRITE_HOUR, REPO_WRITE_DAY] },
        "com.atproto.server.reserveSigningKey" => {
            const { &[rule("com.atproto.server.reserveSigningKey-0", FIVE_MIN, 100, KeyBy::Ip)] }
        }
        "com.atproto.sync.getRepo" => const { &[rule("com.atproto.sync.getRepo-0", FIVE_MIN, 6000, KeyBy::Ip)] },
        _ => const { &[] },
    }
}

/// Whether `nsid` also counts against [`GLOBAL`]: getRepo is a bulk sync path with its own.
pub fn counts_globally(nsid: &str) -> bool {
    nsid != "com.atproto.sync.getRepo"
}

/// The input field a method's limits read.
pub fn input_field(nsid: &str) -> Option<&'static str> {
    match nsid {
        "com.atproto.server.createSession" => Some("identifier"),
        "com.atproto.repo.applyWrites" => Some("writes"),
        _ => None,
    }
}

/// What a request to `nsid` with `field` (see [`input_field`]) costs against `cost`.
pub fn points(nsid: &str, cost: Cost, field: Option<&serde_json::Value>) -> u32 {
    match cost {
        Cost::Points(points) => points,
        Cost::Writes => match nsid {
            "com.atproto.repo.createRecord" => 3,
            "com.atproto.repo.putRecord" => 2,
            "com.atproto.repo.deleteRecord" => 1,
            _ => field
                .and_then(|writes| writes.as_array())
                .map(|writes| writes.iter().map(write_points).sum())
                .unwrap_or(0),
        },
    }
}

fn write_points(write: &serde_json::Value) -> u32 {
    match write.get("$type").and_then(|t| t.as_str()) {
        Some("com.atproto.repo.applyWrites#create") => 3,
        Some("com.atproto.repo.applyWrites#update") => 2,
        Some("com.atproto.repo.applyWrites#delete") => 1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_writes_costs_what_its_writes_would_cost_alone() {
        let writes = serde_json::json!([
            { "$type": "com.atproto.repo.applyWrites#create" },
            { "$type": "com.atproto.repo.applyWrites#update" },
            { "$type": "com.atproto.repo.applyWrites#delete" },
            { "$type": "com.atproto.repo.applyWrites#create" },
        ]);
        assert_eq!(points("com.atproto.repo.applyWrites", Cost::Writes, Some(&writes)), 9);
        assert_eq!(points("com.atproto.repo.createRecord", Cost::Writes, None), 3);
        assert_eq!(points("com.atproto.repo.deleteRecord", Cost::Writes, None), 1);
    }

    #[test]
    fn get_repo_has_its_own_limit_and_skips_the_global_one() {
        assert!(!counts_globally("com.atproto.sync.getRepo"));
        assert_eq!(rules("com.atproto.sync.getRepo")[0].limit.points, 6000);
        assert!(counts_globally("com.atproto.repo.getRecord"));
    }
}
