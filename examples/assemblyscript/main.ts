// An example workflow in AssemblyScript, on the raw ABI (docs/abi.md): it runs one step
// and sets its output. Build: npm ci && npm run build (see README.md).
@external("wflow_v1", "step_run")
declare function step_run(spec: usize, len: u32, handle: usize): u32;
@external("wflow_v1", "step_result")
declare function step_result(handle: u32, buf: usize, cap: u32, len: usize): u32;
@external("wflow_v1", "output_set")
declare function output_set(json: usize, len: u32): u32;
@external("wasi_snapshot_preview1", "proc_exit")
declare function proc_exit(code: u32): void;

export function abort(msg: usize, file: usize, line: u32, col: u32): void { proc_exit(99); }

function utf8(s: string): ArrayBuffer { return String.UTF8.encode(s); }

const spec = utf8('{"name":"from-as","image":"wflow-test/busybox","commands":[["echo","hello from AssemblyScript"]]}');
const handle = new ArrayBuffer(4);
let errno = step_run(changetype<usize>(spec), <u32>spec.byteLength, changetype<usize>(handle));
if (errno != 0) proc_exit(10 + errno);
const h = load<u32>(changetype<usize>(handle));
const buf = new ArrayBuffer(65536 * 3);
const len = new ArrayBuffer(4);
errno = step_result(h, changetype<usize>(buf), <u32>buf.byteLength, changetype<usize>(len));
if (errno != 0) proc_exit(20 + errno);
const n = load<u32>(changetype<usize>(len));
const result = String.UTF8.decodeUnsafe(changetype<usize>(buf), n);
const ok = result.includes('"returncode":0,');
const out = utf8(ok ? '{"language":"AssemblyScript","step_ok":true}' : '{"language":"AssemblyScript","step_ok":false}');
output_set(changetype<usize>(out), <u32>out.byteLength);
