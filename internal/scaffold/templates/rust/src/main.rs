//! {{.Name}}: a wflow workflow in Rust, on the host ABI (wflow's docs/abi.md)
//! with the standard library and no crates. It runs one step in a
//! container, reads the file the step wrote into the run directory, and
//! sets the outcome as the workflow's output.
//!
//!     cargo build --release --target wasm32-wasip1
//!     wflow run target/wasm32-wasip1/release/workflow.wasm -p image=busybox --allow-registry docker.io

use std::process::exit;

#[link(wasm_import_module = "wflow_v1")]
extern "C" {
    fn params_get(buf: *mut u8, cap: u32, len: *mut u32) -> u32;
    fn step_run(spec: *const u8, len: u32, handle: *mut u32) -> u32;
    fn step_result(handle: u32, buf: *mut u8, cap: u32, len: *mut u32) -> u32;
    fn output_set(json: *const u8, len: u32) -> u32;
}

const BUFFER_TOO_SMALL: u32 = 5;

/// Reads an answer with the buffer protocol: on buffer_too_small the host
/// wrote the size it needs, so grow the buffer and ask again.
fn read(call: impl Fn(*mut u8, u32, *mut u32) -> u32) -> String {
    let mut buf = vec![0u8; 1024];
    loop {
        let mut len = 0u32;
        match call(buf.as_mut_ptr(), buf.len() as u32, &mut len) {
            0 => return String::from_utf8_lossy(&buf[..len as usize]).into_owned(),
            BUFFER_TOO_SMALL => buf.resize(len as usize, 0),
            errno => exit(20 + errno as i32),
        }
    }
}

/// The raw JSON text of the top-level field `key` of a JSON object, or
/// None. Nested values are skipped, not searched. A small reader so that the
/// project needs no crate; with crates, use serde_json.
fn field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let b = json.as_bytes();
    let ws = |mut i: usize| { while i < b.len() && (b[i] as char).is_ascii_whitespace() { i += 1 } i };
    // The end of the string starting at b[i] (its opening quote).
    let string_end = |mut i: usize| { i += 1; while i < b.len() { match b[i] { b'\\' => i += 2, b'"' => return Some(i + 1), _ => i += 1 } } None };
    let mut i = ws(0);
    if b.get(i) != Some(&b'{') { return None; }
    loop {
        i = ws(i + 1); // past '{' or ','
        if b.get(i) != Some(&b'"') { return None; }
        let end = string_end(i)?;
        let name = &json[i + 1..end - 1];
        i = ws(end);
        if b.get(i) != Some(&b':') { return None; }
        let start = ws(i + 1);
        // Skip the value: strings, and brackets to depth 0.
        let (mut j, mut depth) = (start, 0);
        while j < b.len() {
            match b[j] {
                b'"' => { j = string_end(j)?; continue; }
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth == 0 => break,
                b'}' | b']' => depth -= 1,
                b',' if depth == 0 => break,
                _ => {}
            }
            j += 1;
        }
        if name == key { return Some(json[start..j].trim_end()); }
        if j >= b.len() || b[j] != b',' { return None; }
        i = j;
    }
}

/// A string parameter, without its quotes (escapes are left as they are).
fn param(params: &str, name: &str) -> Option<String> {
    let v = field(params, name)?;
    (v.len() >= 2 && v.starts_with('"')).then(|| v[1..v.len() - 1].to_string())
}

fn main() {
    let params = read(|b, c, l| unsafe { params_get(b, c, l) });
    let image = param(&params, "image").unwrap_or_else(|| "busybox".to_string());
    if image.contains(['"', '\\']) {
        eprintln!("parameter image: not an image name");
        exit(2);
    }
    let spec = format!(r#"{{"name":"hello","image":"{}","commands":["echo hello from Rust > hello.txt"]}}"#, image);
    let mut handle = 0u32;
    let errno = unsafe { step_run(spec.as_ptr(), spec.len() as u32, &mut handle) };
    if errno != 0 {
        eprintln!("step_run: errno {}", errno);
        exit(10 + errno as i32);
    }
    let result = read(|b, c, l| unsafe { step_result(handle, b, c, l) });
    let ok = field(&result, "returncode") == Some("0") && field(&result, "error").is_none();
    // The run directory is the module's working directory too.
    let greeting = std::fs::read_to_string("hello.txt").unwrap_or_default();
    let out = format!(r#"{{"language":"Rust","step_ok":{},"greeting":"{}"}}"#, ok, greeting.trim().replace(['"', '\\'], ""));
    unsafe { output_set(out.as_ptr(), out.len() as u32) };
    if !ok {
        exit(1);
    }
}
