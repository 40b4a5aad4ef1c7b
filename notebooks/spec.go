// Package notebooks runs notebook steps: a notebook, typed parameters and pip
// requirements become an image (built from a documented Dockerfile template,
// tagged by a content hash so the same inputs never rebuild) and a papermill
// run in it against the run directory. The run itself is a container step,
// so it passes the policies, limits and clean-up of every other step.
// docs/notebooks.md documents it.
package notebooks

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/wflow/wflow/abi"
	"github.com/wflow/wflow/internal/clip"
	"github.com/wflow/wflow/step"
)

// Step is a notebook step.
type Step struct {
	Name         string            `json:"name"`
	Notebook     string            `json:"notebook"`             // path in the run directory
	Output       string            `json:"output"`               // default: x.ipynb -> x.out.ipynb
	Parameters   json.RawMessage   `json:"parameters,omitempty"` // a JSON object, kept as given so types survive
	Requirements []string          `json:"requirements,omitempty"`
	Base         string            `json:"base,omitempty"`   // base image; default --notebook-base
	Kernel       string            `json:"kernel,omitempty"` // papermill -k; default the notebook's metadata.kernelspec.name
	Env          map[string]string `json:"env,omitempty"`
	Secrets      map[string]string `json:"secrets,omitempty"` // as a container step's: variable name to secret name
	step.Limits
	// The step cache's fields, as for a container step; the notebook is
	// always an input and the output notebook always an output.
	Inputs  []string `json:"inputs,omitempty"`
	Outputs []string `json:"outputs,omitempty"`
	Cache   *bool    `json:"cache,omitempty"`
}

// Build is a request to build (or find) the image of a set of requirements.
type Build struct {
	Name         string   `json:"name"`
	Base         string   `json:"base,omitempty"`
	Requirements []string `json:"requirements,omitempty"`
}

// Caps of notebook specs.
const (
	maxRequirements   = 256
	maxRequirementLen = 1024
	maxParamsLen      = 1 << 20
)

// ParseStep decodes and validates a notebook step spec (docs/abi.md).
// Errors wrap step.ErrInvalidJSON or step.ErrInvalidStep.
func ParseStep(spec []byte) (Step, error) {
	var s Step
	if err := step.CheckJSON(spec, abi.MaxJSONDepth); err != nil {
		return s, err
	}
	// The limits and env are read by the container step parser, from a spec
	// holding only those fields, so they follow exactly its rules.
	limits := map[string]string{}
	err := step.Fields(gjson.ParseBytes(spec), "a notebook step spec", func(key string, v gjson.Result) (err error) {
		if key == "env" || key == "secrets" || slices.Contains(step.LimitFields, key) || slices.Contains(step.CacheFields, key) {
			// read by the step parser, with its rules (below)
			limits[key] = v.Raw
			return nil
		}
		switch key {
		case "name":
			s.Name, err = str(key, v)
		case "notebook":
			s.Notebook, err = str(key, v)
		case "output":
			s.Output, err = str(key, v)
		case "base":
			s.Base, err = str(key, v)
		case "kernel":
			if s.Kernel, err = str(key, v); err == nil && !kernelName.MatchString(s.Kernel) {
				err = invalid("kernel %q is not a kernel name (letters, digits, '.', '_', '-')", clip.String(s.Kernel, 80))
			}
		case "parameters":
			if !v.IsObject() {
				err = invalid("field \"parameters\" must be an object of JSON values")
			} else if len(v.Raw) > maxParamsLen {
				err = invalid("parameters are %d bytes, at most %d", len(v.Raw), maxParamsLen)
			} else if _, perr := paramsDocument([]byte(v.Raw)); perr != nil {
				err = invalid("%v", perr)
			} else {
				s.Parameters = json.RawMessage(v.Raw)
			}
		case "requirements":
			s.Requirements, err = requirements(v)
		default:
			err = invalid("unknown field %q (notebook steps know name, notebook, output, parameters, requirements, base, kernel, env, secrets, %s, %s)", clip.String(key, 80), strings.Join(step.LimitFields, ", "), strings.Join(step.CacheFields, ", "))
		}
		return err
	})
	if err != nil {
		return s, err
	}
	if len(limits) > 0 {
		// The limits are read by the step parser, as part of a step named
		// like this one, so that its messages name the notebook step.
		name, _ := json.Marshal(s.Name)
		if s.Name == "" {
			name = []byte(`"notebook"`)
		}
		var b strings.Builder
		fmt.Fprintf(&b, `{"name":%s,"image":"x","commands":["x"]`, name)
		for k, raw := range limits {
			fmt.Fprintf(&b, ",%q:%s", k, raw)
		}
		b.WriteString("}")
		c, err := step.ParseStep([]byte(b.String()))
		if err != nil {
			return s, err
		}
		s.Env, s.Secrets, s.Limits, s.Inputs, s.Outputs, s.Cache = c.Env, c.Secrets, c.Limits, c.Inputs, c.Outputs, c.Cache
	}
	if s.Output == "" && s.Notebook != "" {
		s.Output = strings.TrimSuffix(s.Notebook, ".ipynb") + ".out.ipynb"
	}
	return s, s.validate()
}

func (s Step) validate() error {
	probe := step.Step{Name: s.Name, Image: "x", Commands: []step.Command{{Shell: "x"}}}
	if err := probe.Validate(); err != nil {
		return err
	}
	for _, p := range []struct{ field, path string }{{"notebook", s.Notebook}, {"output", s.Output}} {
		if p.path == "" {
			return invalid("field %q is required", p.field)
		}
		if _, err := step.RunDirPath(p.field, p.path); err != nil {
			return err
		}
	}
	if !strings.HasSuffix(s.Notebook, ".ipynb") {
		return invalid("notebook %q: want a .ipynb file", clip.String(s.Notebook, 80))
	}
	if s.Output == s.Notebook {
		return invalid("output must differ from the notebook")
	}
	return checkBase(s.Base)
}

// ParseBuild decodes and validates a notebook build spec.
func ParseBuild(spec []byte) (Build, error) {
	var b Build
	if err := step.CheckJSON(spec, abi.MaxJSONDepth); err != nil {
		return b, err
	}
	err := step.Fields(gjson.ParseBytes(spec), "a notebook build spec", func(key string, v gjson.Result) (err error) {
		switch key {
		case "name":
			b.Name, err = str(key, v)
		case "base":
			b.Base, err = str(key, v)
		case "requirements":
			b.Requirements, err = requirements(v)
		default:
			err = invalid("unknown field %q (a build knows name, base, requirements)", clip.String(key, 80))
		}
		return err
	})
	if err != nil {
		return b, err
	}
	probe := step.Step{Name: b.Name, Image: "x", Commands: []step.Command{{Shell: "x"}}}
	if err := probe.Validate(); err != nil {
		return b, err
	}
	return b, checkBase(b.Base)
}

func checkBase(base string) error {
	if base != "" && (len(base) > abi.MaxImageRefLen || strings.ContainsAny(base, " \t\r\n\x00")) {
		return invalid("base %q is not an image reference", clip.String(base, 80))
	}
	return nil
}

func requirements(v gjson.Result) ([]string, error) {
	if !v.IsArray() {
		return nil, invalid("field \"requirements\" must be a list of strings")
	}
	items := v.Array()
	if len(items) > maxRequirements {
		return nil, invalid("%d requirements, at most %d", len(items), maxRequirements)
	}
	out := make([]string, 0, len(items))
	for i, it := range items {
		if it.Type != gjson.String {
			return nil, invalid("requirement %d must be a string", i+1)
		}
		r := strings.TrimSpace(it.String())
		if r == "" || len(r) > maxRequirementLen || strings.IndexFunc(r, breaksLine) >= 0 {
			return nil, invalid("requirement %d %q is not a requirement line", i+1, clip.String(r, 80))
		}
		if isLocal(r) {
			if _, err := step.RunDirPath("requirement", r); err != nil {
				return nil, err
			}
			if strings.ContainsAny(r, " \t'\"#") {
				return nil, invalid("requirement %d %q: a local package path may not hold spaces, quotes or '#' (pip would read the rest as options)", i+1, clip.String(r, 80))
			}
		} else if err := specifier(r); err != nil {
			return nil, invalid("requirement %d %q: %v", i+1, clip.String(r, 80), err)
		}
		out = append(out, r)
	}
	return out, nil
}

// breaksLine reports whether a rune may end a line of requirements.txt for
// pip, which splits it with Python's str.splitlines: every control
// character (\v, \f, \x1c-\x1e among them), NEL and the Unicode line and
// paragraph separators. A requirement must hold none.
func breaksLine(r rune) bool {
	return r < 0x20 || r == 0x7f || r == 0x85 || r == 0x2028 || r == 0x2029 || r == utf8.RuneError
}

// kernelName is what a Jupyter kernel's name may be (its kernelspec folder).
var kernelName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// requirementName is how a PEP 508 requirement starts: a project name,
// then extras, version specifiers, markers or "@ URL".
var (
	requirementName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?([ \t]*(\[|[<>=!~;@(]|$))`)
	hashOption      = regexp.MustCompile(`^--hash=(sha256|sha384|sha512):[0-9a-fA-F]+$`)
)

// specifier checks that a requirement line is a package specifier (PEP
// 508: "pandas", "numpy>=1.26,<2", "rich[jupyter]; python_version>'3.8'",
// "pkg @ https://..."), with no pip option but --hash: a line is written
// into requirements.txt as it is, and pip obeys options there ("-r
// /etc/...", "--extra-index-url", "-e /", "--trusted-host").
func specifier(r string) error {
	if strings.HasPrefix(r, "-") {
		return fmt.Errorf("pip options are not requirements; give a package specifier like name==1.2 or a ./path in the run directory")
	}
	if !requirementName.MatchString(r) {
		return fmt.Errorf("not a package specifier (name, name[extra], name==1.2, name @ URL) or a ./path in the run directory")
	}
	if strings.Contains(r, "\\") {
		return fmt.Errorf("a backslash would continue the line in requirements.txt")
	}
	// pip splits a requirement line the way a POSIX shell would (shlex),
	// so a quoted '--option' is an option too: look at the words it sees.
	for _, field := range shellWords(r) {
		if strings.HasPrefix(field, "-") && !hashOption.MatchString(field) {
			return fmt.Errorf("pip option %q: only --hash=<alg>:<hex> may follow a specifier", clip.String(field, 80))
		}
	}
	return nil
}

// shellWords splits s into words as a POSIX shell does with quotes (no
// backslashes: a requirement may not hold one): 'a b' and "a b" are one
// word, and quotes join what touches them.
func shellWords(s string) []string {
	var words []string
	var word strings.Builder
	inWord := false
	var quote rune
	for _, c := range s {
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			word.WriteRune(c)
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		default:
			word.WriteRune(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, word.String())
	}
	return words
}

// isLocal reports whether a requirement is a path in the run directory (a
// local package), rather than something pip finds in an index.
func isLocal(r string) bool {
	return strings.HasPrefix(r, "./") || strings.HasPrefix(r, abi.RunDirMountPoint+"/")
}

func str(field string, v gjson.Result) (string, error) {
	if v.Type != gjson.String {
		return "", invalid("field %q must be a string", field)
	}
	return v.String(), nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", step.ErrInvalidStep, fmt.Sprintf(format, args...))
}
