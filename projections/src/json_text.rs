//! JSON stored as TEXT (both backends keep JSON columns as text): decoded
//! on read, where a value that does not parse is an error — sqlx reports
//! it as `error occurred while decoding column "<name>"` — never a silent
//! empty value.

use serde::de::DeserializeOwned;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Type};

/// A JSON value read from a TEXT column; `.0` is the value.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonText<T>(pub T);

impl<T, DB: Database> Type<DB> for JsonText<T>
where
    String: Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <String as Type<DB>>::type_info()
    }

    fn compatible(ty: &DB::TypeInfo) -> bool {
        <String as Type<DB>>::compatible(ty)
    }
}

impl<'r, T: DeserializeOwned, DB: Database> Decode<'r, DB> for JsonText<T>
where
    &'r str: Decode<'r, DB>,
{
    fn decode(value: <DB as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<DB>>::decode(value)?;
        Ok(Self(serde_json::from_str(text)?))
    }
}

/// `impl From<JsonText<T>> for T` for each JSON column type in use (the
/// orphan rule forbids a blanket impl), so that a row type derives
/// `#[sqlx(try_from = "JsonText<T>")]` on its JSON fields.
macro_rules! unwraps_into {
    ($($t:ty),* $(,)?) => {$(
        impl From<JsonText<$t>> for $t {
            fn from(j: JsonText<$t>) -> Self {
                j.0
            }
        }
    )*};
}

unwraps_into!(
    serde_json::Value,
    Vec<String>,
    Vec<uuid::Uuid>,
    ftl_domain::registry::Capabilities,
    Vec<Vec<ftl_domain::prediction::ChatMessage>>,
    std::collections::BTreeMap<uuid::Uuid, ftl_domain::comparison::Preference>,
    ftl_domain::evaluation::suite::SuiteCase,
);
