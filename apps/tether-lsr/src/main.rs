//! `tether-lsr`: the Tether Lua Script Resource.
fn main() {
    eprintln!("tether-lsr: not built yet in this revision");
    std::process::exit(1);
}
