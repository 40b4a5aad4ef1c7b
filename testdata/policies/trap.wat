;; trap: a policy that traps before deciding: the step must be refused.
(module
  (memory (export "memory") 1)
  (func (export "_start") unreachable)
)
