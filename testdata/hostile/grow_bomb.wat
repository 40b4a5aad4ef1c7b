;; grow_bomb: grows its memory one page at a time until the host refuses
;; (memory.grow returns -1), then exits with code 3.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $more
      (br_if $more (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    (call $proc_exit (i32.const 3)))
)
