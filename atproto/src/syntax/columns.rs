//! The string formats as database column types (with the `sea-orm` feature): a column holds a
//! format's text, and reading it back parses it again, so an entity's `did` is a [`Did`] from the
//! request to the table and back, and a row that does not hold a valid value is an error, not a
//! string nobody checked.

use sea_orm::sea_query::{ArrayType, ColumnType, Nullable, StringLen, Value, ValueType, ValueTypeErr};
use sea_orm::{ColIdx, DbErr, QueryResult, TryFromU64, TryGetError, TryGetable};

use super::{AtUri, CidString, Datetime, Did, Handle, Nsid, RecordKey, Tid};

macro_rules! text_column {
    ($($name:ident),*) => {$(
        impl From<$name> for Value {
            fn from(value: $name) -> Value {
                Value::String(Some(Box::new(value.into_string())))
            }
        }

        impl From<&$name> for Value {
            fn from(value: &$name) -> Value {
                Value::String(Some(Box::new(value.as_str().to_owned())))
            }
        }

        impl TryGetable for $name {
            fn try_get_by<I: ColIdx>(row: &QueryResult, index: I) -> Result<Self, TryGetError> {
                let text = String::try_get_by(row, index)?;
                text.parse().map_err(|e| {
                    TryGetError::DbErr(DbErr::Type(format!("a stored {} is not valid: {e}", stringify!($name))))
                })
            }
        }

        impl ValueType for $name {
            fn try_from(value: Value) -> Result<Self, ValueTypeErr> {
                match value {
                    Value::String(Some(text)) => (*text).parse().map_err(|_| ValueTypeErr),
                    _ => Err(ValueTypeErr),
                }
            }

            fn type_name() -> String {
                stringify!($name).to_owned()
            }

            fn array_type() -> ArrayType {
                ArrayType::String
            }

            fn column_type() -> ColumnType {
                ColumnType::String(StringLen::None)
            }
        }

        impl Nullable for $name {
            fn null() -> Value {
                Value::String(None)
            }
        }

        /// Text keys are never generated numbers.
        impl TryFromU64 for $name {
            fn try_from_u64(_: u64) -> Result<Self, DbErr> {
                Err(DbErr::ConvertFromU64(stringify!($name)))
            }
        }
    )*};
}

text_column!(AtUri, CidString, Datetime, Did, Handle, Nsid, RecordKey, Tid);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_round_trips_through_its_column_value() {
        let did: Did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz".parse().expect("did");
        let value = Value::from(&did);
        assert_eq!(<Did as ValueType>::try_from(value).expect("back"), did);
        assert!(<Did as ValueType>::try_from(Value::from("not a did")).is_err());
        assert_eq!(<Handle as Nullable>::null(), Value::String(None));
    }
}
