//! Sans-IO codec of the ThingWorx AlwaysOn message layer
