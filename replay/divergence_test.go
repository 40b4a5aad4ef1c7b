package replay

import (
	"strings"
	"testing"
	"time"
)

func TestDiffJSONNamesTheFieldsThatDiffer(t *testing.T) {
	d := diffJSON([]byte(`{"name":"s","commands":["a","b"],"env":{"K":"1"}}`), []byte(`{"name":"s","commands":["a","c"],"env":{}}`))
	got := []string{}
	for _, f := range d {
		got = append(got, f.Path+"="+f.Recorded+">"+f.Now)
	}
	if strings.Join(got, " ") != `commands.1="b">"c" env=>{} env.K="1">` {
		t.Errorf("diff %v", got)
	}
}

// TestDiffJSONIsBounded: a spec nested deep or with many leaves (the
// module's own, or a hostile journal's) gets no field diff, at once.
func TestDiffJSONIsBounded(t *testing.T) {
	deep := `{"commands":` + strings.Repeat("[", 60000) + strings.Repeat("]", 60000) + `}`
	wide := `{"env":{` + strings.Repeat(`"k":1,`, 10000) + `"z":1}}`
	start := time.Now()
	for _, doc := range []string{deep, wide} {
		if d := diffJSON([]byte(`{"commands":[]}`), []byte(doc)); d != nil {
			t.Errorf("a diff of %d fields for a spec over the caps", len(d))
		}
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("took %s", took)
	}
}
