;; loop: a policy that never ends: its time cap stops it and the step is refused.
(module
  (memory (export "memory") 1)
  (func (export "_start") (loop $forever (br $forever)))
)
