package step

import (
	"fmt"
	"strings"

	"github.com/wflow/wflow/internal/clip"
)

// ExpandVars substitutes the fixed variables (`wflow run --var name=value`)
// into every command of the step and returns the expanded step.
//
// The rules are strict, unlike flowserv's, which silently dropped the `$` of an
// unknown name: `$name` and `${name}` are replaced by the variable's value, a
// name that is not defined is an error, `$$` stands for a literal `$`, and any
// other `$` is an error. Names are [A-Za-z_][A-Za-z0-9_]*.
func ExpandVars(s Step, vars map[string]string) (Step, error) {
	out := s
	out.Commands = make([]Command, len(s.Commands))
	unknown := func(name, written string) error { return unknownVar(s, name, written) }
	for i, c := range s.Commands {
		what := fmt.Sprintf("step %s: command %d", s.Name, i+1)
		if c.Argv == nil {
			sh, err := expand(c.Shell, vars, unknown)
			if err != nil {
				return Step{}, fmt.Errorf("%w: %s: %v", ErrInvalidStep, what, err)
			}
			out.Commands[i] = Command{Shell: sh}
			continue
		}
		argv := make([]string, len(c.Argv))
		for j, a := range c.Argv {
			v, err := expand(a, vars, unknown)
			if err != nil {
				return Step{}, fmt.Errorf("%w: %s argument %d: %v", ErrInvalidStep, what, j+1, err)
			}
			argv[j] = v
		}
		out.Commands[i] = Command{Argv: argv}
	}
	return out, nil
}

// unknownVar is the error of $name with no --var name: with a hint when
// name is a variable of the step's environment, which the shell expands.
func unknownVar(s Step, name, written string) error {
	_, inEnv := s.Env[name]
	_, inSecrets := s.Secrets[name]
	if inEnv || inSecrets {
		return fmt.Errorf("unknown variable %s: %s is in the step's environment; write $%s for the shell to expand it (wflow substitutes only --var)", written, name, written)
	}
	return fmt.Errorf("unknown variable %s (define it with --var %s=VALUE, or write $$ for a literal $)", written, name)
}

// expand applies the substitution rules of ExpandVars to one string.
func expand(s string, vars map[string]string, unknown func(name, written string) error) (string, error) {
	if strings.IndexByte(s, '$') < 0 {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' {
			b.WriteByte(c)
			i++
			continue
		}
		rest := s[i+1:]
		switch {
		case strings.HasPrefix(rest, "$"):
			b.WriteByte('$')
			i += 2
		case strings.HasPrefix(rest, "{"):
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				return "", fmt.Errorf("unclosed ${ at byte %d", i)
			}
			name := rest[1:end]
			if !isVarName(name) {
				return "", fmt.Errorf("${%s} at byte %d is not a variable name (write $$ for a literal $)", clip.String(name, 40), i)
			}
			v, ok := vars[name]
			if !ok {
				return "", unknown(name, "${"+name+"}")
			}
			b.WriteString(v)
			i += 2 + end
		default:
			n := varNameLen(rest)
			if n == 0 {
				return "", fmt.Errorf("stray $ at byte %d (write $$ for a literal $)", i)
			}
			name := rest[:n]
			v, ok := vars[name]
			if !ok {
				return "", unknown(name, "$"+name)
			}
			b.WriteString(v)
			i += 1 + n
		}
	}
	return b.String(), nil
}

// varNameLen returns the length of the variable name at the start of s.
func varNameLen(s string) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !letter && (i == 0 || c < '0' || c > '9') {
			return i
		}
	}
	return len(s)
}

func isVarName(s string) bool { return s != "" && varNameLen(s) == len(s) }
