//! The AlwaysOn endpoint `/Thingworx/WS`: one task per edge socket
//! (`socket`), the authenticated-connection handle used to send requests
//! (`conn`), the binding registry (`registry`) and what the platform does
//! with each edge message (`dispatch`).

mod conn;
mod dispatch;
mod link;
mod registry;
mod socket;

pub use conn::{EdgeAnswer, EdgeConn, EdgeError};
pub use link::PEER_CLAIM;
pub use registry::{BindError, Binding, Registry};
pub(crate) use socket::ws_handler;
