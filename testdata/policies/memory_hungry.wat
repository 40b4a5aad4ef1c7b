;; memory_hungry: grows its memory until refused, then traps: the step is refused.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $more (br_if $more (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    unreachable)
)
