//! Tests against a private D-Bus session bus (the Secret Service keyring, desktop
//! notifications). They point this process's session bus at it (`support::bus::use_bus`, under
//! one lock), so they live in their own binary.

mod support;

mod keyring;
mod notify_dbus;
