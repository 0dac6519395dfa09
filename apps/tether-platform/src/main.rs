//! `tether-platform`: the Tether platform server.
fn main() {
    eprintln!("tether-platform: not built yet in this revision");
    std::process::exit(1);
}
