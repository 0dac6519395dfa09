//! The Tether platform: things, app keys, users, AlwaysOn endpoint, REST API, broker
