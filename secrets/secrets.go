// Package secrets holds the values of a run's secrets (--secret) and masks
// them: a step names a secret in its spec ("secrets": {"ENV": "name"}), the
// runner puts the value in that step's environment, and every stream and
// message wflow prints or records goes through a Set's masking first, so
// the value is written as "***" wherever it shows up verbatim.
//
// Only the runner reads a value (Value); the module, the policies, the
// journal and the report see names.
package secrets

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"syscall"
)

// Mask is what a secret's value is replaced with.
const Mask = "***"

// Limits of a secret.
const (
	MaxValueLen = 64 << 10 // bytes of one value
	MinValueLen = 4        // shorter values would mask ordinary text everywhere
	MaxSecrets  = 256
	MaxNameLen  = 63
)

// NamePattern is what a secret's name looks like.
var NamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)

// Set is the secrets of one run: their values by name, and the patterns
// masked in everything wflow writes. The zero Set and a nil *Set hold none.
type Set struct {
	values   map[string][]byte
	patterns [][]byte // the values, and each line of a multi-line value, longest first
}

// Parse reads --secret flags, each NAME=env:VAR (the value of the
// environment variable VAR, which must be set) or NAME=file:PATH (the
// content of the file, less one trailing newline). getenv and readFile are
// os.LookupEnv and a bounded file read in the CLI.
func Parse(flags []string, lookupEnv func(string) (string, bool), readFile func(path string) ([]byte, error)) (*Set, error) {
	s := &Set{values: map[string][]byte{}}
	if len(flags) > MaxSecrets {
		return nil, fmt.Errorf("--secret: %d secrets, at most %d", len(flags), MaxSecrets)
	}
	for _, f := range flags {
		// A mistaken flag may hold a value (--secret token=s3cr3t): the
		// messages name the flag by its NAME only.
		name, source, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("--secret: want NAME=env:VAR or NAME=file:PATH (the flag given is not shown: it may hold a value)")
		}
		if err := CheckName(name); err != nil {
			return nil, fmt.Errorf("--secret: %v", err)
		}
		if _, dup := s.values[name]; dup {
			return nil, fmt.Errorf("--secret %s is given twice", name)
		}
		kind, from, _ := strings.Cut(source, ":")
		var value []byte
		switch {
		case kind == "env" && from != "":
			v, ok := lookupEnv(from)
			if !ok {
				return nil, fmt.Errorf("--secret %s: the environment variable %s is not set", name, from)
			}
			value = []byte(v)
		case kind == "file" && from != "":
			b, err := readFile(from)
			if err != nil {
				return nil, fmt.Errorf("--secret %s: %v", name, err)
			}
			value = trimNewline(b)
		default:
			return nil, fmt.Errorf("--secret %s: the source must be env:VAR or file:PATH (what follows = is not shown: it may be a value)", name)
		}
		switch {
		case len(value) > MaxValueLen:
			return nil, fmt.Errorf("--secret %s: the value has %d bytes, at most %d", name, len(value), MaxValueLen)
		case len(value) < MinValueLen:
			return nil, fmt.Errorf("--secret %s: the value has %d bytes; at least %d, or masking it would hide ordinary text", name, len(value), MinValueLen)
		case bytes.IndexByte(value, 0) >= 0:
			return nil, fmt.Errorf("--secret %s: the value holds a NUL byte, which no environment variable can", name)
		}
		s.values[name] = value
	}
	s.patterns = patterns(s.values)
	return s, nil
}

// CheckName says what is wrong with a secret's name, or nil.
func CheckName(name string) error {
	if len(name) > MaxNameLen || !NamePattern.MatchString(name) {
		return fmt.Errorf("a secret's name is 1 to %d of A-Z a-z 0-9 _ . - and starts with a letter or _", MaxNameLen)
	}
	return nil
}

func trimNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}

// patterns returns what is masked: every value, and every line of at
// least MinValueLen bytes of a multi-line value (a step may print one
// line of a key), longest first so a value wins over a line of it.
func patterns(values map[string][]byte) [][]byte {
	seen := map[string]bool{}
	var ps [][]byte
	add := func(p []byte) {
		if len(p) >= MinValueLen && !seen[string(p)] {
			seen[string(p)] = true
			ps = append(ps, p)
		}
	}
	var plain [][]byte
	for _, v := range values {
		plain = append(plain, v)
		for _, line := range bytes.Split(v, []byte("\n")) {
			plain = append(plain, bytes.TrimSuffix(line, []byte("\r")))
		}
	}
	for _, p := range plain {
		add(p)
		// As it appears inside JSON (a report's output, a spec, a step
		// that prints JSON): escaped, with and without HTML escaping.
		for _, html := range []bool{true, false} {
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(html)
			if enc.Encode(string(p)) == nil {
				add(bytes.TrimSuffix(bytes.TrimPrefix(bytes.TrimSuffix(b.Bytes(), []byte("\n")), []byte(`"`)), []byte(`"`)))
			}
		}
	}
	sort.Slice(ps, func(i, j int) bool {
		if len(ps[i]) != len(ps[j]) {
			return len(ps[i]) > len(ps[j])
		}
		return bytes.Compare(ps[i], ps[j]) < 0
	})
	return ps
}

// Names returns the names of the secrets, sorted.
func (s *Set) Names() []string {
	if s == nil {
		return nil
	}
	names := make([]string, 0, len(s.values))
	for n := range s.values {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Has reports whether the run has the secret name.
func (s *Set) Has(name string) bool {
	if s == nil {
		return false
	}
	_, ok := s.values[name]
	return ok
}

// ErrUnknown is returned for a secret the run was not given.
var ErrUnknown = errors.New("no such secret")

// Value returns a secret's value, for the environment of the step that
// names it; nothing else should ask for one.
func (s *Set) Value(name string) (string, error) {
	if !s.Has(name) {
		return "", fmt.Errorf("%w %q: the run has %s (wflow run --secret NAME=env:VAR)", ErrUnknown, name, s.describe())
	}
	return string(s.values[name]), nil
}

func (s *Set) describe() string {
	names := s.Names()
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// Empty reports whether there is nothing to mask.
func (s *Set) Empty() bool { return s == nil || len(s.patterns) == 0 }

// String masks every secret in text.
func (s *Set) String(text string) string {
	if s.Empty() {
		return text
	}
	return string(s.Bytes([]byte(text)))
}

// Bytes masks every secret in b; b itself is not changed.
func (s *Set) Bytes(b []byte) []byte {
	if s.Empty() {
		return b
	}
	var out bytes.Buffer
	s.mask(&out, b, true)
	return out.Bytes()
}

// mask writes b to out with every secret masked, and returns how much of
// b it consumed: all of it when final; else all but a tail that could
// still become (part of) a secret once more bytes come. Secrets that
// overlap are masked together, as one ***.
func (s *Set) mask(out *bytes.Buffer, b []byte, final bool) int {
	safe := len(b) // no secret can start at or after safe and end past b
	if !final {
		safe = s.undecided(b)
	}
	i := 0 // b[:i] is written
	for {
		start, end := s.nextMatch(b, i)
		if start < 0 || start >= safe {
			break
		}
		// Grow the match over every secret that overlaps it.
		for grown := true; grown; {
			grown = false
			for _, p := range s.patterns {
				for k := index(b, start+1, p); k >= 0 && k < end; k = index(b, k+1, p) {
					if k+len(p) > end {
						end, grown = k+len(p), true
					}
				}
			}
		}
		if end > safe && !final {
			safe = start // it may grow into bytes still to come: decide then
			break
		}
		out.Write(b[i:start])
		out.WriteString(Mask)
		i = end
	}
	if i < safe {
		out.Write(b[i:safe])
		i = safe
	}
	return i
}

// nextMatch returns where the first secret at or after from starts and
// ends (the longest, of those starting there), or -1.
func (s *Set) nextMatch(b []byte, from int) (start, end int) {
	start = -1
	for _, p := range s.patterns {
		k := index(b, from, p)
		if k >= 0 && (start < 0 || k < start || k == start && k+len(p) > end) {
			start, end = k, k+len(p)
		}
	}
	return start, end
}

// undecided returns where the tail of b begins that is the start of some
// secret, and so could become one with the bytes still to come: len(b)
// when no tail is.
func (s *Set) undecided(b []byte) int {
	from := max(0, len(b)-(len(s.patterns[0])-1))
	for i := from; i < len(b); i++ {
		for _, p := range s.patterns {
			if len(b)-i < len(p) && bytes.HasPrefix(p, b[i:]) {
				return i
			}
		}
	}
	return len(b)
}

// index is the position of p in b at or after from, or -1.
func index(b []byte, from int, p []byte) int {
	if from > len(b) {
		return -1
	}
	k := bytes.Index(b[from:], p)
	if k < 0 {
		return -1
	}
	return from + k
}

// Writer masks what is written through it before it reaches w. It holds
// back a tail that could be the start of a secret; Flush writes it, once
// the stream has ended. Not safe for concurrent use.
type Writer struct {
	set   *Set
	w     io.Writer
	carry []byte
	out   bytes.Buffer
}

// Writer returns a masking writer to w; with nothing to mask, w itself.
func (s *Set) Writer(w io.Writer) io.Writer {
	if s.Empty() || w == nil {
		return w
	}
	return &Writer{set: s, w: w}
}

// Write masks p (with the tail held back from earlier writes) and writes
// what cannot be the start of a secret. It reports len(p) once written.
func (m *Writer) Write(p []byte) (int, error) {
	buf := p
	if len(m.carry) > 0 {
		buf = append(m.carry, p...)
	}
	m.out.Reset()
	n := m.set.mask(&m.out, buf, false)
	m.carry = append(m.carry[:0], buf[n:]...)
	if m.out.Len() > 0 {
		if _, err := m.w.Write(m.out.Bytes()); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Flush writes the tail held back, masked; call it when the stream ends.
func (m *Writer) Flush() error {
	if len(m.carry) == 0 {
		return nil
	}
	m.out.Reset()
	m.set.mask(&m.out, m.carry, true)
	m.carry = nil
	_, err := m.w.Write(m.out.Bytes())
	return err
}

// Flush flushes w when it is a masking Writer.
func Flush(w io.Writer) error {
	if m, ok := w.(*Writer); ok {
		return m.Flush()
	}
	return nil
}

// ReadFile reads a secret file of at most MaxValueLen bytes (+1 newline).
func ReadFile(path string) ([]byte, error) {
	// Non-blocking: opening a FIFO for reading would wait for a writer.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxValueLen+3))
	if err != nil {
		return nil, err
	}
	return b, nil
}
