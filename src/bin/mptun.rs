//! The `mptun` command line (being written).
fn main() {
    eprintln!("mptun: not yet wired");
    std::process::exit(2);
}
