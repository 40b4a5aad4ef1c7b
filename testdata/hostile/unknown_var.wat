;; unknown_var: a command using an undefined $variable: errno invalid_step (4).
;; Hostile corpus: cmd/wflow/hostile_test.go holds what each must end with.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wflow_v1" "step_submit" (func $step_submit (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\22name\22:\22x\22,\22image\22:\22wflow-test/busybox\22,\22commands\22:[\22echo $HOME\22]}")
  (func (export "_start")
    (call $exit (call $step_submit (i32.const 0) (i32.const 67) (i32.const 60000)))
  )
)
