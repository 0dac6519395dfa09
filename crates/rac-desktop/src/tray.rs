//! The tray app: GTK and the tray icon on the calling (UI) thread, the
//! engine on its own tokio thread; they talk through [`Command`] and
//! [`Event`] channels, polled from a GLib timer.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use gtk::glib;
use tracing::{info, warn};
use tray_icon::menu::{Menu, MenuEvent, MenuItem, PredefinedMenuItem, Submenu};
use tray_icon::{Icon, TrayIcon, TrayIconBuilder};

use crate::engine::{Command, EngineConfig, EngineHandle, Event, SessionInfo, spawn_thread};
use crate::instance::{
    HANDOVER_TIMEOUT, InstanceError, InstanceServer, default_socket_path, hand_over,
};
use crate::launchers::{Clients, launch};
use crate::notify::Notifier;
use crate::settings::Settings;
use crate::trust::UnknownPlatform;
use crate::{SettingsError, icons};

/// How often the UI drains the event channels.
const POLL: Duration = Duration::from_millis(100);

/// Why the tray app could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrayError {
    /// The settings file is bad.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The single-instance socket.
    #[error(transparent)]
    Instance(#[from] InstanceError),
    /// GTK could not start (no display?).
    #[error("GTK: {0} (is DISPLAY or WAYLAND_DISPLAY set?)")]
    Gtk(String),
    /// The tray icon could not be created.
    #[error("tray icon: {0}")]
    Tray(String),
    /// A thread or runtime could not start.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Run the tray app until Quit (or SIGINT/SIGTERM). `urls` are launch URLs
/// to open at once; if another instance runs they are handed to it and
/// this returns `Ok` at once. `settings_path` defaults to
/// [`crate::default_path`].
pub fn run_tray(urls: Vec<String>, settings_path: Option<PathBuf>) -> Result<(), TrayError> {
    let socket = default_socket_path()?;
    if !urls.is_empty() {
        let mut handed = true;
        for url in &urls {
            match hand_over(&socket, url, HANDOVER_TIMEOUT) {
                Ok(()) => {}
                Err(InstanceError::NotRunning(_)) => {
                    handed = false;
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if handed {
            info!("handed over to the running instance");
            return Ok(());
        }
    }
    let settings_path = settings_path.or_else(crate::default_path);
    let settings = match &settings_path {
        Some(p) => Settings::load(p)?,
        None => Settings::default(),
    };
    let instance = InstanceServer::bind(&socket)?;
    glib::set_prgname(Some("tether-rac"));
    glib::set_application_name("Tether");
    gtk::init().map_err(|e| TrayError::Gtk(e.to_string()))?;
    let clients = Clients::detect(&settings, std::env::var_os("PATH").as_deref());
    let notifier = Notifier::start()?;
    let engine = spawn_thread(
        EngineConfig {
            settings,
            settings_path,
            run: rac::RunOptions::default(),
        },
        Some(instance),
    )?;
    for url in urls {
        match rac::LaunchUrl::parse(&url) {
            Ok(l) => {
                let _ = engine.commands.try_send(Command::Open(l));
            }
            Err(e) => notifier.notify("Tether: bad link", &e.to_string()),
        }
    }
    let tray = TrayIconBuilder::new()
        .with_tooltip("Tether remote access")
        .with_title("Tether")
        .with_icon(icon(false)?)
        .with_menu(Box::new(Menu::new()))
        .build()
        .map_err(|e| TrayError::Tray(e.to_string()))?;
    let mut ui = Ui {
        tray,
        clients,
        notifier,
        sessions: BTreeMap::new(),
        asks: BTreeMap::new(),
        active: None,
    };
    ui.refresh();
    let EngineHandle {
        commands,
        mut events,
        shutdown,
        thread,
    } = engine;
    for sig in [2, 15] {
        glib::unix_signal_add_local(sig, || {
            gtk::main_quit();
            glib::ControlFlow::Break
        });
    }
    glib::timeout_add_local(POLL, move || {
        let mut changed = false;
        while let Ok(ev) = events.try_recv() {
            ui.on_event(ev);
            changed = true;
        }
        while let Ok(ev) = MenuEvent::receiver().try_recv() {
            if ui.on_menu(ev.id().as_ref(), &commands) {
                gtk::main_quit();
                return glib::ControlFlow::Break;
            }
            changed = true;
        }
        if changed {
            ui.refresh();
        }
        glib::ControlFlow::Continue
    });
    info!(socket = %socket.display(), "tray running");
    gtk::main();
    shutdown.cancel();
    if thread.join().is_err() {
        warn!("the engine thread panicked");
    }
    Ok(())
}

fn icon(active: bool) -> Result<Icon, TrayError> {
    let rgba = if active {
        icons::active()
    } else {
        icons::idle()
    };
    Icon::from_rgba(rgba, icons::SIZE, icons::SIZE).map_err(|e| TrayError::Tray(e.to_string()))
}

struct Ui {
    tray: TrayIcon,
    clients: Clients,
    notifier: Notifier,
    sessions: BTreeMap<u64, (SessionInfo, bool)>,
    asks: BTreeMap<String, UnknownPlatform>,
    active: Option<bool>,
}

impl Ui {
    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Ready(s) => {
                self.notifier.notify(
                    "Tether: session ready",
                    &format!("{}: connect to {}", s.name(), s.addr),
                );
                self.sessions.insert(s.id, (s, false));
            }
            Event::Peer { id, attached } => {
                if let Some(s) = self.sessions.get_mut(&id) {
                    s.1 = attached;
                }
            }
            Event::Ended { id, why, .. } => match self.sessions.remove(&id) {
                Some((s, _)) => self.notifier.notify(
                    "Tether: session ended",
                    &format!("{} ({}): {why}", s.name(), s.addr),
                ),
                None => self.notifier.notify("Tether: could not connect", &why),
            },
            Event::Failed { why } => self.notifier.notify("Tether: could not connect", &why),
            Event::AskTrust(u) => {
                self.notifier.notify(
                    "Tether: unknown platform",
                    &format!("{} Answer in the Tether tray menu.", u.question()),
                );
                self.asks.insert(u.origin.clone(), u);
            }
            Event::Trusted(o) => {
                self.asks.remove(&o);
            }
        }
    }

    /// Handle a menu click; `true` means quit.
    fn on_menu(&mut self, id: &str, commands: &tokio::sync::mpsc::Sender<Command>) -> bool {
        let (verb, arg) = id.split_once(':').unwrap_or((id, ""));
        let session = arg.parse::<u64>().ok().and_then(|n| self.sessions.get(&n));
        let send = |c: Command| {
            if commands.try_send(c).is_err() {
                warn!("engine busy; menu action dropped");
            }
        };
        match (verb, session) {
            ("quit", _) => {
                send(Command::Quit);
                return true;
            }
            ("copy", Some((s, _))) => {
                gtk::Clipboard::get(&gtk::gdk::SELECTION_CLIPBOARD).set_text(&s.addr.to_string());
            }
            ("ssh" | "vnc", Some((s, _))) => {
                let template = if verb == "ssh" {
                    &self.clients.ssh
                } else {
                    &self.clients.vnc
                };
                if let Some(t) = template
                    && let Err(e) = launch(t, s.addr)
                {
                    self.notifier
                        .notify("Tether: could not start the client", &e.to_string());
                }
            }
            ("end", Some((s, _))) => send(Command::End(s.id)),
            ("trust", _) => {
                self.asks.remove(arg);
                send(Command::Trust(arg.to_owned()));
            }
            ("distrust", _) => {
                self.asks.remove(arg);
                send(Command::Distrust(arg.to_owned()));
            }
            _ => {}
        }
        false
    }

    /// Rebuild the menu and set the icon from the current state.
    fn refresh(&mut self) {
        let active = !self.sessions.is_empty();
        if self.active != Some(active) {
            match icon(active) {
                Ok(i) => {
                    if let Err(e) = self.tray.set_icon(Some(i)) {
                        warn!(error = %e, "cannot set the tray icon");
                    }
                }
                Err(e) => warn!(error = %e, "cannot draw the tray icon"),
            }
            self.active = Some(active);
        }
        match self.menu() {
            Ok(m) => self.tray.set_menu(Some(Box::new(m))),
            Err(e) => warn!(error = %e, "cannot build the tray menu"),
        }
    }

    fn menu(&self) -> Result<Menu, tray_icon::menu::Error> {
        let menu = Menu::new();
        let status = match self.sessions.len() {
            0 => "No active session".to_owned(),
            1 => "1 active session".to_owned(),
            n => format!("{n} active sessions"),
        };
        menu.append(&MenuItem::new(status, false, None))?;
        for (id, (s, attached)) in &self.sessions {
            let mark = if *attached {
                ""
            } else {
                " (waiting for the device)"
            };
            let sub = Submenu::new(format!("{}{mark}", s.label()), true);
            sub.append(&MenuItem::with_id(
                format!("copy:{id}"),
                format!("Copy address {}", s.addr),
                true,
                None,
            ))?;
            if self.clients.ssh.is_some() {
                sub.append(&MenuItem::with_id(
                    format!("ssh:{id}"),
                    "Open in SSH client",
                    true,
                    None,
                ))?;
            }
            if self.clients.vnc.is_some() {
                sub.append(&MenuItem::with_id(
                    format!("vnc:{id}"),
                    "Open in VNC viewer",
                    true,
                    None,
                ))?;
            }
            sub.append(&MenuItem::with_id(
                format!("end:{id}"),
                "End session",
                true,
                None,
            ))?;
            menu.append(&sub)?;
        }
        for (o, u) in &self.asks {
            menu.append(&PredefinedMenuItem::separator())?;
            menu.append(&MenuItem::with_id(
                format!("trust:{o}"),
                u.question(),
                true,
                None,
            ))?;
            menu.append(&MenuItem::with_id(
                format!("distrust:{o}"),
                format!("Do not trust {o}"),
                true,
                None,
            ))?;
        }
        menu.append(&PredefinedMenuItem::separator())?;
        menu.append(&MenuItem::with_id("quit", "Quit", true, None))?;
        Ok(menu)
    }
}
