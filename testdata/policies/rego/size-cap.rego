# A policy that caps a size the workflow's author gives (env SIZE) at 8 GiB.
package wflow

import rego.v1

deny contains "too big" if units.parse_bytes(input.step.env.SIZE) > units.parse_bytes("8gib")
