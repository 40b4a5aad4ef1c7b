;; loop: a WASI command that never ends; only a wall-clock limit stops it.
(module
  (memory (export "memory") 1)
  (func (export "_start") (loop $forever (br $forever)))
)
