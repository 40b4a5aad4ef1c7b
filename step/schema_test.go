package step_test

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/wflow/wflow/abi"
	"github.com/wflow/wflow/sdk/go/wflow"
	"github.com/wflow/wflow/step"
)

// fill sets every field of v, recursively, to a value that is not zero, so
// that no omitempty field is left out of its JSON.
func fill(t *testing.T, v reflect.Value, n *int) {
	*n++
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem(), n)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(time.Date(2026, 11, 27, 10, 0, *n, 0, time.UTC)))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(t, v.Field(i), n)
			}
		}
	case reflect.Slice:
		if v.Type() == reflect.TypeOf(json.RawMessage{}) {
			v.SetBytes([]byte(`{"k":1}`))
			return
		}
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(t, v.Index(0), n)
	case reflect.String:
		v.SetString("s" + strings.Repeat("x", *n%5))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(int64(*n))
	case reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(*n))
	case reflect.Float64:
		v.SetFloat(float64(*n) + 0.5)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		key, val := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(t, key, n)
		fill(t, val, n)
		m.SetMapIndex(key, val)
		v.Set(m)
	default:
		t.Fatalf("fill: no value for a %s", v.Type())
	}
}

// TestSDKReadsEveryResultField: the host's ExecResult, every field set,
// decodes into the Go SDK's ExecResult with no field unknown to it, and
// the SDK's encodes back to the same JSON: the two copies of the schema
// cannot drift apart.
func TestSDKReadsEveryResultField(t *testing.T) {
	var host step.ExecResult
	n := 0
	fill(t, reflect.ValueOf(&host).Elem(), &n)
	hostJSON, err := step.MarshalJSON(host, false)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(hostJSON))
	dec.DisallowUnknownFields()
	var sdk wflow.ExecResult
	if err := dec.Decode(&sdk); err != nil {
		t.Fatalf("the SDK cannot read a field the host writes: %v\n%s", err, hostJSON)
	}
	sdkJSON, err := json.Marshal(sdk)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	json.Unmarshal(hostJSON, &a)
	json.Unmarshal(sdkJSON, &b)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("the SDK's ExecResult is not the host's:\nhost %s\nsdk  %s", hostJSON, sdkJSON)
	}
}

// TestHostReadsEverySDKResultField: the other way round, every field of
// the SDK's ExecResult, set, is one the host's Result knows.
func TestHostReadsEverySDKResultField(t *testing.T) {
	var sdk wflow.ExecResult
	n := 0
	fill(t, reflect.ValueOf(&sdk).Elem(), &n)
	b, err := json.Marshal(sdk)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var host step.ExecResult
	if err := dec.Decode(&host); err != nil {
		t.Fatalf("the SDK's ExecResult has a field the host never writes: %v\n%s", err, b)
	}
}

// TestErrorKindsAreDocumented: every error kind of the ABI is in the
// ExecResult table of docs/abi.md.
func TestErrorKindsAreDocumented(t *testing.T) {
	b, err := os.ReadFile("../docs/abi.md")
	if err != nil {
		t.Fatal(err)
	}
	var row string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "| `error`, `error_kind` |") {
			row = line
		}
	}
	if row == "" {
		t.Fatal("docs/abi.md has no error_kind row")
	}
	for _, kind := range abi.ErrorKinds {
		// Named as a kind: "`timeout` (...", "`build`, ..." or "`kernel` and ...", not as a field.
		if !regexp.MustCompile("`" + kind + "`( \\(|,| and)").MatchString(row) {
			t.Errorf("error kind %q is not in docs/abi.md's error_kind row", kind)
		}
	}
}

// TestSDKWritesEveryStepField: the Go SDK's Step, every field set, writes
// every field of the step spec, and only those: a field added to the
// schema but not to the SDK (or the reverse) fails here.
func TestSDKWritesEveryStepField(t *testing.T) {
	var s wflow.Step
	n := 0
	fill(t, reflect.ValueOf(&s).Elem(), &n)
	s.Commands = []wflow.Command{wflow.Shell("true")}
	s.Retry.Initial = time.Second
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var spec map[string]json.RawMessage
	json.Unmarshal(b, &spec)
	var keys []string
	for k := range spec {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := append([]string(nil), step.SpecFields...)
	sort.Strings(want)
	if strings.Join(keys, ",") != strings.Join(want, ",") {
		t.Errorf("the SDK writes %v, the schema has %v", keys, want)
	}
}
