//! atproto JSON ⇄ IPLD: `{"$link": …}` is a CID link and `{"$bytes": …}` is a byte string.

use std::collections::BTreeMap;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use serde_json::{Map, Number, Value};

use super::rules::{check_integer, check_map};
use super::{DataError, Ipld, MAX_SAFE_INTEGER};

/// Reads standard base64 with or without padding: the spec writes it unpadded, but a padded
/// string is unambiguous and some clients send one.
const BASE64_READ: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A JSON value in the data model, converted to IPLD.
pub fn json_to_ipld(value: &Value) -> Result<Ipld, DataError> {
    Ok(match value {
        Value::Null => Ipld::Null,
        Value::Bool(flag) => Ipld::Bool(*flag),
        Value::Number(number) => Ipld::Integer(integer_from_json(number)?.into()),
        Value::String(text) => Ipld::String(text.clone()),
        Value::Array(items) => Ipld::List(items.iter().map(json_to_ipld).collect::<Result<_, _>>()?),
        Value::Object(object) => object_to_ipld(object)?,
    })
}

/// A JSON object in the data model (a record, say) as an IPLD map; data at the top level of a
/// record or block must be an object.
pub fn object_from_json(value: &Value) -> Result<BTreeMap<String, Ipld>, DataError> {
    match value {
        Value::Object(object) => match object_to_ipld(object)? {
            Ipld::Map(map) => Ok(map),
            // A top-level `$link` or `$bytes` object is a link or bytes, not an object.
            _ => Err(DataError::NotAnObject),
        },
        _ => Err(DataError::NotAnObject),
    }
}

/// An IPLD value in the data model, converted to atproto JSON.
pub fn ipld_to_json(value: &Ipld) -> Result<Value, DataError> {
    Ok(match value {
        Ipld::Null => Value::Null,
        Ipld::Bool(flag) => Value::Bool(*flag),
        Ipld::Integer(integer) => Value::Number(check_integer(*integer)?.into()),
        Ipld::Float(_) => return Err(DataError::Float),
        Ipld::String(text) => Value::String(text.clone()),
        Ipld::Bytes(bytes) => single_entry("$bytes", STANDARD_NO_PAD.encode(bytes)),
        Ipld::Link(cid) => single_entry("$link", cid.to_string()),
        Ipld::List(items) => Value::Array(items.iter().map(ipld_to_json).collect::<Result<_, _>>()?),
        Ipld::Map(map) => {
            check_map(map)?;
            let object = map
                .iter()
                .map(|(key, value)| Ok((key.clone(), ipld_to_json(value)?)))
                .collect::<Result<Map<_, _>, DataError>>()?;
            Value::Object(object)
        }
    })
}

fn single_entry(key: &str, value: String) -> Value {
    Value::Object(Map::from_iter([(key.to_owned(), Value::String(value))]))
}

/// An integer from JSON. JavaScript writes every number as a double, so `123.0` is the integer
/// 123; a fraction, or a magnitude past 2^53 − 1, is outside the data model.
fn integer_from_json(number: &Number) -> Result<i64, DataError> {
    if let Some(integer) = number.as_i64() {
        return check_integer(integer.into());
    }
    if number.is_u64() {
        return Err(DataError::IntegerOutOfRange);
    }
    match number.as_f64() {
        Some(float) if float.fract() == 0.0 && float.abs() <= MAX_SAFE_INTEGER as f64 => Ok(float as i64),
        Some(float) if float.fract() == 0.0 => Err(DataError::IntegerOutOfRange),
        _ => Err(DataError::Float),
    }
}

fn object_to_ipld(object: &Map<String, Value>) -> Result<Ipld, DataError> {
    if let Some(link) = object.get("$link") {
        return link_from_json(object, link);
    }
    if let Some(bytes) = object.get("$bytes") {
        return bytes_from_json(object, bytes);
    }
    let map = object
        .iter()
        .map(|(key, value)| Ok((key.clone(), json_to_ipld(value)?)))
        .collect::<Result<BTreeMap<_, _>, DataError>>()?;
    check_map(&map)?;
    Ok(Ipld::Map(map))
}

fn link_from_json(object: &Map<String, Value>, link: &Value) -> Result<Ipld, DataError> {
    if object.len() != 1 {
        return Err(DataError::InvalidLink("has keys besides $link"));
    }
    let Value::String(text) = link else {
        return Err(DataError::InvalidLink("$link must be a string"));
    };
    let cid = crate::cids::parse(text).map_err(|_| DataError::InvalidLink("not a CID"))?;
    // Only the canonical spelling is accepted, so that converting back yields the same text;
    // the CID crate would also take other multibases and `/ipfs/` paths.
    if cid.to_string() != *text {
        return Err(DataError::InvalidLink("not a CID in its canonical string form"));
    }
    Ok(Ipld::Link(cid))
}

fn bytes_from_json(object: &Map<String, Value>, bytes: &Value) -> Result<Ipld, DataError> {
    if object.len() != 1 {
        return Err(DataError::InvalidBytes("has keys besides $bytes"));
    }
    let Value::String(text) = bytes else {
        return Err(DataError::InvalidBytes("$bytes must be a string"));
    };
    let decoded = BASE64_READ.decode(text).map_err(|_| DataError::InvalidBytes("not base64"))?;
    Ok(Ipld::Bytes(decoded))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a clear test failure
mod tests {
    use serde_json::json;

    use super::*;

    const CID: &str = "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a";

    #[test]
    fn a_link_object_becomes_a_link_and_back() {
        let value = json!({ "$link": CID });
        let ipld = json_to_ipld(&value).unwrap();
        assert!(matches!(ipld, Ipld::Link(_)));
        assert_eq!(ipld_to_json(&ipld).unwrap(), value);
    }

    #[test]
    fn bytes_are_written_as_unpadded_base64_and_read_padded_or_not() {
        let ipld = Ipld::Bytes(vec![1, 2, 3, 4]);
        assert_eq!(ipld_to_json(&ipld).unwrap(), json!({ "$bytes": "AQIDBA" }));
        assert_eq!(json_to_ipld(&json!({ "$bytes": "AQIDBA==" })).unwrap(), ipld);
    }

    #[test]
    fn an_integer_written_as_a_float_is_an_integer() {
        assert_eq!(json_to_ipld(&json!(123.0)).unwrap(), Ipld::Integer(123));
    }

    #[test]
    fn a_fractional_number_is_rejected() {
        assert_eq!(json_to_ipld(&json!(0.5)), Err(DataError::Float));
    }

    #[test]
    fn a_huge_integer_is_rejected() {
        assert_eq!(json_to_ipld(&json!(u64::MAX)), Err(DataError::IntegerOutOfRange));
        assert_eq!(json_to_ipld(&json!(1e300)), Err(DataError::IntegerOutOfRange));
    }

    #[test]
    fn a_link_in_a_non_canonical_multibase_is_rejected() {
        let cid = cid::Cid::try_from(CID).unwrap();
        let base58 = cid.to_string_of_base(cid::multibase::Base::Base58Btc).unwrap();
        assert!(json_to_ipld(&json!({ "$link": base58 })).is_err());
    }

    #[test]
    fn a_top_level_link_is_not_an_object() {
        assert_eq!(object_from_json(&json!({ "$link": CID })), Err(DataError::NotAnObject));
    }
}
