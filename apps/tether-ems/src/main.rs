//! `tether-ems`: the Tether Edge MicroServer.
fn main() {
    eprintln!("tether-ems: not built yet in this revision");
    std::process::exit(1);
}
