//! JSON answers written as serde_json writes them (compact, the same text byte for byte), with
//! strings scanned eight bytes at a time for the few bytes JSON escapes.
//!
//! serde_json looks up every byte of every string in its escape table, one at a time; in a
//! listRecords page, where nearly every byte is inside a string (keys, URIs, CIDs, the records'
//! text), that loop was a sixth of the page's instructions. Everything else about a value is
//! written as serde_json writes it: numbers through the same digits, floats by serde_json itself,
//! map keys that are numbers or booleans quoted, the same errors for keys that cannot be keys.

use std::fmt;

use serde::ser::{self, Impossible, Serialize};

/// Appends `value`'s JSON to `out`: exactly the bytes `serde_json::to_writer` would append.
/// A raw JSON value (serde_json's `RawValue`, or anything that serialises as one) is copied in
/// as it is, as serde_json copies it.
pub fn write<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), serde_json::Error> {
    let start = out.len();
    value.serialize(&mut Writer { out }).map_err(|Error(message)| {
        out.truncate(start);
        ser::Error::custom(message)
    })
}

#[derive(Debug)]
struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Error(message.to_string())
    }
}

/// The name serde_json's `RawValue` serialises under: a struct of one field of that name, whose
/// value is the raw JSON as text.
pub(crate) const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

fn key_must_be_a_string() -> Error {
    // serde_json's own words, so an error reads the same whichever writer met it.
    Error("key must be a string".to_owned())
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The top bit of each of a word's eight bytes that is a control character, `"` or `\\`, and
/// perhaps of a byte above one of them. The subtract-and-mask tests never miss a byte to
/// escape (bytes of 0x80 and above, UTF-8's, have their top bit set, which `!word` clears, so
/// they flag nothing); a byte flagged for a borrow from the one below it only sends its string
/// the slow way.
#[inline]
fn escape_bits(word: u64) -> u64 {
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    control | zero_byte(word ^ (ONES * u64::from(b'"'))) | zero_byte(word ^ (ONES * u64::from(b'\\')))
}

/// Whether any byte of `bytes` is one JSON escapes: whole words, the last one overlapping the
/// one before, their flags gathered without a branch (escapes are rare, so stopping early saves
/// nothing), and bytes one at a time only in strings shorter than a word.
#[inline]
fn any_to_escape(bytes: &[u8]) -> bool {
    let word = |chunk: &[u8]| {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        u64::from_ne_bytes(word)
    };
    if bytes.len() < 8 {
        return bytes.iter().any(|&byte| byte < 0x20 || byte == b'"' || byte == b'\\');
    }
    let words = bytes.chunks_exact(8).fold(0, |flags, chunk| flags | escape_bits(word(chunk)));
    (words | escape_bits(word(&bytes[bytes.len() - 8..]))) != 0
}

/// A JSON string: `text` between quotes, escaped as serde_json escapes it (the two-character
/// forms where JSON has them, `\u00XX` in lower-case hex for the other control characters).
/// Nearly every string has nothing to escape and is copied whole.
fn write_string(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    if any_to_escape(bytes) {
        write_escaped(out, bytes);
    } else {
        out.extend_from_slice(bytes);
    }
    out.push(b'"');
}

#[cold]
fn write_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut run = 0;
    for (at, &byte) in bytes.iter().enumerate() {
        let short = match byte {
            b'"' => b'"',
            b'\\' => b'\\',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x08 => b'b',
            0x0c => b'f',
            0x00..=0x1f => 0,
            _ => continue,
        };
        out.extend_from_slice(&bytes[run..at]);
        if short != 0 {
            out.extend_from_slice(&[b'\\', short]);
        } else {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ]);
        }
        run = at + 1;
    }
    out.extend_from_slice(&bytes[run..]);
}

/// The serializer methods for each integer type, all written the same way by `$write`.
macro_rules! integers {
    ($write:ident) => {
        integers!($write: serialize_i8 i8, serialize_i16 i16, serialize_i32 i32, serialize_i64 i64,
            serialize_i128 i128, serialize_u8 u8, serialize_u16 u16, serialize_u32 u32, serialize_u64 u64,
            serialize_u128 u128);
    };
    ($write:ident: $($method:ident $type:ty),*) => {
        $(
            fn $method(self, value: $type) -> Result<(), Error> {
                self.$write(value)
            }
        )*
    };
}

struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> Writer<'a> {
    fn integer(&mut self, value: impl itoa::Integer) -> Result<(), Error> {
        self.out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        Ok(())
    }

    /// A float as serde_json writes it (`null` when not finite).
    fn float<F: Serialize>(&mut self, value: F) -> Result<(), Error> {
        serde_json::to_writer(&mut *self.out, &value).map_err(ser::Error::custom)
    }

    fn open<'w>(&'w mut self, bracket: u8) -> Compound<'w, 'a> {
        self.out.push(bracket);
        Compound { writer: self, first: true, raw: false }
    }

    /// `{"variant":` before a variant's content; its compound closes the extra brace.
    fn variant(&mut self, variant: &str) {
        self.out.push(b'{');
        write_string(self.out, variant);
        self.out.push(b':');
    }
}

/// An array or object being written: `first` until its first element.
struct Compound<'w, 'a> {
    writer: &'w mut Writer<'a>,
    first: bool,
    /// A raw JSON value's struct: its one field is copied in as it is, without braces or key.
    raw: bool,
}

impl Compound<'_, '_> {
    fn comma(&mut self) {
        if !std::mem::take(&mut self.first) {
            self.writer.out.push(b',');
        }
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.comma();
        value.serialize(&mut *self.writer)
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), Error> {
        self.comma();
        write_string(self.writer.out, key);
        self.writer.out.push(b':');
        value.serialize(&mut *self.writer)
    }

    fn close(self, bracket: u8) {
        self.writer.out.push(bracket);
    }

    /// Closes a variant's content and the object around it.
    fn close_variant(self, bracket: u8) {
        self.writer.out.extend_from_slice(&[bracket, b'}']);
    }
}

impl<'w, 'a> ser::Serializer for &'w mut Writer<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'w, 'a>;
    type SerializeTuple = Compound<'w, 'a>;
    type SerializeTupleStruct = Compound<'w, 'a>;
    type SerializeTupleVariant = Compound<'w, 'a>;
    type SerializeMap = Compound<'w, 'a>;
    type SerializeStruct = Compound<'w, 'a>;
    type SerializeStructVariant = Compound<'w, 'a>;

    fn serialize_bool(self, value: bool) -> Result<(), Error> {
        self.out.extend_from_slice(if value { b"true" } else { b"false" });
        Ok(())
    }

    integers!(integer);

    fn serialize_f32(self, value: f32) -> Result<(), Error> {
        self.float(value)
    }

    fn serialize_f64(self, value: f64) -> Result<(), Error> {
        self.float(value)
    }

    fn serialize_char(self, value: char) -> Result<(), Error> {
        write_string(self.out, value.encode_utf8(&mut [0; 4]));
        Ok(())
    }

    fn serialize_str(self, value: &str) -> Result<(), Error> {
        write_string(self.out, value);
        Ok(())
    }

    fn serialize_bytes(self, value: &[u8]) -> Result<(), Error> {
        let mut seq = self.open(b'[');
        for byte in value {
            seq.element(byte)?;
        }
        seq.close(b']');
        Ok(())
    }

    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Error> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result<(), Error> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.variant(variant);
        value.serialize(&mut *self)?;
        self.out.push(b'}');
        Ok(())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'w, 'a>, Error> {
        Ok(self.open(b'['))
    }

    fn serialize_tuple(self, len: usize) -> Result<Compound<'w, 'a>, Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Compound<'w, 'a>, Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'w, 'a>, Error> {
        self.variant(variant);
        Ok(self.open(b'['))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'w, 'a>, Error> {
        Ok(self.open(b'{'))
    }

    fn serialize_struct(self, name: &'static str, _len: usize) -> Result<Compound<'w, 'a>, Error> {
        if name == RAW_VALUE_TOKEN {
            return Ok(Compound { writer: self, first: true, raw: true });
        }
        Ok(self.open(b'{'))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'w, 'a>, Error> {
        self.variant(variant);
        Ok(self.open(b'{'))
    }
}

/// The compound serializers whose elements are values: arrays, and a tuple variant's array.
macro_rules! elements {
    ($($trait:ident, $method:ident, $close:ident($bracket:literal);)*) => {
        $(
            impl ser::$trait for Compound<'_, '_> {
                type Ok = ();
                type Error = Error;

                fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
                    self.element(value)
                }

                fn end(self) -> Result<(), Error> {
                    self.$close($bracket);
                    Ok(())
                }
            }
        )*
    };
}

elements! {
    SerializeSeq, serialize_element, close(b']');
    SerializeTuple, serialize_element, close(b']');
    SerializeTupleStruct, serialize_field, close(b']');
    SerializeTupleVariant, serialize_field, close_variant(b']');
}

/// The compound serializers whose elements are named fields: structs and struct variants.
macro_rules! fields {
    ($($trait:ident, $close:ident;)*) => {
        $(
            impl ser::$trait for Compound<'_, '_> {
                type Ok = ();
                type Error = Error;

                fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
                    if self.raw {
                        return value.serialize(RawText { out: self.writer.out });
                    }
                    self.field(key, value)
                }

                fn end(self) -> Result<(), Error> {
                    if !self.raw {
                        self.$close(b'}');
                    }
                    Ok(())
                }
            }
        )*
    };
}

fields! {
    SerializeStruct, close;
    SerializeStructVariant, close_variant;
}

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.comma();
        key.serialize(KeyWriter { out: self.writer.out })
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.writer.out.push(b':');
        value.serialize(&mut *self.writer)
    }

    fn end(self) -> Result<(), Error> {
        self.close(b'}');
        Ok(())
    }
}

/// A raw JSON value's text, copied in as it is: serde_json's `RawValue` holds only JSON it
/// parsed, and this server's own raw values only JSON it wrote.
struct RawText<'a> {
    out: &'a mut Vec<u8>,
}

fn not_raw_text() -> Error {
    Error("a raw JSON value must be given as text".to_owned())
}

/// The types of a serializer that writes no compound values (keys, raw text): it never gets
/// as far as making one.
macro_rules! no_compounds {
    () => {
        type Ok = ();
        type Error = Error;
        type SerializeSeq = Impossible<(), Error>;
        type SerializeTuple = Impossible<(), Error>;
        type SerializeTupleStruct = Impossible<(), Error>;
        type SerializeTupleVariant = Impossible<(), Error>;
        type SerializeMap = Impossible<(), Error>;
        type SerializeStruct = Impossible<(), Error>;
        type SerializeStructVariant = Impossible<(), Error>;
    };
}

/// Serializer methods that refuse what they are given.
macro_rules! refuse {
    // Every compound value, and a newtype variant (written as an object).
    (compounds: $error:ident) => {
        refuse! { $error:
            serialize_seq(Option<usize>) -> Self::SerializeSeq;
            serialize_tuple(usize) -> Self::SerializeTuple;
            serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
            serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
            serialize_map(Option<usize>) -> Self::SerializeMap;
            serialize_struct(&'static str, usize) -> Self::SerializeStruct;
            serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
        }

        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _name: &'static str,
            _index: u32,
            _variant: &'static str,
            _value: &T,
        ) -> Result<(), Error> {
            Err($error())
        }
    };
    ($error:ident: $($method:ident($($arg:ty),*) -> $ok:ty;)*) => {
        $(
            fn $method(self, $(_: $arg),*) -> Result<$ok, Error> {
                Err($error())
            }
        )*
    };
}

impl ser::Serializer for RawText<'_> {
    no_compounds!();

    fn serialize_str(self, value: &str) -> Result<(), Error> {
        self.out.extend_from_slice(value.as_bytes());
        Ok(())
    }

    refuse!(compounds: not_raw_text);

    refuse! { not_raw_text:
        serialize_bool(bool) -> ();
        serialize_i8(i8) -> (); serialize_i16(i16) -> (); serialize_i32(i32) -> (); serialize_i64(i64) -> ();
        serialize_u8(u8) -> (); serialize_u16(u16) -> (); serialize_u32(u32) -> (); serialize_u64(u64) -> ();
        serialize_f32(f32) -> (); serialize_f64(f64) -> (); serialize_char(char) -> ();
        serialize_bytes(&[u8]) -> (); serialize_none() -> (); serialize_unit() -> ();
        serialize_unit_struct(&'static str) -> ();
        serialize_unit_variant(&'static str, u32, &'static str) -> ();
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<(), Error> {
        Err(not_raw_text())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, _value: &T) -> Result<(), Error> {
        Err(not_raw_text())
    }
}

/// A map key: a string, or a number or boolean written inside quotes, as serde_json allows.
struct KeyWriter<'a> {
    out: &'a mut Vec<u8>,
}

impl KeyWriter<'_> {
    /// An integer key, in quotes.
    fn quoted_integer(self, value: impl itoa::Integer) -> Result<(), Error> {
        self.quoted(|w| w.integer(value))
    }

    fn quoted(self, write: impl FnOnce(&mut Writer<'_>) -> Result<(), Error>) -> Result<(), Error> {
        self.out.push(b'"');
        write(&mut Writer { out: self.out })?;
        self.out.push(b'"');
        Ok(())
    }
}

impl ser::Serializer for KeyWriter<'_> {
    no_compounds!();

    fn serialize_bool(self, value: bool) -> Result<(), Error> {
        self.quoted(|w| w.serialize_bool(value))
    }

    integers!(quoted_integer);

    fn serialize_f32(self, value: f32) -> Result<(), Error> {
        if !value.is_finite() {
            return Err(Error("float key must be finite (got NaN or +/-inf)".to_owned()));
        }
        self.quoted(|w| w.serialize_f32(value))
    }

    fn serialize_f64(self, value: f64) -> Result<(), Error> {
        if !value.is_finite() {
            return Err(Error("float key must be finite (got NaN or +/-inf)".to_owned()));
        }
        self.quoted(|w| w.serialize_f64(value))
    }

    fn serialize_char(self, value: char) -> Result<(), Error> {
        write_string(self.out, value.encode_utf8(&mut [0; 4]));
        Ok(())
    }

    fn serialize_str(self, value: &str) -> Result<(), Error> {
        write_string(self.out, value);
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result<(), Error> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    refuse!(compounds: key_must_be_a_string);

    refuse! { key_must_be_a_string:
        serialize_bytes(&[u8]) -> (); serialize_none() -> (); serialize_unit() -> ();
        serialize_unit_struct(&'static str) -> ();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a clear test failure
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde_json::Value;

    use super::*;

    fn same_as_serde_json<T: Serialize + ?Sized>(value: &T) {
        let mut ours = b"before ".to_vec();
        let answer = write(&mut ours, value);
        match serde_json::to_vec(value) {
            Ok(theirs) => {
                answer.unwrap();
                assert_eq!(String::from_utf8_lossy(&ours[7..]), String::from_utf8_lossy(&theirs));
            }
            Err(theirs) => {
                assert_eq!(answer.unwrap_err().to_string(), theirs.to_string());
                assert_eq!(ours, b"before ", "a failed write leaves the buffer as it was");
            }
        }
    }

    #[derive(serde::Serialize)]
    enum Shapes {
        Unit,
        Newtype(Option<u8>),
        Tuple(i32, String),
        Struct { a: bool, b: Vec<()> },
    }

    #[derive(serde::Serialize)]
    struct Typed<'a> {
        #[serde(rename = "$type")]
        kind: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u32>,
        shapes: Vec<Shapes>,
        bytes: &'a [u8],
        #[serde(with = "serde_bytes")]
        byte_buf: Vec<u8>,
        floats: (f32, f64, f64, f64),
        chars: [char; 3],
        big: (u128, i128, i64, u64),
        empty: (Vec<u8>, BTreeMap<String, u8>),
        unit: (),
    }

    #[test]
    fn typed_values_are_written_as_serde_json_writes_them() {
        same_as_serde_json(&Typed {
            kind: "app.bsky.feed.post",
            skipped: None,
            shapes: vec![
                Shapes::Unit,
                Shapes::Newtype(Some(7)),
                Shapes::Newtype(None),
                Shapes::Tuple(-3, "\"x\"".into()),
                Shapes::Struct { a: true, b: vec![(), ()] },
            ],
            bytes: &[0, 1, 255],
            byte_buf: vec![9, 8],
            floats: (1.5, -0.0, f64::NAN, 1e300),
            chars: ['a', '\n', '\u{1F600}'],
            big: (u128::MAX, i128::MIN, i64::MIN, u64::MAX),
            empty: (vec![], BTreeMap::new()),
            unit: (),
        });
    }

    #[test]
    fn map_keys_are_written_or_refused_as_serde_json_does() {
        same_as_serde_json(&BTreeMap::from([(1u8, "one"), (200, "two hundred")]));
        same_as_serde_json(&BTreeMap::from([(-5i64, 1)]));
        same_as_serde_json(&BTreeMap::from([(true, 1), (false, 0)]));
        same_as_serde_json(&BTreeMap::from([('k', 1)]));
        same_as_serde_json(&FloatKey(0.25));
        same_as_serde_json(&FloatKey(f64::NAN));
        same_as_serde_json(&BTreeMap::from([((1, 2), 3)]));
        same_as_serde_json(&BTreeMap::from([(vec![1u8], 3)]));
        same_as_serde_json(&BTreeMap::from([(Some("k"), 3)]));
    }

    /// A map with a float key, which std's maps cannot hold.
    struct FloatKey(f64);

    impl Serialize for FloatKey {
        fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            use ser::SerializeMap;
            let mut map = serializer.serialize_map(Some(2))?;
            map.serialize_entry(&2.5f64, &1)?;
            map.serialize_entry(&self.0, &1)?;
            map.end()
        }
    }

    #[test]
    fn a_raw_value_is_copied_in_as_serde_json_copies_it() {
        use serde_json::value::RawValue;
        let raw = |text: &str| RawValue::from_string(text.to_owned()).unwrap();
        // Its spacing kept, wherever it falls: a field, an element, the whole answer.
        same_as_serde_json(&BTreeMap::from([("raw", raw(r#"{"a": [1, 2]}"#)), ("after", raw("null"))]));
        same_as_serde_json(&vec![raw("1"), raw(r#" "text" "#), raw("[]")]);
        same_as_serde_json(&raw(r#"{"b":{"c":true}}"#));
        let mut ours = Vec::new();
        write(&mut ours, &BTreeMap::from([("raw", raw(r#"{"a": [1, 2]}"#))])).unwrap();
        assert_eq!(ours, br#"{"raw":{"a": [1, 2]}}"#);
        // Not a key: serde_json refuses it there too.
        struct KeyedByRaw(Box<RawValue>);
        impl Serialize for KeyedByRaw {
            fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_map([(&self.0, 1)])
            }
        }
        same_as_serde_json(&KeyedByRaw(raw(r#""k""#)));
    }

    /// Something that claims to be a raw value but gives no text is refused, not written.
    #[test]
    fn a_raw_value_without_text_is_refused() {
        struct NotText;
        impl Serialize for NotText {
            fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use ser::SerializeStruct;
                let mut raw = serializer.serialize_struct(RAW_VALUE_TOKEN, 1)?;
                raw.serialize_field(RAW_VALUE_TOKEN, &1)?;
                raw.end()
            }
        }
        let mut ours = b"kept".to_vec();
        assert!(write(&mut ours, &vec![NotText]).is_err());
        assert_eq!(ours, b"kept");
    }

    #[test]
    fn every_byte_that_needs_escaping_is_escaped_wherever_it_falls() {
        for byte in (0u8..0x20).chain([b'"', b'\\', 0x7f]) {
            for at in 0..20 {
                let mut text = "abcdefghijklmnopqrs".to_owned().into_bytes();
                text.insert(at, byte);
                let text = String::from_utf8(text).unwrap();
                same_as_serde_json(&text);
                same_as_serde_json(&format!("é{text}ü"));
            }
        }
    }

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<String>().prop_map(Value::String),
            "[\\x00-\\x7f]{0,40}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::vec((any::<String>(), inner), 0..8)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_value_is_written_as_serde_json_writes_it(value in any_json()) {
            same_as_serde_json(&value);
        }

        #[test]
        fn any_text_is_escaped_as_serde_json_escapes_it(text in any::<String>()) {
            same_as_serde_json(&text);
        }
    }
}
