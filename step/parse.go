package step

import (
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/wflow/wflow/abi"
	"github.com/wflow/wflow/internal/clip"
	"github.com/wflow/wflow/rundir"
	"github.com/wflow/wflow/secrets"
)

// stepNamePattern is what a step name may be: it becomes a container label, a
// log prefix and part of a file name in the run directory.
var stepNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// CheckJSON reports whether b is valid UTF-8 JSON nesting at most maxDepth
// arrays and objects. It runs before any parser sees guest bytes, so a hostile
// document can neither be invalid nor blow a recursive parser's stack.
func CheckJSON(b []byte, maxDepth int) error {
	if !utf8.Valid(b) {
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidJSON)
	}
	if d := jsonDepth(b); d > maxDepth {
		return fmt.Errorf("%w: nests deeper than %d levels", ErrInvalidJSON, maxDepth)
	}
	if !gjson.ValidBytes(b) {
		return fmt.Errorf("%w: syntax error", ErrInvalidJSON)
	}
	return nil
}

// jsonDepth returns the deepest nesting of brackets outside strings. It does
// not validate; CheckJSON calls the validator afterwards.
func jsonDepth(b []byte) int {
	depth, maxDepth := 0, 0
	inString, escaped := false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
			if depth > maxDepth {
				maxDepth = depth
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return maxDepth
}

// Fields calls fn for each field of a JSON object, in order, and stops at
// the first error. A value that is not an object, or a field given twice,
// is an ErrInvalidStep error: guest JSON is read strictly, whatever reads it.
func Fields(obj gjson.Result, what string, fn func(key string, value gjson.Result) error) error {
	if !obj.IsObject() {
		return invalidStep("%s must be a JSON object", what)
	}
	var err error
	seen := map[string]bool{}
	obj.ForEach(func(key, value gjson.Result) bool {
		k := key.String()
		if seen[k] {
			err = invalidStep("%s: field %q given twice", what, clip.String(k, 64))
			return false
		}
		seen[k] = true
		err = fn(k, value)
		return err == nil
	})
	return err
}

// ParseStep decodes and validates a step spec (JSON, schema in docs/abi.md).
// Errors wrap ErrInvalidJSON or ErrInvalidStep and say what is wrong.
func ParseStep(spec []byte) (Step, error) {
	if err := CheckJSON(spec, abi.MaxJSONDepth); err != nil {
		return Step{}, err
	}
	var s Step
	err := Fields(gjson.ParseBytes(spec), "a step spec", func(k string, value gjson.Result) (err error) {
		switch k {
		case "name":
			s.Name, err = stringField("name", value)
		case "image":
			s.Image, err = stringField("image", value)
		case "commands":
			s.Commands, err = parseCommands(value)
		case "env":
			s.Env, err = parseEnv(value)
		case "secrets":
			s.Secrets, err = parseSecrets(value)
		case "timeout":
			s.Timeout, err = durationField("timeout", value)
		case "cpus":
			s.CPUs, err = numberField("cpus", value)
		case "memory":
			s.Memory, err = memoryField(value)
		case "pids":
			s.Pids, err = integerField("pids", value)
		case "network":
			s.Network, err = stringField("network", value)
		case "read_only":
			s.ReadOnly, err = boolField("read_only", value)
		case "user":
			s.User, err = stringField("user", value)
		case "retry":
			s.Retry, err = parseRetry(value)
		case "inputs":
			s.Inputs, err = RunDirPaths("inputs", value)
		case "outputs":
			s.Outputs, err = RunDirPaths("outputs", value)
		case "cache":
			var c bool
			c, err = boolField("cache", value)
			s.Cache = &c
		default:
			err = invalidStep("unknown field %q (ABI v%d knows %s)", clip.String(k, 64), abi.Version, strings.Join(SpecFields, ", "))
		}
		return err
	})
	if err != nil {
		return Step{}, err
	}
	return s, s.Validate()
}

// LimitFields are the fields of a step spec that set its limits; notebook
// steps take them too.
var LimitFields = []string{"timeout", "cpus", "memory", "pids", "network", "read_only", "user"}

// CacheFields are the fields of a step spec for the step cache; notebook
// steps take them too.
var CacheFields = []string{"inputs", "outputs", "cache"}

// SpecFields are every field of a step spec (docs/abi.md), in the order the
// docs give them.
var SpecFields = append(append(append([]string{"name", "image", "commands", "env", "secrets"}, LimitFields...), "retry"), CacheFields...)

// RunDirPaths reads a list of paths in the run directory (relative to it,
// or under abi.RunDirMountPoint) and returns them relative and cleaned, in
// the order given. A path that leads out, names the run directory itself or
// lies in wflow's records is an error, as is a path given twice.
func RunDirPaths(field string, v gjson.Result) ([]string, error) {
	if !v.IsArray() {
		return nil, invalidStep("field %q must be a list of paths", field)
	}
	items := v.Array()
	if len(items) > abi.MaxStepPaths {
		return nil, invalidStep("field %q: %d paths, at most %d", field, len(items), abi.MaxStepPaths)
	}
	out := make([]string, 0, len(items))
	seen := map[string]bool{}
	for _, it := range items {
		if it.Type != gjson.String {
			return nil, invalidStep("field %q must be a list of paths (strings)", field)
		}
		p, err := RunDirPath(field, it.String())
		if err != nil {
			return nil, err
		}
		if seen[p] {
			return nil, invalidStep("%s: %q given twice", field, clip.String(p, 80))
		}
		seen[p] = true
		out = append(out, p)
	}
	return out, nil
}

// RunDirPath checks one path in the run directory, given relative to it or
// under abi.RunDirMountPoint, and returns it relative and cleaned.
func RunDirPath(field, p string) (string, error) {
	switch {
	case p == "":
		return "", invalidStep("field %q: a path is empty", field)
	case strings.HasPrefix(p, abi.RunDirMountPoint+"/"):
		p = strings.TrimPrefix(p, abi.RunDirMountPoint+"/")
	case strings.HasPrefix(p, "/"):
		return "", invalidStep("%s %q: give a path in the run directory", field, clip.String(p, 80))
	}
	c := path.Clean(p)
	switch {
	case c == "." || c == ".." || strings.HasPrefix(c, "../") || strings.ContainsAny(p, "\x00\n"):
		return "", invalidStep("%s %q lies outside the run directory", field, clip.String(p, 80))
	case c == rundir.Records || strings.HasPrefix(c, rundir.Records+"/"):
		return "", invalidStep("%s %q lies in wflow's records (%s)", field, clip.String(p, 80), rundir.Records)
	case len(c) > 4096:
		return "", invalidStep("%s: a path is over 4096 bytes", field)
	}
	return c, nil
}

// Validate checks the step's fields against the schema's rules.
func (s Step) Validate() error {
	switch {
	case s.Name == "":
		return invalidStep("field \"name\" is required")
	case len(s.Name) > abi.MaxStepNameLen || !stepNamePattern.MatchString(s.Name):
		return invalidStep("name %q: use 1 to %d letters, digits, '_', '.', '-', starting with a letter or digit", clip.String(s.Name, 80), abi.MaxStepNameLen)
	case s.Image == "":
		return invalidStep("step %s: field \"image\" is required", s.Name)
	case len(s.Image) > abi.MaxImageRefLen || strings.ContainsAny(s.Image, " \t\r\n\x00"):
		return invalidStep("step %s: image %q is not an image reference", s.Name, clip.String(s.Image, 80))
	case len(s.Commands) == 0:
		return invalidStep("step %s: field \"commands\" needs at least one command", s.Name)
	case len(s.Commands) > abi.MaxCommands:
		return invalidStep("step %s: %d commands, at most %d", s.Name, len(s.Commands), abi.MaxCommands)
	case len(s.Env) > abi.MaxEnv:
		return invalidStep("step %s: %d env entries, at most %d", s.Name, len(s.Env), abi.MaxEnv)
	}
	for i, c := range s.Commands {
		if c.Argv == nil && c.Shell == "" {
			return invalidStep("step %s: command %d is empty", s.Name, i+1)
		}
		if c.Argv != nil && len(c.Argv) == 0 {
			return invalidStep("step %s: command %d is an empty list", s.Name, i+1)
		}
	}
	for k := range s.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return invalidStep("step %s: env name %q is not valid", s.Name, clip.String(k, 80))
		}
	}
	if len(s.Env)+len(s.Secrets) > abi.MaxEnv {
		return invalidStep("step %s: %d env and secrets entries, at most %d", s.Name, len(s.Env)+len(s.Secrets), abi.MaxEnv)
	}
	for k, name := range s.Secrets {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return invalidStep("step %s: secrets: env name %q is not valid", s.Name, clip.String(k, 80))
		}
		if _, both := s.Env[k]; both {
			return invalidStep("step %s: %s is in both env and secrets", s.Name, clip.String(k, 80))
		}
		if err := secrets.CheckName(name); err != nil {
			return invalidStep("step %s: secrets: %s: %q: %v", s.Name, clip.String(k, 80), clip.String(name, 80), err)
		}
	}
	if err := s.Limits.Validate(); err != nil {
		return invalidStep("step %s: %v", s.Name, err)
	}
	if s.Retry != nil {
		if err := s.Retry.Validate(); err != nil {
			return invalidStep("step %s: %v", s.Name, err)
		}
	}
	return nil
}

func numberField(name string, v gjson.Result) (float64, error) {
	if v.Type != gjson.Number {
		return 0, invalidStep("field %q must be a number", name)
	}
	return v.Float(), nil
}

func integerField(name string, v gjson.Result) (int64, error) {
	f, err := numberField(name, v)
	if err != nil {
		return 0, err
	}
	if f != float64(int64(f)) || f < 0 || f > 1<<52 {
		return 0, invalidStep("field %q must be a non-negative integer", name)
	}
	return int64(f), nil
}

func boolField(name string, v gjson.Result) (bool, error) {
	if v.Type != gjson.True && v.Type != gjson.False {
		return false, invalidStep("field %q must be true or false", name)
	}
	return v.Bool(), nil
}

// durationField reads a duration given as a string ("30s") or a number of seconds.
func durationField(name string, v gjson.Result) (Duration, error) {
	switch v.Type {
	case gjson.String:
		d, err := ParseDuration(v.String())
		if err != nil {
			return 0, invalidStep("field %q: %v", name, err)
		}
		return d, nil
	case gjson.Number:
		f := v.Float()
		if f < 0 || f > maxStepTimeout.Seconds() {
			return 0, invalidStep("field %q: %g seconds is out of range", name, f)
		}
		return Duration(f * float64(time.Second)), nil
	}
	return 0, invalidStep("field %q must be a duration string like \"30s\" or a number of seconds", name)
}

// memoryField reads a size given as a string ("512m") or a number of bytes.
func memoryField(v gjson.Result) (int64, error) {
	switch v.Type {
	case gjson.String:
		n, err := ParseMemory(v.String())
		if err != nil {
			return 0, invalidStep("field \"memory\": %v", err)
		}
		return n, nil
	case gjson.Number:
		return integerField("memory", v)
	}
	return 0, invalidStep("field \"memory\" must be a size like \"512m\" or a number of bytes")
}

// parseRetry reads a retry policy; the fields it does not give get their
// defaults (initial 1s, factor 2, max 1m), so that "initial": "0s" (retry
// at once) differs from no initial.
func parseRetry(v gjson.Result) (*Retry, error) {
	r := &Retry{Initial: Duration(time.Second), Factor: 2, Max: Duration(time.Minute)}
	err := Fields(v, `field "retry"`, func(k string, value gjson.Result) (err error) {
		switch k {
		case "retries":
			var n int64
			n, err = integerField("retry.retries", value)
			r.Retries = int(min(n, maxRetries+1))
		case "initial":
			r.Initial, err = durationField("retry.initial", value)
		case "max":
			if r.Max, err = durationField("retry.max", value); err == nil && r.Max == 0 {
				err = invalidStep("retry.max is the longest delay and must be more than 0 (for no delay, give initial 0s)")
			}
		case "factor":
			r.Factor, err = numberField("retry.factor", value)
		case "on_exit_codes":
			if !value.IsArray() || len(value.Array()) > 256 {
				return invalidStep("retry.on_exit_codes must be a list of at most 256 exit codes")
			}
			for _, c := range value.Array() {
				n, err := integerField("retry.on_exit_codes", c)
				if err != nil {
					return err
				}
				r.OnExitCodes = append(r.OnExitCodes, int(min(n, 256)))
			}
		case "on_error_kinds":
			if !value.IsArray() || len(value.Array()) > 16 {
				return invalidStep("retry.on_error_kinds must be a list of error kinds")
			}
			for _, c := range value.Array() {
				kind, err := stringField("retry.on_error_kinds", c)
				if err != nil {
					return err
				}
				r.OnErrorKinds = append(r.OnErrorKinds, kind)
			}
		default:
			err = invalidStep("unknown retry field %q (retries, initial, factor, max, on_exit_codes, on_error_kinds)", clip.String(k, 64))
		}
		return err
	})
	return r, err
}

func stringField(name string, v gjson.Result) (string, error) {
	if v.Type != gjson.String {
		return "", invalidStep("field %q must be a string", name)
	}
	return checkString(name, v.String())
}

func checkString(what, s string) (string, error) {
	if len(s) > abi.MaxStringLen {
		return "", invalidStep("%s is %d bytes, at most %d", what, len(s), abi.MaxStringLen)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "", invalidStep("%s contains a NUL byte", what)
	}
	return s, nil
}

func parseCommands(v gjson.Result) ([]Command, error) {
	if !v.IsArray() {
		return nil, invalidStep("field \"commands\" must be a list of commands (each a string or a list of strings)")
	}
	items := v.Array()
	if len(items) > abi.MaxCommands {
		return nil, invalidStep("%d commands, at most %d", len(items), abi.MaxCommands)
	}
	cmds := make([]Command, 0, len(items))
	for i, item := range items {
		what := fmt.Sprintf("command %d", i+1)
		switch {
		case item.Type == gjson.String:
			sh, err := checkString(what, item.String())
			if err != nil {
				return nil, err
			}
			cmds = append(cmds, Command{Shell: sh})
		case item.IsArray():
			args := item.Array()
			if len(args) > abi.MaxArgs {
				return nil, invalidStep("%s has %d arguments, at most %d", what, len(args), abi.MaxArgs)
			}
			argv := make([]string, 0, len(args))
			for j, a := range args {
				if a.Type != gjson.String {
					return nil, invalidStep("%s: argument %d must be a string", what, j+1)
				}
				s, err := checkString(fmt.Sprintf("%s argument %d", what, j+1), a.String())
				if err != nil {
					return nil, err
				}
				argv = append(argv, s)
			}
			cmds = append(cmds, Command{Argv: argv})
		default:
			return nil, invalidStep("%s must be a string (run with sh -c) or a list of strings (an argv)", what)
		}
	}
	return cmds, nil
}

// parseSecrets reads "secrets": {"ENV": "secret-name"}; Validate checks the names.
func parseSecrets(v gjson.Result) (map[string]string, error) {
	refs := map[string]string{}
	err := Fields(v, `field "secrets"`, func(k string, value gjson.Result) error {
		if len(refs) >= abi.MaxEnv {
			return invalidStep("more than %d secrets entries", abi.MaxEnv)
		}
		if value.Type != gjson.String {
			return invalidStep("secrets %q must be the name of a secret (a string)", clip.String(k, 80))
		}
		refs[k] = value.String()
		return nil
	})
	return refs, err
}

func parseEnv(v gjson.Result) (map[string]string, error) {
	env := map[string]string{}
	err := Fields(v, `field "env"`, func(k string, value gjson.Result) error {
		if len(env) >= abi.MaxEnv {
			return invalidStep("more than %d env entries", abi.MaxEnv)
		}
		if value.Type != gjson.String {
			return invalidStep("env %q must be a string", clip.String(k, 80))
		}
		s, err := checkString("env "+clip.String(k, 80), value.String())
		env[k] = s
		return err
	})
	return env, err
}
