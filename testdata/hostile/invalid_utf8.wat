;; invalid_utf8: a step spec holding invalid UTF-8: errno invalid_json (3).
;; Hostile corpus: cmd/wflow/hostile_test.go holds what each must end with.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wflow_v1" "step_submit" (func $step_submit (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\22name\22:\22\c3(\22,\22image\22:\22\ff\22}")
  (func (export "_start")
    (call $exit (call $step_submit (i32.const 0) (i32.const 26) (i32.const 60000)))
  )
)
