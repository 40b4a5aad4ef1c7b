package policies

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// regoBuiltins are the built-in functions wflow provides to Rego policies
// whose compiled Wasm calls out to the host for them (opa_builtinN), by
// name: each takes the arguments as JSON and returns the result as JSON.
// docs/policies.md lists them; a policy calling any other is refused,
// naming it.
var regoBuiltins = map[string]func(args []gjson.Result) ([]byte, error){
	"sprintf":               builtinSprintf,
	"time.now_ns":           func([]gjson.Result) ([]byte, error) { return json.Marshal(time.Now().UnixNano()) },
	"time.parse_rfc3339_ns": builtinParseRFC3339,
	"time.parse_duration_ns": func(args []gjson.Result) ([]byte, error) {
		if len(args) != 1 || args[0].Type != gjson.String {
			return nil, errors.New("wants a string")
		}
		d, err := time.ParseDuration(args[0].String())
		if err != nil {
			return nil, err
		}
		return json.Marshal(d.Nanoseconds())
	},
	"units.parse_bytes": builtinParseBytes,
}

// builtinSprintf is Rego's sprintf(format, values): Go's formatting of the
// values, numbers as integers where they are whole. Widths and precisions
// are capped (sprintfCheck), so that a format cannot make wflow allocate
// what the policy's memory cap would not let the policy hold.
func builtinSprintf(args []gjson.Result) ([]byte, error) {
	if len(args) != 2 || args[0].Type != gjson.String || !args[1].IsArray() {
		return nil, errors.New("wants a format string and an array of values")
	}
	var values []any
	longest := 0
	for _, v := range args[1].Array() {
		longest = max(longest, len(v.Raw))
		switch v.Type {
		case gjson.String:
			values = append(values, v.String())
		case gjson.Number:
			if f := v.Float(); f == math.Trunc(f) && math.Abs(f) < 1<<53 {
				values = append(values, int64(f))
			} else {
				values = append(values, f)
			}
		case gjson.True, gjson.False:
			values = append(values, v.Bool())
		case gjson.Null:
			values = append(values, "null")
		default:
			values = append(values, v.Raw)
		}
	}
	if err := sprintfCheck(args[0].String(), longest); err != nil {
		return nil, err
	}
	return json.Marshal(fmt.Sprintf(args[0].String(), values...))
}

// Caps of sprintf: a width or precision, and what a format may produce.
const (
	maxSprintfWidth  = 4096
	maxSprintfOutput = maxRegoResult
)

// sprintfCheck refuses a format whose widths or precisions come from the
// arguments (*) or are over maxSprintfWidth, or which could produce more
// than maxSprintfOutput bytes: each verb at most its width, its precision
// or the longest value (a verb may name any value, %[n]v), whichever is
// larger.
func sprintfCheck(format string, longest int) error {
	size := len(format)
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		verb := max(longest, 24) // a number's longest form
	spec:
		for i++; i < len(format); i++ {
			c := format[i]
			switch {
			case c == '*':
				return errors.New("widths and precisions from the values (*) are not supported")
			case c >= '0' && c <= '9':
				n := 0
				for ; i < len(format) && format[i] >= '0' && format[i] <= '9'; i++ {
					if n = n*10 + int(format[i]-'0'); n > maxSprintfWidth {
						return fmt.Errorf("a width or precision over %d", maxSprintfWidth)
					}
				}
				i--
				verb = max(verb, n)
				continue
			case strings.IndexByte("+-# .[]", c) >= 0:
				continue
			}
			break spec // the verb itself
		}
		if size += verb; size > maxSprintfOutput {
			return fmt.Errorf("the format could produce over %d KiB", maxSprintfOutput>>10)
		}
	}
	return nil
}

// builtinParseRFC3339 is time.parse_rfc3339_ns(value): nanoseconds since
// the epoch.
func builtinParseRFC3339(args []gjson.Result) ([]byte, error) {
	if len(args) != 1 || args[0].Type != gjson.String {
		return nil, errors.New("wants a string")
	}
	t, err := time.Parse(time.RFC3339Nano, args[0].String())
	if err != nil {
		return nil, err
	}
	if t.Year() < 1678 || t.Year() > 2261 { // nanoseconds since 1970 in an int64
		return nil, fmt.Errorf("%s is out of the range of nanoseconds since 1970 in 64 bits", args[0].String())
	}
	return json.Marshal(t.UnixNano())
}

// byteUnits are the units of units.parse_bytes, lower-cased: decimal and
// binary, as OPA reads them.
var byteUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12, "p": 1e15, "pb": 1e15, "e": 1e18, "eb": 1e18,
	"ki": 1 << 10, "kib": 1 << 10, "mi": 1 << 20, "mib": 1 << 20, "gi": 1 << 30, "gib": 1 << 30, "ti": 1 << 40, "tib": 1 << 40,
	"pi": 1 << 50, "pib": 1 << 50, "ei": 1 << 60, "eib": 1 << 60,
}

// builtinParseBytes is units.parse_bytes(value): "10MiB", "1.5gb", "512"
// as a number of bytes.
func builtinParseBytes(args []gjson.Result) ([]byte, error) {
	if len(args) != 1 || args[0].Type != gjson.String {
		return nil, errors.New("wants a string")
	}
	s := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(args[0].String()), `"`, ""))
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(s)
	}
	n, err := strconv.ParseFloat(s[:i], 64)
	unit, ok := byteUnits[strings.TrimSpace(s[i:])]
	if err != nil || !ok {
		return nil, fmt.Errorf("%q is not a size", args[0].String())
	}
	bytes := n * unit
	if math.IsInf(bytes, 0) || math.IsNaN(bytes) {
		return nil, fmt.Errorf("%q is not a size", args[0].String())
	}
	// As a JSON number, whole: past 2^63 too (OPA's numbers are not int64).
	return []byte(strconv.FormatFloat(math.Round(bytes), 'f', 0, 64)), nil
}
