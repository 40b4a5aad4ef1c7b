package step

import (
	"bytes"
	"encoding/json"
)

// MarshalJSON encodes v as compact JSON without HTML escaping, so that
// commands like `a > b && c` read as written in results and reports.
func MarshalJSON(v any, indent bool) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if indent {
		enc.SetIndent("", "  ")
	}
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
