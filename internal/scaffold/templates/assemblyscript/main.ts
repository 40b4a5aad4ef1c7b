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

// stringEnd returns the index after the JSON string that starts at s[i]
// (its opening quote), or -1.
function stringEnd(s: string, i: i32): i32 {
  for (i++; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 92) i++; // a backslash escapes the next character
    else if (c == 34) return i + 1;
  }
  return -1;
}

function skipSpace(s: string, i: i32): i32 {
  while (i < s.length && (s.charCodeAt(i) == 32 || s.charCodeAt(i) == 9 || s.charCodeAt(i) == 10 || s.charCodeAt(i) == 13)) i++;
  return i;
}

// field returns the raw JSON text of the top-level field `key` of a JSON
// object, or "" when it has none. Nested values are skipped, not searched.
function field(json: string, key: string): string {
  let i = skipSpace(json, 0);
  if (i >= json.length || json.charCodeAt(i) != 123) return "";
  while (true) {
    i = skipSpace(json, i + 1); // past '{' or ','
    if (i >= json.length || json.charCodeAt(i) != 34) return "";
    const end = stringEnd(json, i);
    if (end < 0) return "";
    const name = json.substring(i + 1, end - 1);
    i = skipSpace(json, end);
    if (i >= json.length || json.charCodeAt(i) != 58) return "";
    const start = skipSpace(json, i + 1);
    let j = start, depth = 0;
    while (j < json.length) {
      const c = json.charCodeAt(j);
      if (c == 34) { j = stringEnd(json, j); if (j < 0) return ""; continue; }
      if (c == 123 || c == 91) depth++;
      else if ((c == 125 || c == 93) && depth == 0) break;
      else if (c == 125 || c == 93) depth--;
      else if (c == 44 && depth == 0) break;
      j++;
    }
    if (name == key) return json.substring(start, j).trim();
    if (j >= json.length || json.charCodeAt(j) != 44) return "";
    i = j;
  }
  return ""; // not reached
}

// param returns a string parameter without its quotes (escapes are left as
// they are), or fallback.
function param(params: string, name: string, fallback: string): string {
  const v = field(params, name);
  return v.length >= 2 && v.charCodeAt(0) == 34 ? v.substring(1, v.length - 1) : fallback;
}

let resultHandle: u32 = 0;

const image = param(read((b: usize, c: u32, l: usize): u32 => params_get(b, c, l)), "image", "busybox");
if (image.includes('"') || image.includes("\\")) proc_exit(2); // not an image name
const spec = utf8('{"name":"hello","image":"' + image + '","commands":["echo hello from AssemblyScript > hello.txt"]}');
const handle = new ArrayBuffer(4);
const errno = step_run(changetype<usize>(spec), <u32>spec.byteLength, changetype<usize>(handle));
if (errno != 0) proc_exit(10 + errno);
resultHandle = load<u32>(changetype<usize>(handle));
const result = read((b: usize, c: u32, l: usize): u32 => step_result(resultHandle, b, c, l));
const ok = field(result, "returncode") == "0" && field(result, "error") == "";
const out = utf8('{"language":"AssemblyScript","step_ok":' + (ok ? "true" : "false") + '}');
output_set(changetype<usize>(out), <u32>out.byteLength);
if (!ok) proc_exit(1);
