//! Message codes (§2.2), entity type codes (§2.5) and characteristics (§2.4).

use std::fmt;

/// An AlwaysOn message code: a request method, a bind/auth kind or a CoAP-like response status.
///
/// A newtype rather than an enum so that unknown codes can be carried and reported.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code(pub u8);

macro_rules! codes {
    ($($name:ident = $val:expr),* $(,)?) => {
        impl Code {
            $(#[doc = concat!("`", stringify!($name), "` (", stringify!($val), ")")]
            pub const $name: Code = Code($val);)*

            /// The upper-case name of a known code, `None` for others.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($val => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

codes! {
    UNKNOWN = 0x00,
    GET = 0x01,
    PUT = 0x02,
    POST = 0x03,
    DELETE = 0x04,
    BIND = 0x0A,
    UNBIND = 0x0B,
    AUTH = 0x14,
    KEEP_ALIVE = 0x1F,
    SUCCESS = 0x40,
    BAD_REQUEST = 0x80,
    UNAUTHORIZED = 0x81,
    BAD_OPTION = 0x82,
    FORBIDDEN = 0x83,
    NOT_FOUND = 0x84,
    METHOD_NOT_ALLOWED = 0x85,
    NOT_ACCEPTABLE = 0x86,
    PRECONDITION_FAILED = 0x8C,
    ENTITY_TOO_LARGE = 0x8D,
    UNSUPPORTED_CONTENT_FORMAT = 0x8F,
    INTERNAL_SERVER_ERROR = 0xA0,
    NOT_IMPLEMENTED = 0xA1,
    BAD_GATEWAY = 0xA2,
    SERVICE_UNAVAILABLE = 0xA3,
    GATEWAY_TIMEOUT = 0xA4,
}

impl Code {
    /// GET, PUT, POST or DELETE (codes 1-4).
    pub fn is_request(self) -> bool {
        (0x01..=0x04).contains(&self.0)
    }

    /// Any code ≥ 0x40 is a response (§2.2, as the C SDK classifies them).
    pub fn is_response(self) -> bool {
        self.0 >= 0x40
    }

    /// BIND or UNBIND.
    pub fn is_bind(self) -> bool {
        self == Code::BIND || self == Code::UNBIND
    }

    /// A 2.xx response.
    pub fn is_success(self) -> bool {
        self.0 >> 5 == 2
    }

    /// HTTP status equivalent of a response code (`class*100 + detail`, §6.3/§11).
    pub fn http_status(self) -> u16 {
        u16::from(self.0 >> 5) * 100 + u16::from(self.0 & 0x1F)
    }

    /// Response code for an HTTP status: `class<<5 | detail`; 2xx all map to SUCCESS,
    /// anything outside 100-599 or with detail ≥ 32 maps to INTERNAL_SERVER_ERROR.
    pub fn from_http_status(status: u16) -> Code {
        match status {
            200..=299 => Code::SUCCESS,
            100..=599 if status % 100 < 32 => Code((((status / 100) << 5) | (status % 100)) as u8),
            _ => Code::INTERNAL_SERVER_ERROR,
        }
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}(0x{:02x})", self.0),
            None => write!(f, "Code(0x{:02x})", self.0),
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Entity type of a request (§2.5); unknown values are carried as-is.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct EntityType(pub u8);

macro_rules! entity_types {
    ($($name:ident = $val:expr, $seg:expr;)*) => {
        impl EntityType {
            $(#[doc = concat!("`", $seg, "` (", stringify!($val), ")")]
            pub const $name: EntityType = EntityType($val);)*

            /// The REST path segment (`Things`, `Subsystems`, …) of a known type.
            pub fn path_segment(self) -> Option<&'static str> {
                match self.0 {
                    $($val => Some($seg),)*
                    _ => None,
                }
            }

            /// The entity type for a REST path segment (exact spelling).
            pub fn from_path_segment(seg: &str) -> Option<EntityType> {
                match seg {
                    $($seg => Some(EntityType($val)),)*
                    _ => None,
                }
            }
        }
    };
}

entity_types! {
    UNDEFINED = 0x00, "Undefined";
    THING = 0x0A, "Things";
    THING_SHAPE = 0x0B, "ThingShapes";
    THING_TEMPLATE = 0x0C, "ThingTemplates";
    THING_PACKAGE = 0x0D, "ThingPackages";
    NETWORK = 0x0E, "Networks";
    DATA_SHAPE = 0x0F, "DataShapes";
    MODEL_TAG = 0x14, "ModelTags";
    DATA_TAG = 0x15, "DataTags";
    MASHUP = 0x1E, "Mashups";
    WIDGET = 0x1F, "Widgets";
    STYLE_DEFINITION = 0x20, "StyleDefinitions";
    STATE_DEFINITION = 0x21, "StateDefinitions";
    MENU = 0x22, "Menus";
    MEDIA_ENTITY = 0x23, "MediaEntities";
    LOCALIZATION_TABLE = 0x24, "LocalizationTables";
    DASHBOARD = 0x27, "Dashboards";
    LOG = 0x28, "Logs";
    USER = 0x32, "Users";
    GROUP = 0x33, "Groups";
    ORGANIZATION = 0x34, "Organizations";
    APPLICATION_KEY = 0x35, "ApplicationKeys";
    DIRECTORY_SERVICE = 0x36, "DirectoryServices";
    RESOURCE = 0x3C, "Resources";
    SCRIPT_FUNCTION_LIBRARY = 0x3D, "ScriptFunctionLibraries";
    EXTENSION_PACKAGE = 0x46, "ExtensionPackages";
    SUBSYSTEM = 0x50, "Subsystems";
}

/// What a request addresses on the entity (§2.4); unknown values are carried as-is.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Characteristic(pub u8);

impl Characteristic {
    /// Properties (1): GET reads, PUT writes.
    pub const PROPERTIES: Characteristic = Characteristic(1);
    /// Services (2): POST invokes.
    pub const SERVICES: Characteristic = Characteristic(2);
    /// Events (3): POST fires.
    pub const EVENTS: Characteristic = Characteristic(3);

    /// REST path segment: `Properties`, `Services` or `Events`.
    pub fn path_segment(self) -> Option<&'static str> {
        match self.0 {
            1 => Some("Properties"),
            2 => Some("Services"),
            3 => Some("Events"),
            _ => None,
        }
    }

    /// The characteristic for a REST path segment (exact spelling).
    pub fn from_path_segment(seg: &str) -> Option<Characteristic> {
        match seg {
            "Properties" => Some(Self::PROPERTIES),
            "Services" => Some(Self::SERVICES),
            "Events" => Some(Self::EVENTS),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_and_http() {
        assert!(Code::GET.is_request() && !Code::GET.is_response());
        assert!(Code::GATEWAY_TIMEOUT.is_response());
        assert_eq!(Code::NOT_FOUND.http_status(), 404);
        assert_eq!(Code::from_http_status(404), Code::NOT_FOUND);
        assert_eq!(Code::from_http_status(204), Code::SUCCESS);
        assert_eq!(Code::from_http_status(503), Code::SERVICE_UNAVAILABLE);
        assert_eq!(Code::from_http_status(999), Code::INTERNAL_SERVER_ERROR);
        assert_eq!(Code::ENTITY_TOO_LARGE.name(), Some("ENTITY_TOO_LARGE"));
        assert_eq!(Code(0x99).name(), None);
        assert_eq!(
            EntityType::from_path_segment("Subsystems"),
            Some(EntityType::SUBSYSTEM)
        );
        assert_eq!(Characteristic::SERVICES.path_segment(), Some("Services"));
    }
}
