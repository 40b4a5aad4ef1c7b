;; wait_zero: step_wait on zero handles: errno invalid_argument (9), not a hang.
;; Hostile corpus: cmd/wflow/hostile_test.go holds what each must end with.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wflow_v1" "step_wait" (func $step_wait (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (call $exit (call $step_wait (i32.const 0) (i32.const 0) (i32.const 100)))
  )
)
