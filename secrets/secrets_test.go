package secrets

import (
	"bytes"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func mustParse(t testing.TB, flags ...string) *Set {
	t.Helper()
	s, err := Parse(flags, env(map[string]string{"TOKEN": "s3cr3t-token", "PREFIX": "s3cr3t", "KEY": "line-one\nline-two\nab"}), ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestParse(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	os.WriteFile(file, []byte("from-a-file\r\n"), 0o600)
	s := mustParse(t, "token=env:TOKEN", "pw=file:"+file)
	if v, _ := s.Value("pw"); v != "from-a-file" {
		t.Errorf("file value %q: one trailing newline is dropped", v)
	}
	if v, _ := s.Value("token"); v != "s3cr3t-token" {
		t.Errorf("env value %q", v)
	}
	if _, err := s.Value("other"); !errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), "pw, token") {
		t.Errorf("unknown secret: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "short"), []byte("abc\n"), 0o600)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "big"), bytes.Repeat([]byte("x"), MaxValueLen+10), 0o600)
	for _, c := range []struct{ flag, msg string }{
		{"token", "want NAME=env:VAR"},
		{"1bad=env:TOKEN", "a secret's name"},
		{"t=env:", "env:VAR or file:PATH"},
		{"t=vault:x", "env:VAR or file:PATH"},
		{"t=env:MISSING", "MISSING is not set"},
		{"t=file:" + filepath.Join(dir, "none"), "no such file"},
		{"t=file:" + dir, "not a regular file"},
		{"t=file:" + fifo, "not a regular file"}, // and no wait for a writer
		{"t=file:" + filepath.Join(dir, "short"), "at least 4"},
		{"t=file:" + filepath.Join(dir, "big"), "at most 65536"},
	} {
		if _, err := Parse([]string{c.flag}, env(map[string]string{"TOKEN": "s3cr3t-token"}), ReadFile); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want %q", c.flag, err, c.msg)
		}
	}
	if _, err := Parse([]string{"a=env:TOKEN", "a=env:TOKEN"}, env(map[string]string{"TOKEN": "s3cr3t-token"}), ReadFile); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("a name twice: %v", err)
	}
}

func TestMask(t *testing.T) {
	s := mustParse(t, "token=env:TOKEN", "prefix=env:PREFIX", "key=env:KEY")
	for in, want := range map[string]string{
		"no secret here":               "no secret here",
		"s3cr3t-token":                 "***",
		"x s3cr3t-token y s3cr3t z":    "x *** y *** z", // the longer secret wins where both start
		"line-two alone":               "*** alone",     // a line of a multi-line secret
		"ab is too short to be masked": "ab is too short to be masked",
		"s3cr3s3cr3t":                  "s3cr3***",
	} {
		if got := s.String(in); got != want {
			t.Errorf("mask %q = %q, want %q", in, got, want)
		}
	}
	var none *Set
	if none.String("s3cr3t") != "s3cr3t" || !none.Empty() || none.Has("x") {
		t.Error("a nil Set masks nothing and has nothing")
	}
}

// TestWriterMasksAcrossWrites: however a stream is cut into writes, what
// comes out is the whole stream masked.
func TestWriterMasksAcrossWrites(t *testing.T) {
	s := mustParse(t, "token=env:TOKEN", "prefix=env:PREFIX", "key=env:KEY")
	stream := []byte(strings.Repeat("log line s3cr3t-token and s3cr3t\nline-one\nline-two\nab\n...s3cr3", 50))
	want := s.Bytes(stream)
	if bytes.Contains(want, []byte("s3cr3t")) || bytes.Contains(want, []byte("line-one")) {
		t.Fatalf("masked stream still holds a secret: %q", want[:200])
	}
	rng := rand.New(rand.NewSource(1))
	for round := 0; round < 200; round++ {
		var out bytes.Buffer
		w := s.Writer(&out)
		for rest := stream; len(rest) > 0; {
			n := min(len(rest), 1+rng.Intn(20))
			if k, err := w.Write(rest[:n]); k != n || err != nil {
				t.Fatal(k, err)
			}
			rest = rest[n:]
		}
		if err := Flush(w); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), want) {
			t.Fatalf("round %d: the masked stream differs from the whole stream masked", round)
		}
	}
}

func BenchmarkWriter(b *testing.B) {
	s := mustParse(b, "token=env:TOKEN", "prefix=env:PREFIX", "key=env:KEY")
	chunk := bytes.Repeat([]byte("an ordinary line of build output, 64 bytes long, nothing to see\n"), 512)
	var sink bytes.Buffer
	w := s.Writer(&sink)
	b.SetBytes(int64(len(chunk)))
	for b.Loop() {
		sink.Reset()
		w.Write(chunk)
	}
}

// TestMaskOverlapsPrefixesAndJSON: secrets that overlap are masked
// together; a secret that starts another is not masked before it is known
// which one it is; a value is masked as JSON writes it too.
func TestMaskOverlapsPrefixesAndJSON(t *testing.T) {
	s, err := Parse([]string{"a=env:A", "b=env:B", "c=env:C", "d=env:D"}, env(map[string]string{
		"A": "abcdWXYZ", "B": "WXYZ1234", "C": "prefix", "D": `p&ss"w<rd>\x`,
	}), ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		"abcdWXYZ1234 end":                       "*** end",
		"x WXYZ1234abcdWXYZ y":                   "x ****** y", // adjacent: two secrets, no overlap
		`{"pw":"p\u0026ss\"w\u003crd\u003e\\x"}`: `{"pw":"***"}`,
		`{"pw":"p&ss\"w<rd>\\x"}`:                `{"pw":"***"}`,
	} {
		if got := s.String(in); got != want {
			t.Errorf("mask %q = %q, want %q", in, got, want)
		}
	}
	// Cut anywhere, the stream comes out the same.
	stream := []byte("..abcdWXYZ1234..WXYZ12..prefix..abcdWX")
	want := s.Bytes(stream)
	for cut := 0; cut <= len(stream); cut++ {
		var out bytes.Buffer
		w := s.Writer(&out)
		w.Write(stream[:cut])
		w.Write(stream[cut:])
		Flush(w)
		if !bytes.Equal(out.Bytes(), want) {
			t.Errorf("cut at %d: %q, want %q", cut, out.Bytes(), want)
		}
	}
}

// TestWriterHoldsBackOnlyWhatCouldBeASecret: with a long secret, ordinary
// output still goes out at once.
func TestWriterHoldsBackOnlyWhatCouldBeASecret(t *testing.T) {
	key := "-----BEGIN" + strings.Repeat("K", 4000)
	s, err := Parse([]string{"key=env:KEY"}, env(map[string]string{"KEY": key}), ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	w := s.Writer(&out)
	w.Write([]byte("progress 10%\nprogress 20%\n"))
	if out.String() != "progress 10%\nprogress 20%\n" {
		t.Errorf("written %q", out.String())
	}
	w.Write([]byte("then -----BEG"))
	if out.String() != "progress 10%\nprogress 20%\nthen " {
		t.Errorf("written %q: only the start of the secret is held back", out.String())
	}
	w.Write([]byte("INNOT\n"))
	Flush(w)
	if !strings.HasSuffix(out.String(), "then -----BEGINNOT\n") {
		t.Errorf("written %q", out.String())
	}
}
