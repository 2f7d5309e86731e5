//! One macro for a family of event types: the enum, each type's stable
//! name, the payload codec and the aggregate id, from one line per type.

/// `event_family! { /// doc \n Enum, id_field: IdType, "what"; Variant(Type) = "name", … }`
/// derives the enum, `TYPES`, `event_type`, the id accessor, `to_payload`
/// and `decode` (every type at schema version 1).
macro_rules! event_family {
    ($(#[$doc:meta])* $enum:ident, $id:ident: $id_ty:ty, $what:literal;
     $($variant:ident($ty:ty) = $name:literal),* $(,)?) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq)]
        pub enum $enum {
            $($variant($ty)),*
        }

        impl $enum {
            /// Every event type name, each at schema version 1.
            pub const TYPES: &'static [&'static str] = &[$($name),*];

            pub fn event_type(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => $name),*
                }
            }

            pub fn $id(&self) -> $id_ty {
                match self {
                    $(Self::$variant(e) => e.$id),*
                }
            }

            pub fn to_payload(&self) -> serde_json::Value {
                match self {
                    // Plain structs with string keys: serialising cannot fail.
                    $(Self::$variant(e) => serde_json::to_value(e).unwrap_or(serde_json::Value::Null)),*
                }
            }

            /// Decodes a payload of one of [`Self::TYPES`].
            pub fn decode(event_type: &str, payload: serde_json::Value) -> Result<Self, serde_json::Error> {
                match event_type {
                    $($name => serde_json::from_value(payload).map(Self::$variant),)*
                    other => Err(serde::de::Error::custom(format!(concat!("not a ", $what, " event: {}"), other))),
                }
            }
        }
    };
}

pub(crate) use event_family;
