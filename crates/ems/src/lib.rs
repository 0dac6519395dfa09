//! Tether Edge MicroServer: AlwaysOn client, local REST, gateway, tunnel module
