;; no_memory: a module without memory calls log_write: errno fault (1).
;; Hostile corpus: cmd/wflow/hostile_test.go holds what each must end with.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wflow_v1" "log_write" (func $log_write (param i32 i32 i32) (result i32)))
  (func (export "_start")
    (call $exit (call $log_write (i32.const 1) (i32.const 0) (i32.const 4)))
  )
)
