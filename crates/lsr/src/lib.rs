//! Lua Script Resource: things written in Lua, registered with an EMS
