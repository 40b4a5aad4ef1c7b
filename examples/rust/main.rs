//! An example workflow in Rust, on the raw ABI (docs/abi.md), with the standard
//! library and no crates: it runs two steps in parallel (step_submit), waits
//! for each as it lands (step_wait_timeout + step_result), gives up on a third
//! that takes too long (step_cancel), and sets its output.
//!
//!     rustc --edition 2021 --target wasm32-wasi -O -o workflow.wasm main.rs
//!     wflow run workflow.wasm

use std::process::exit;

#[link(wasm_import_module = "wflow_v1")]
extern "C" {
    fn step_submit(spec: *const u8, len: u32, handle: *mut u32) -> u32;
    fn step_wait(handles: *const u32, count: u32, ready: *mut u32) -> u32;
    // ABI v1.2
    fn step_wait_timeout(handles: *const u32, count: u32, timeout_ms: u32, ready: *mut u32) -> u32;
    fn step_cancel(handle: u32) -> u32;
    fn step_result(handle: u32, buf: *mut u8, cap: u32, len: *mut u32) -> u32;
    fn output_set(json: *const u8, len: u32) -> u32;
}

const BUFFER_TOO_SMALL: u32 = 5;
const TIMEOUT: u32 = 11;

fn submit(spec: &str) -> u32 {
    let mut handle = 0u32;
    let errno = unsafe { step_submit(spec.as_ptr(), spec.len() as u32, &mut handle) };
    if errno != 0 {
        exit(10 + errno as i32);
    }
    handle
}

/// Reads a finished step's ExecResult with the buffer protocol.
fn result(handle: u32) -> String {
    let mut buf = vec![0u8; 1024];
    loop {
        let mut len = 0u32;
        let errno = unsafe { step_result(handle, buf.as_mut_ptr(), buf.len() as u32, &mut len) };
        match errno {
            0 => return String::from_utf8_lossy(&buf[..len as usize]).into_owned(),
            BUFFER_TOO_SMALL => buf.resize(len as usize, 0),
            _ => exit(20 + errno as i32),
        }
    }
}

fn main() {
    let image = "wflow-test/busybox";
    let mut pending = vec![
        submit(&format!(r#"{{"name":"rust-a","image":"{image}","commands":[["echo","a"]]}}"#)),
        submit(&format!(r#"{{"name":"rust-b","image":"{image}","commands":["echo b"]}}"#)),
    ];
    let slow = submit(&format!(r#"{{"name":"rust-slow","image":"{image}","commands":[["sleep","600"]]}}"#));
    let mut ok = 0;
    while !pending.is_empty() {
        let mut ready = 0u32;
        // Wait at most 2 s at a time: a module can do other work between waits.
        let errno = unsafe { step_wait_timeout(pending.as_ptr(), pending.len() as u32, 2000, &mut ready) };
        match errno {
            0 => {}
            TIMEOUT => continue,
            _ => exit(30 + errno as i32),
        }
        pending.retain(|&h| h != ready);
        if result(ready).contains(r#""returncode":0,"#) {
            ok += 1;
        }
    }
    // The slow step gets one more second, then is cancelled.
    let mut ready = 0u32;
    let mut cancelled = 0;
    if unsafe { step_wait_timeout(&slow, 1, 1000, &mut ready) } == TIMEOUT {
        unsafe { step_cancel(slow) };
        if unsafe { step_wait(&slow, 1, &mut ready) } != 0 {
            exit(40);
        }
        if result(slow).contains(r#""error_kind":"cancelled""#) {
            cancelled = 1;
        }
    }
    let out = format!(r#"{{"language":"Rust","steps_ok":{ok},"cancelled":{cancelled}}}"#);
    unsafe { output_set(out.as_ptr(), out.len() as u32) };
}
