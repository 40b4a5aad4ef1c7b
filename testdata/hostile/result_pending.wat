;; result_pending: submits a 30 s step and reads its result at once: errno pending (7); the module exits and the step is cancelled.
;; Hostile corpus: cmd/wflow/hostile_test.go holds what each must end with.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wflow_v1" "step_submit" (func $step_submit (param i32 i32 i32) (result i32)))
  (import "wflow_v1" "step_result" (func $step_result (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\22name\22:\22sleeper\22,\22image\22:\22wflow-test/busybox\22,\22commands\22:[[\22sleep\22,\2230\22]]}")
  (func (export "_start")
    (drop (call $step_submit (i32.const 0) (i32.const 75) (i32.const 1000)))
    (call $exit (call $step_result (i32.load (i32.const 1000)) (i32.const 2000) (i32.const 30000) (i32.const 1004)))
  )
)
