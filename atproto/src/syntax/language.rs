//! The `language` format: BCP-47 language tags (RFC 5646), such as `en`, `pt-BR` or `zh-Hant`.

use super::{Format, SyntaxError};

/// Tags RFC 5646 grandfathers from earlier registries. Several (`i-default`, `sgn-BE-NL`) do not
/// fit the regular grammar, so they are recognised whole.
const GRANDFATHERED: [&str; 26] = [
    "en-GB-oed",
    "i-ami",
    "i-bnn",
    "i-default",
    "i-enochian",
    "i-hak",
    "i-klingon",
    "i-lux",
    "i-mingo",
    "i-navajo",
    "i-pwn",
    "i-tao",
    "i-tay",
    "i-tsu",
    "sgn-BE-FR",
    "sgn-BE-NL",
    "sgn-CH-DE",
    "art-lojban",
    "cel-gaulish",
    "no-bok",
    "no-nyn",
    "zh-guoyu",
    "zh-hakka",
    "zh-min",
    "zh-min-nan",
    "zh-xiang",
];

super::string_newtype!(
    /// A well-formed and valid BCP-47 language tag. Subtags after the first may use any case
    /// (`pt-BR`, `zh-Hant`), but the primary language subtag must be lowercase, as atproto
    /// requires; repeated variants or extension singletons are rejected, as RFC 5646 §2.2.9 asks.
    Language,
    validate
);

impl Language {
    /// The primary language subtag, e.g. `pt` for `pt-BR` (or `x` for a private-use tag).
    pub fn primary(&self) -> &str {
        self.0.split('-').next().unwrap_or_default()
    }
}

pub(crate) fn validate(text: &str) -> Result<(), SyntaxError> {
    check(text).map_err(|reason| SyntaxError::new(Format::Language, reason))
}

fn check(text: &str) -> Result<(), &'static str> {
    let subtags: Vec<&str> = text.split('-').collect();
    if subtags.iter().any(|subtag| subtag.is_empty() || subtag.len() > 8 || !is_alphanumeric(subtag)) {
        return Err("every subtag must have 1 to 8 ASCII letters or digits");
    }
    let first = subtags[0];
    if first.bytes().any(|b| b.is_ascii_uppercase()) && !is_private_use_singleton(first) {
        return Err("the primary language subtag must be lowercase");
    }
    if GRANDFATHERED.iter().any(|tag| tag.eq_ignore_ascii_case(text)) {
        return Ok(());
    }
    let mut rest = Subtags { items: &subtags };
    if is_private_use_singleton(first) {
        return rest.private_use();
    }
    let primary = rest.take_if(|s| is_alpha(s) && matches!(s.len(), 2 | 3 | 5..=8));
    let Some(primary) = primary else {
        return Err("the primary language subtag must be 2-3 or 5-8 letters");
    };
    if primary.len() <= 3 {
        // Up to three extended language subtags may follow a short primary subtag.
        for _ in 0..3 {
            if rest.take_if(|s| s.len() == 3 && is_alpha(s)).is_none() {
                break;
            }
        }
    }
    rest.take_if(|s| s.len() == 4 && is_alpha(s));
    rest.take_if(|s| (s.len() == 2 && is_alpha(s)) || (s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit())));
    rest.variants()?;
    rest.extensions()?;
    if rest.items.is_empty() {
        return Ok(());
    }
    rest.private_use()
}

/// The subtags not yet consumed, in order.
struct Subtags<'a, 'b> {
    items: &'b [&'a str],
}

impl<'a> Subtags<'a, '_> {
    fn take_if(&mut self, accept: impl Fn(&str) -> bool) -> Option<&'a str> {
        let (&first, rest) = self.items.split_first()?;
        if !accept(first) {
            return None;
        }
        self.items = rest;
        Some(first)
    }

    fn variants(&mut self) -> Result<(), &'static str> {
        let mut seen: Vec<String> = Vec::new();
        let is_variant =
            |s: &str| matches!(s.len(), 5..=8) || (s.len() == 4 && s.starts_with(|c: char| c.is_ascii_digit()));
        while let Some(variant) = self.take_if(is_variant) {
            let variant = variant.to_ascii_lowercase();
            if seen.contains(&variant) {
                return Err("a variant subtag is repeated");
            }
            seen.push(variant);
        }
        Ok(())
    }

    fn extensions(&mut self) -> Result<(), &'static str> {
        let mut seen: Vec<u8> = Vec::new();
        while let Some(singleton) = self.take_if(|s| s.len() == 1 && !is_private_use_singleton(s)) {
            let singleton = singleton.as_bytes()[0].to_ascii_lowercase();
            if seen.contains(&singleton) {
                return Err("an extension singleton is repeated");
            }
            seen.push(singleton);
            if self.take_if(|s| s.len() >= 2).is_none() {
                return Err("an extension singleton has no subtags");
            }
            while self.take_if(|s| s.len() >= 2).is_some() {}
        }
        Ok(())
    }

    /// `x-…` to the end of the tag: one or more subtags of 1 to 8 characters.
    fn private_use(&mut self) -> Result<(), &'static str> {
        if self.take_if(is_private_use_singleton).is_none() {
            return Err("unexpected subtag");
        }
        if self.items.is_empty() {
            return Err("a private-use singleton has no subtags");
        }
        Ok(())
    }
}

fn is_private_use_singleton(subtag: &str) -> bool {
    subtag.eq_ignore_ascii_case("x")
}

fn is_alpha(subtag: &str) -> bool {
    subtag.bytes().all(|b| b.is_ascii_alphabetic())
}

fn is_alphanumeric(subtag: &str) -> bool {
    subtag.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a clear test failure
mod tests {
    use super::*;

    #[test]
    fn a_region_subtag_may_be_uppercase() {
        assert_eq!("pt-BR".parse::<Language>().unwrap().primary(), "pt");
    }

    #[test]
    fn an_uppercase_primary_subtag_is_rejected() {
        assert!("JA".parse::<Language>().is_err());
    }

    #[test]
    fn a_four_letter_primary_subtag_is_reserved() {
        assert!("jaja".parse::<Language>().is_err());
    }

    #[test]
    fn a_repeated_variant_is_rejected_whatever_its_case() {
        assert!("en-rozaj-ROZAJ".parse::<Language>().is_err());
    }

    #[test]
    fn an_extension_needs_at_least_one_subtag() {
        assert!("en-u".parse::<Language>().is_err());
        assert!("en-u-x-foo".parse::<Language>().is_err());
    }

    #[test]
    fn a_tag_may_be_entirely_private_use() {
        assert!("x-whatever".parse::<Language>().is_ok());
        assert!("x".parse::<Language>().is_err());
    }
}
