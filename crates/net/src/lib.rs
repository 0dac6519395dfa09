//! WebSocket, TLS and QUIC plumbing shared by Tether's components
