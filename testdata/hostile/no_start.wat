;; no_start: a library module, not a WASI command.
(module
  (memory (export "memory") 1)
  (func (export "work") (result i32) (i32.const 1))
)
