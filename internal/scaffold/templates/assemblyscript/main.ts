// {{.Name}}: a wflow workflow in AssemblyScript, on the host ABI (wflow's
// docs/abi.md). It runs one step in a container and sets the outcome as the
// workflow's output. Build: npm install && npm run build (see README.md).
@external("wflow_v1", "params_get")
declare function params_get(buf: usize, cap: u32, len: usize): u32;
@external("wflow_v1", "step_run")
declare function step_run(spec: usize, len: u32, handle: usize): u32;
@external("wflow_v1", "step_result")
declare function step_result(handle: u32, buf: usize, cap: u32, len: usize): u32;
@external("wflow_v1", "output_set")
declare function output_set(json: usize, len: u32): u32;
@external("wasi_snapshot_preview1", "proc_exit")
declare function proc_exit(code: u32): void;

export function abort(msg: usize, file: usize, line: u32, col: u32): void { proc_exit(99); }

const BUFFER_TOO_SMALL: u32 = 5;

function utf8(s: string): ArrayBuffer { return String.UTF8.encode(s); }

// read calls a host function with the buffer protocol: on buffer_too_small
// the host wrote the size it needs, so grow the buffer and ask again.
function read(call: (buf: usize, cap: u32, len: usize) => u32): string {
  let buf = new ArrayBuffer(1024);
  const len = new ArrayBuffer(4);
  while (true) {
    const errno = call(changetype<usize>(buf), <u32>buf.byteLength, changetype<usize>(len));
    const n = load<u32>(changetype<usize>(len));
    if (errno == 0) return String.UTF8.decodeUnsafe(changetype<usize>(buf), n);
    if (errno != BUFFER_TOO_SMALL) proc_exit(20 + errno);
    buf = new ArrayBuffer(n);
  }
}

// param finds a string parameter the simple way (no escapes in its value).
function param(params: string, name: string, fallback: string): string {
  const key = '"' + name + '":"';
  const start = params.indexOf(key);
  if (start < 0) return fallback;
  const from = start + key.length;
  const end = params.indexOf('"', from);
  return end < 0 ? fallback : params.substring(from, end);
}

let resultHandle: u32 = 0;

const image = param(read((b: usize, c: u32, l: usize): u32 => params_get(b, c, l)), "image", "busybox");
const spec = utf8('{"name":"hello","image":"' + image + '","commands":["echo hello from AssemblyScript > hello.txt"]}');
const handle = new ArrayBuffer(4);
const errno = step_run(changetype<usize>(spec), <u32>spec.byteLength, changetype<usize>(handle));
if (errno != 0) proc_exit(10 + errno);
resultHandle = load<u32>(changetype<usize>(handle));
const result = read((b: usize, c: u32, l: usize): u32 => step_result(resultHandle, b, c, l));
const ok = result.includes('"returncode":0,') && !result.includes('"error":');
const out = utf8('{"language":"AssemblyScript","step_ok":' + (ok ? "true" : "false") + '}');
output_set(changetype<usize>(out), <u32>out.byteLength);
if (!ok) proc_exit(1);
