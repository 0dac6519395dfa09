//! Base type codes and names (§3.1).

use crate::error::DecodeError;

macro_rules! base_types {
    ($($variant:ident = $code:expr, $name:expr, $text:expr;)*) => {
        /// A ThingWorx base type with a known wire form. TIMESPAN (4), THINGCODE and unassigned
        /// codes have none and are rejected with [`DecodeError::UnsupportedType`].
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        #[non_exhaustive]
        pub enum BaseType {
            $(#[doc = concat!("`", $name, "` (code ", stringify!($code), ")")] $variant,)*
        }

        impl BaseType {
            /// Every supported base type.
            pub const ALL: &'static [BaseType] = &[$(BaseType::$variant,)*];

            /// The wire code (NOTHING is 0xFF, i.e. -1).
            pub const fn code(self) -> u8 {
                match self { $(BaseType::$variant => $code,)* }
            }

            /// The type for a wire code.
            pub fn from_code(code: u8) -> Result<BaseType, DecodeError> {
                match code {
                    $($code => Ok(BaseType::$variant),)*
                    other => Err(DecodeError::UnsupportedType(other)),
                }
            }

            /// The upper-case name used in JSON (`"STRING"`, `"NUMBER"`, …).
            pub fn name(self) -> &'static str {
                match self { $(BaseType::$variant => $name,)* }
            }

            /// The type for a JSON name; case-insensitive.
            pub fn from_name(name: &str) -> Result<BaseType, DecodeError> {
                $(if name.eq_ignore_ascii_case($name) { return Ok(BaseType::$variant); })*
                Err(DecodeError::UnsupportedTypeName(name.to_owned()))
            }

            /// Encoded on the wire as a string (§2.3): STRING and its whole family.
            pub fn is_string_family(self) -> bool {
                match self { $(BaseType::$variant => $text,)* }
            }
        }
    };
}

base_types! {
    Nothing = 0xFF, "NOTHING", false;
    String = 0, "STRING", true;
    Number = 1, "NUMBER", false;
    Boolean = 2, "BOOLEAN", false;
    DateTime = 3, "DATETIME", false;
    InfoTable = 5, "INFOTABLE", false;
    Location = 6, "LOCATION", false;
    Xml = 7, "XML", true;
    Json = 8, "JSON", true;
    Query = 9, "QUERY", true;
    Image = 10, "IMAGE", false;
    Hyperlink = 11, "HYPERLINK", true;
    ImageLink = 12, "IMAGELINK", true;
    Password = 13, "PASSWORD", true;
    Html = 14, "HTML", true;
    Text = 15, "TEXT", true;
    Tags = 16, "TAGS", true;
    Schedule = 17, "SCHEDULE", true;
    Variant = 18, "VARIANT", false;
    Guid = 20, "GUID", true;
    Blob = 21, "BLOB", false;
    Integer = 22, "INTEGER", false;
    Long = 23, "LONG", false;
    PropertyName = 50, "PROPERTYNAME", true;
    ServiceName = 51, "SERVICENAME", true;
    EventName = 52, "EVENTNAME", true;
    ThingName = 100, "THINGNAME", true;
    ThingShapeName = 101, "THINGSHAPENAME", true;
    ThingTemplateName = 102, "THINGTEMPLATENAME", true;
    DataShapeName = 104, "DATASHAPENAME", true;
    MashupName = 105, "MASHUPNAME", true;
    MenuName = 106, "MENUNAME", true;
    BaseTypeName = 107, "BASETYPENAME", true;
    UserName = 108, "USERNAME", true;
    GroupName = 109, "GROUPNAME", true;
    CategoryName = 110, "CATEGORYNAME", true;
    StateDefinitionName = 111, "STATEDEFINITIONNAME", true;
    StyleDefinitionName = 112, "STYLEDEFINITIONNAME", true;
    ModelTagVocabularyName = 113, "MODELTAGVOCABULARYNAME", true;
    DataTagVocabularyName = 114, "DATATAGVOCABULARYNAME", true;
    NetworkName = 115, "NETWORKNAME", true;
    MediaEntityName = 116, "MEDIAENTITYNAME", true;
    ApplicationKeyName = 117, "APPLICATIONKEYNAME", true;
    LocalizationTableName = 118, "LOCALIZATIONTABLENAME", true;
    OrganizationName = 119, "ORGANIZATIONNAME", true;
    DashboardName = 120, "DASHBOARDNAME", true;
}

/// A string-family base type other than STRING (XML, JSON, PASSWORD, THINGNAME, …).
///
/// Only string-family types can be held, so a [`crate::Primitive::Text`] always encodes as a string.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TextKind(BaseType);

impl TextKind {
    /// XML text.
    pub const XML: TextKind = TextKind(BaseType::Xml);
    /// Serialised JSON text.
    pub const JSON: TextKind = TextKind(BaseType::Json);
    /// A query (JSON text).
    pub const QUERY: TextKind = TextKind(BaseType::Query);
    /// A password.
    pub const PASSWORD: TextKind = TextKind(BaseType::Password);
    /// Free text.
    pub const TEXT: TextKind = TextKind(BaseType::Text);
    /// A thing name.
    pub const THINGNAME: TextKind = TextKind(BaseType::ThingName);

    /// The kind for a string-family base type other than STRING.
    pub fn new(base: BaseType) -> Option<TextKind> {
        (base.is_string_family() && base != BaseType::String).then_some(TextKind(base))
    }

    /// The base type.
    pub fn base_type(self) -> BaseType {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_round_trip() {
        for &t in BaseType::ALL {
            assert_eq!(BaseType::from_code(t.code()), Ok(t));
            assert_eq!(BaseType::from_name(t.name()), Ok(t));
        }
        assert_eq!(BaseType::from_code(4), Err(DecodeError::UnsupportedType(4)));
        assert_eq!(
            BaseType::from_code(19),
            Err(DecodeError::UnsupportedType(19))
        );
        assert!(BaseType::from_name("TIMESPAN").is_err());
        assert_eq!(BaseType::from_name("datetime"), Ok(BaseType::DateTime));
        assert_eq!(BaseType::Long.code(), 23);
        assert!(TextKind::new(BaseType::String).is_none());
        assert!(TextKind::new(BaseType::Number).is_none());
        assert_eq!(
            TextKind::new(BaseType::Guid).map(TextKind::base_type),
            Some(BaseType::Guid)
        );
    }
}
