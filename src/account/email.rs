//! Email address syntax: what a mail server would plausibly accept. Deliverability is proved by
//! the confirmation mail, not here.

/// Whether `address` looks like a deliverable address: one `@`, a non-empty local part without
/// spaces, and a domain of at least two dot-separated labels.
pub fn is_valid(address: &str) -> bool {
    if address.len() > 254 || address.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = address.rsplit_once('@') else { return false };
    if local.is_empty() || local.len() > 64 || local.contains('@') || local.starts_with('.') || local.ends_with('.') {
        return false;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::is_valid;

    #[test]
    fn ordinary_addresses_pass_and_broken_ones_do_not() {
        for ok in ["alice@example.com", "a+tag@mail.example.org", "ü@bücher.de", "a@b.test"] {
            assert!(is_valid(ok), "{ok}");
        }
        for bad in ["", "alice", "alice@", "@example.com", "a@localhost", "a@b..com", "a b@example.com", "a@-b.com"] {
            assert!(!is_valid(bad), "{bad}");
        }
    }
}
