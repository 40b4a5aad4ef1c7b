;; wait_foreign: step_wait on a handle never issued to this module: errno unknown_handle (6).
;; Hostile corpus: cmd/wflow/hostile_test.go holds what each must end with.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wflow_v1" "step_wait" (func $step_wait (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\07\00\00\00")
  (func (export "_start")
    (call $exit (call $step_wait (i32.const 0) (i32.const 1) (i32.const 100)))
  )
)
