//! Remote Access Client engine: joins a session, opens a local port, pipes bytes
