//! `tether-rac`: the Tether Remote Access Client.
fn main() {
    eprintln!("tether-rac: not built yet in this revision");
    std::process::exit(1);
}
