package notebooks

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/wflow/wflow/internal/clip"
)

// paramsDocument rewrites a step's parameters (a JSON object) as the
// parameters file papermill reads with -f. papermill reads that file with
// PyYAML, a YAML 1.1 parser, which differs from JSON where it matters:
//
//   - a float needs a dot and a signed exponent to be a float: 1e-7, 1e-07,
//     1e+21 and 1e3 are strings to it, so they are written 1.0e-7, 1.0e-07,
//     1.0e+21 and 1.0e+3 (the same digits, so the same float in Python);
//   - a string escapes a character outside the Basic Multilingual Plane as a
//     UTF-16 surrogate pair in JSON, which PyYAML reads as two lone
//     surrogates that Python cannot encode: strings are written as UTF-8,
//     with only quotes, backslashes and characters PyYAML may not read
//     unescaped (controls, line and paragraph separators, non-characters)
//     escaped as \uXXXX;
//   - a repeated key silently keeps the last value: it is refused;
//   - a key longer than 1024 characters as written is not read as a key:
//     keys are at most maxKeyLen bytes as written.
//
// papermill writes each top-level name into the injected cell as code
// (`name = value`), so top-level names must be identifiers and not Python
// keywords: anything else would be a syntax error, or code.
//
// The result is still JSON. Integers, booleans and null are written as
// given. An empty object gives nil: papermill then injects nothing.
func paramsDocument(raw []byte) ([]byte, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	v := gjson.ParseBytes(raw)
	if !v.IsObject() {
		return nil, fmt.Errorf("parameters must be a JSON object")
	}
	var b strings.Builder
	if err := writeYAMLValue(&b, v, ""); err != nil {
		return nil, err
	}
	if b.String() == "{}" {
		return nil, nil
	}
	b.WriteByte('\n')
	return []byte(b.String()), nil
}

// writeYAMLValue writes v; where names the value in errors.
func writeYAMLValue(b *strings.Builder, v gjson.Result, where string) error {
	switch {
	case v.IsObject():
		b.WriteByte('{')
		seen := map[string]bool{}
		var err error
		first := true
		v.ForEach(func(k, x gjson.Result) bool {
			var key string
			if key, err = jsonString(k.Raw); err != nil {
				err = fmt.Errorf("parameter %s: a key %v", at(where), err)
				return false
			}
			var written strings.Builder
			writeYAMLString(&written, key)
			switch {
			case written.Len() > maxKeyLen:
				err = fmt.Errorf("parameter %s: a key of %d bytes as written, more than the %d PyYAML reads as a key", at(where), written.Len(), maxKeyLen)
				return false
			case where == "" && !isIdentifier(key):
				err = fmt.Errorf("parameter %q: a parameter name must be an identifier (letters, digits and _, not starting with a digit) and not a Python keyword: papermill writes it into the notebook as code", clip.String(key, 80))
				return false
			}
			if seen[key] {
				err = fmt.Errorf("parameter %s: key %q given twice", at(where), clip.String(key, 80))
				return false
			}
			seen[key] = true
			if !first {
				b.WriteString(", ")
			}
			first = false
			writeYAMLString(b, key)
			b.WriteString(": ")
			err = writeYAMLValue(b, x, where+"."+key)
			return err == nil
		})
		b.WriteByte('}')
		return err
	case v.IsArray():
		b.WriteByte('[')
		for i, x := range v.Array() {
			if i > 0 {
				b.WriteString(", ")
			}
			if err := writeYAMLValue(b, x, fmt.Sprintf("%s[%d]", where, i)); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case v.Type == gjson.String:
		s, err := jsonString(v.Raw)
		if err != nil {
			return fmt.Errorf("parameter %s: %v", at(where), err)
		}
		writeYAMLString(b, s)
	case v.Type == gjson.Number:
		b.WriteString(yamlNumber(v.Raw))
	default: // true, false, null: the same words in YAML 1.1
		b.WriteString(v.Raw)
	}
	return nil
}

// maxKeyLen caps a key as written (PyYAML reads a key of at most 1024
// characters, counting quotes and escapes).
const maxKeyLen = 1000

// identifier matches a name papermill can inject as `name = value` in
// Python and the other kernels' languages alike.
var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// pythonKeywords cannot be assigned to.
var pythonKeywords = map[string]bool{
	"False": true, "None": true, "True": true, "and": true, "as": true, "assert": true, "async": true,
	"await": true, "break": true, "class": true, "continue": true, "def": true, "del": true, "elif": true,
	"else": true, "except": true, "finally": true, "for": true, "from": true, "global": true, "if": true,
	"import": true, "in": true, "is": true, "lambda": true, "nonlocal": true, "not": true, "or": true,
	"pass": true, "raise": true, "return": true, "try": true, "while": true, "with": true, "yield": true,
}

// isIdentifier reports whether name may be a notebook parameter's name.
func isIdentifier(name string) bool {
	return len(name) <= 256 && identifier.MatchString(name) && !pythonKeywords[name]
}

// at names a parameter by its path, without the leading dot.
func at(where string) string {
	return strings.TrimPrefix(where, ".")
}

// yamlNumber writes a JSON number so that YAML 1.1 reads it as the same
// number: integers as they are; a float with a dot before its exponent and a
// sign in it.
func yamlNumber(raw string) string {
	i := strings.IndexAny(raw, "eE")
	if i < 0 {
		return raw // an integer, or a float with a dot already
	}
	mant, e, exp := raw[:i], raw[i:i+1], raw[i+1:]
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	if exp[0] != '+' && exp[0] != '-' {
		exp = "+" + exp
	}
	return mant + e + exp
}

// writeYAMLString writes s as a double-quoted scalar that YAML 1.1 (and
// JSON) read back as s.
func writeYAMLString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20, r >= 0x7f && r <= 0x9f, r == 0x2028, r == 0x2029, r == 0xfeff, r == 0xfffe, r == 0xffff:
			fmt.Fprintf(b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}

// jsonString decodes a JSON string token exactly: a UTF-16 surrogate pair
// becomes its character, and a lone surrogate is an error (no Unicode
// string holds one; Python would keep it and fail to write the notebook).
func jsonString(raw string) (string, error) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", fmt.Errorf("is not a string")
	}
	in := raw[1 : len(raw)-1]
	if !strings.Contains(in, `\`) {
		return in, nil
	}
	var b strings.Builder
	for i := 0; i < len(in); {
		c := in[i]
		if c != '\\' {
			r, n := utf8.DecodeRuneInString(in[i:])
			b.WriteRune(r)
			i += n
			continue
		}
		if i+1 >= len(in) {
			return "", fmt.Errorf("ends in a backslash")
		}
		switch e := in[i+1]; e {
		case '"', '\\', '/':
			b.WriteByte(e)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, ok := hex4(in, i+2)
			if !ok {
				return "", fmt.Errorf("has a bad \\u escape")
			}
			i += 6
			switch {
			case r >= 0xdc00 && r <= 0xdfff:
				return "", fmt.Errorf("holds a lone UTF-16 surrogate \\u%04x, not a character", r)
			case r >= 0xd800 && r <= 0xdbff:
				lo, ok := rune(0), false
				if i+1 < len(in) && in[i] == '\\' && in[i+1] == 'u' {
					lo, ok = hex4(in, i+2)
				}
				if !ok || lo < 0xdc00 || lo > 0xdfff {
					return "", fmt.Errorf("holds a lone UTF-16 surrogate \\u%04x, not a character", r)
				}
				r = 0x10000 + (r-0xd800)<<10 + (lo - 0xdc00)
				i += 6
			}
			b.WriteRune(r)
			continue
		default:
			return "", fmt.Errorf("has an unknown escape \\%c", e)
		}
		i += 2
	}
	return b.String(), nil
}

// hex4 reads four hex digits at s[i:].
func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	n, err := strconv.ParseUint(s[i:i+4], 16, 32)
	return rune(n), err == nil
}
