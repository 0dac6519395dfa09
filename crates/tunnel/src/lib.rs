//! Sans-IO tunnel frame codec and stream multiplexer (spec/tunnel.md)
