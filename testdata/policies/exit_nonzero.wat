;; exit_nonzero: allows, then exits with code 3: a failing policy refuses, whatever it said.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wflow_policy_v1" "decide" (func $decide (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"verdict\":\"allow\"}")
  (func (export "_start")
    (drop (call $decide (i32.const 0) (i32.const 19)))
    (call $exit (i32.const 3)))
)
