;; concurrent_waits: waits on the same handle three times in one call, then reads the result: both succeed, exit 0.
;; Hostile corpus: cmd/wflow/hostile_test.go holds what each must end with.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wflow_v1" "step_submit" (func $step_submit (param i32 i32 i32) (result i32)))
  (import "wflow_v1" "step_wait" (func $step_wait (param i32 i32 i32) (result i32)))
  (import "wflow_v1" "step_result" (func $step_result (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\22name\22:\22ok\22,\22image\22:\22wflow-test/busybox\22,\22commands\22:[[\22true\22]]}")
  (func (export "_start")
    (drop (call $step_submit (i32.const 0) (i32.const 64) (i32.const 1000)))
    (i32.store (i32.const 1004) (i32.load (i32.const 1000)))
    (i32.store (i32.const 1008) (i32.load (i32.const 1000)))
    (if (call $step_wait (i32.const 1000) (i32.const 3) (i32.const 1100)) (then (call $exit (i32.const 100))))
    (call $exit (call $step_result (i32.load (i32.const 1100)) (i32.const 2000) (i32.const 30000) (i32.const 1104)))
  )
)
