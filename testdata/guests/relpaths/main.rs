//! A test guest: the run directory is the working directory of a Rust
//! module too. It reads in.txt and writes out-rust.txt by relative paths,
//! and reads the same file by its absolute path /wflow/in.txt.
use std::process::exit;

fn main() {
    let relative = std::fs::read_to_string("in.txt").unwrap_or_else(|e| { eprintln!("read in.txt: {}", e); exit(1) });
    let absolute = std::fs::read_to_string("/wflow/in.txt").unwrap_or_else(|e| { eprintln!("read /wflow/in.txt: {}", e); exit(2) });
    std::fs::create_dir_all("sub").unwrap_or_else(|e| { eprintln!("mkdir sub: {}", e); exit(3) });
    std::fs::write("sub/out-rust.txt", format!("{}|{}", relative.trim(), absolute.trim())).unwrap_or_else(|e| { eprintln!("write: {}", e); exit(4) });
}
