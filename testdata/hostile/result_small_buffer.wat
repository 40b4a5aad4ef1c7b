;; result_small_buffer: reads a result into a 4-byte buffer: errno buffer_too_small (5), with the size needed written.
;; Hostile corpus: cmd/wflow/hostile_test.go holds what each must end with.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wflow_v1" "step_run" (func $step_run (param i32 i32 i32) (result i32)))
  (import "wflow_v1" "step_result" (func $step_result (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\22name\22:\22ok\22,\22image\22:\22wflow-test/busybox\22,\22commands\22:[[\22true\22]]}")
  (func (export "_start")
    (drop (call $step_run (i32.const 0) (i32.const 64) (i32.const 1000)))
    (call $exit (call $step_result (i32.load (i32.const 1000)) (i32.const 2000) (i32.const 4) (i32.const 1004)))
  )
)
