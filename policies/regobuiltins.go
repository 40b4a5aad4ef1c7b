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
	"units.parse_bytes":     builtinParseBytes,
}

// builtinSprintf is Rego's sprintf(format, values): Go's formatting of the
// values, numbers as integers where they are whole.
func builtinSprintf(args []gjson.Result) ([]byte, error) {
	if len(args) != 2 || args[0].Type != gjson.String || !args[1].IsArray() {
		return nil, errors.New("wants a format string and an array of values")
	}
	var values []any
	for _, v := range args[1].Array() {
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
	return json.Marshal(fmt.Sprintf(args[0].String(), values...))
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
	return json.Marshal(int64(n * unit))
}
