package containers

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/wflow/wflow/abi"
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

// ParseStep decodes and validates a step spec (JSON, schema in docs/abi.md).
// Errors wrap ErrInvalidJSON or ErrInvalidStep and say what is wrong.
func ParseStep(spec []byte) (Step, error) {
	if err := CheckJSON(spec, abi.MaxJSONDepth); err != nil {
		return Step{}, err
	}
	root := gjson.ParseBytes(spec)
	if !root.IsObject() {
		return Step{}, invalidStep("a step spec must be a JSON object")
	}
	var (
		s    Step
		err  error
		seen = map[string]bool{}
	)
	root.ForEach(func(key, value gjson.Result) bool {
		k := key.String()
		if seen[k] {
			err = invalidStep("field %q given twice", k)
			return false
		}
		seen[k] = true
		switch k {
		case "name":
			s.Name, err = stringField("name", value)
		case "image":
			s.Image, err = stringField("image", value)
		case "commands":
			s.Commands, err = parseCommands(value)
		case "env":
			s.Env, err = parseEnv(value)
		default:
			err = invalidStep("unknown field %q (ABI v%d knows name, image, commands, env)", truncate(k, 64), abi.Version)
		}
		return err == nil
	})
	if err != nil {
		return Step{}, err
	}
	return s, s.Validate()
}

// Validate checks the step's fields against the schema's rules.
func (s Step) Validate() error {
	switch {
	case s.Name == "":
		return invalidStep("field \"name\" is required")
	case len(s.Name) > abi.MaxStepNameLen || !stepNamePattern.MatchString(s.Name):
		return invalidStep("name %q: use 1 to %d letters, digits, '_', '.', '-', starting with a letter or digit", truncate(s.Name, 80), abi.MaxStepNameLen)
	case s.Image == "":
		return invalidStep("step %s: field \"image\" is required", s.Name)
	case len(s.Image) > abi.MaxImageRefLen || strings.ContainsAny(s.Image, " \t\r\n\x00"):
		return invalidStep("step %s: image %q is not an image reference", s.Name, truncate(s.Image, 80))
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
			return invalidStep("step %s: env name %q is not valid", s.Name, truncate(k, 80))
		}
	}
	return nil
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

func parseEnv(v gjson.Result) (map[string]string, error) {
	if !v.IsObject() {
		return nil, invalidStep("field \"env\" must be an object of strings")
	}
	env := map[string]string{}
	var err error
	v.ForEach(func(key, value gjson.Result) bool {
		if len(env) >= abi.MaxEnv {
			err = invalidStep("more than %d env entries", abi.MaxEnv)
			return false
		}
		k := key.String()
		if value.Type != gjson.String {
			err = invalidStep("env %q must be a string", truncate(k, 80))
			return false
		}
		var s string
		if s, err = checkString("env "+truncate(k, 80), value.String()); err != nil {
			return false
		}
		env[k] = s
		return true
	})
	return env, err
}

// truncate shortens s for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
