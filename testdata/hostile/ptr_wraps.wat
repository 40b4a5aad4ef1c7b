;; ptr_wraps: step_submit with a range that wraps past 4 GiB: errno fault (1).
;; Hostile corpus: cmd/wflow/hostile_test.go holds what each must end with.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wflow_v1" "step_submit" (func $step_submit (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (call $exit (call $step_submit (i32.const -16) (i32.const 32) (i32.const 60000)))
  )
)
