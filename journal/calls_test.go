package journal

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var testHeader = CallsHeader{RunID: "r1", ABI: "wflow_v1", ModuleSHA256: strings.Repeat("ab", 32), Params: Bytes("{}")}

// TestCallsRoundTrip: what a run writes reads back, bytes that are not
// UTF-8 included; past the caps on clock readings the journal says so
// once instead of growing.
func TestCallsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	c, err := OpenCalls(dir, testHeader)
	if err != nil {
		t.Fatal(err)
	}
	one := uint32(1)
	c.Call(Call{Fn: "step_submit", Req: Request{Spec: Bytes("{\"name\":\"a\"}").Ptr()}, Ans: &Answer{Handle: &one}})
	c.Mono(5)
	c.Random([]byte{0xff, 0x00, 0xfe})
	c.Call(Call{Fn: "log_write", Req: Request{Level: &one, Msg: Bytes("\xff not utf-8").Ptr()}})
	for i := 0; i <= MaxClockReadings; i++ {
		c.Wall(int64(i))
	}
	c.End(Ending{Status: "succeeded"})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	rec, err := ReadCalls(dir, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Calls) != 2 || rec.Calls[1].N != 2 || string(*rec.Calls[1].Req.Msg) != "\xff not utf-8" || string(rec.Random) != "\xff\x00\xfe" ||
		len(rec.Monos) != 1 || len(rec.Walls) != MaxClockReadings-1 || !rec.Overflow || rec.End == nil || rec.Torn {
		t.Errorf("read back: %d calls, %d walls, %d monos, overflow %v, end %v, torn %v", len(rec.Calls), len(rec.Walls), len(rec.Monos), rec.Overflow, rec.End, rec.Torn)
	}
	info, _ := os.Stat(filepath.Join(dir, CallsPath("r1")))
	if info.Size() > 40<<20 {
		t.Errorf("the journal is %d bytes", info.Size())
	}
}

// TestParseCallsRefusesWhatNoRunWrites: a header that is not one, a call
// to no function of the ABI, a bad line before the last; a torn last line
// is dropped.
func TestParseCallsRefusesWhatNoRunWrites(t *testing.T) {
	header := `{"format":"wflow-calls","version":1,"run_id":"r1","abi":"wflow_v1","module_sha256":"` + strings.Repeat("ab", 32) + `","args":[],"params":"{}"}` + "\n"
	call := `{"call":{"n":1,"fn":"params_get","req":{},"errno":0}}` + "\n"
	for _, c := range []struct {
		name, journal, err string
	}{
		{"no header", call, "no header"},
		{"a hash that is none", strings.Replace(header, "abab", "zz", 1), "no SHA-256"},
		{"another version", strings.Replace(header, `"version":1`, `"version":2`, 1), "version 2"},
		{"no function", header + strings.Replace(call, "params_get", `\u001b]0;pwned\u0007`, 1), "no function of wflow_v1"},
		{"a bad line before the last", header + "{nope\n" + call, "line 2 is not a record"},
		{"calls out of order", header + strings.Replace(call, `"n":1`, `"n":2`, 1), "is call 2, want 1"},
	} {
		if _, err := ParseCalls([]byte(c.journal)); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: %v, want %q", c.name, err, c.err)
		}
	}
	rec, err := ParseCalls([]byte(header + call + call[:20]))
	if err != nil || !rec.Torn || len(rec.Calls) != 1 {
		t.Errorf("a torn last line: %v, torn %v, %d calls", err, rec != nil && rec.Torn, len(rec.Calls))
	}
	if _, err := ParseCalls([]byte(header + strings.Repeat("\n", 1000))); err == nil {
		t.Error("empty lines are records")
	}
}
