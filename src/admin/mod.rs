//! Running the server: takedowns of accounts, records and blobs (`takedown`), the accounts
//! operators look at (`accounts`), and the audit log every admin action is written to
//! (`audit`). The admin XRPC methods, the CLI (through them) and the dashboard all act through
//! these, so each action has one implementation and one audit entry.

pub mod accounts;
pub mod audit;
pub mod overview;
pub mod takedown;
