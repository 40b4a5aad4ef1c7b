// Package stepcache is wflow's step cache: a step's key (everything that
// can change what its containers do, the content of its declared inputs
// included), a content-addressed store of the results and outputs of steps
// that succeeded, shared by every run of the user, and an explanation of
// each miss. docs/durability.md says what is keyed and why.
package stepcache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/wflow/wflow/rundir"
	"github.com/wflow/wflow/step"
)

// KeyVersion changes whenever what goes into a key changes, so that no key
// of an older wflow can match a step it would not have matched.
const KeyVersion = 1

// Parts are what a step's key is made of: each is something that can change
// what the step's containers do or read. The step's name, handle, run and
// run directory's host path are not in it (the same step in any run
// directory has the same key), nor its timeout and retry policy (they
// decide whether wflow waits and tries again, not what a successful run
// produced).
type Parts struct {
	Version  int        `json:"v"`
	Image    string     `json:"image"`    // the image's ID (sha256:...), not its tag
	Commands [][]string `json:"commands"` // each command's argv after variable substitution
	Env      []string   `json:"env"`      // KEY=sha256:<hash of VALUE>, sorted, the run's --env under the step's (values are not kept: they may be secrets)
	WorkDir  string     `json:"workdir"`  // the run directory's mount point, also the working directory
	User     string     `json:"user"`     // uid:gid or name the commands run as
	Network  string     `json:"network"`
	Memory   int64      `json:"memory"` // bytes; 0 for none
	CPUs     float64    `json:"cpus"`
	Pids     int64      `json:"pids"`
	ReadOnly bool       `json:"read_only"`
	Inputs   []Input    `json:"inputs"`  // in the order the step declares them
	Outputs  []string   `json:"outputs"` // the declared outputs: what a hit restores
}

// Input is one declared input and what it held when the key was made.
type Input struct {
	Path    string `json:"path"`              // relative to the run directory
	Missing bool   `json:"missing,omitempty"` // nothing was there
	Files   []File `json:"files,omitempty"`   // the input itself first, then what is beneath it, in name order
}

// File is one entry of an input or an output: a file, a folder or a link.
type File struct {
	Path   string `json:"path"` // relative to the run directory
	Type   string `json:"type"` // "file", "dir" or "link"
	Exec   bool   `json:"exec,omitempty"`
	Size   int64  `json:"size,omitempty"`
	Digest string `json:"digest,omitempty"` // a file's content (sha256:...)
	Link   string `json:"link,omitempty"`   // a link's target, never followed
}

// Caps on what one step's inputs, and one step's outputs, may hold in all:
// steps can make folders nest thousands deep, hold millions of files, or
// make a sparse file of a terabyte that takes no disk. A step over a cap
// gets no key (its inputs) or is not stored (its outputs).
const (
	maxDepth   = 256
	MaxEntries = 1_000_000 // files, folders and links
	MaxBytes   = 64 << 30  // bytes of file content
)

// budget is what is left of the caps for one step's inputs or outputs.
type budget struct {
	entries int
	bytes   int64
}

func newBudget() *budget { return &budget{entries: MaxEntries, bytes: MaxBytes} }

// Key is the key of the parts: the SHA-256 of their JSON, which
// encoding/json writes the same way every time for the same parts.
func (p Parts) Key() string {
	b, _ := json.Marshal(p) // only strings, numbers and lists: cannot fail
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ReadInputs hashes the declared inputs of a step in the run directory
// root, within one budget for them all (MaxEntries, MaxBytes), and stops
// when ctx ends. An input that is not there is recorded as missing (the
// step may fail on it, or make it); a FIFO, socket or device in an input is
// an error: its content is no content a key can hold.
func ReadInputs(ctx context.Context, root *os.Root, paths []string) ([]Input, error) {
	inputs := make([]Input, 0, len(paths))
	left := newBudget()
	for _, p := range paths {
		in := Input{Path: p}
		err := walkFiles(ctx, root, p, left, func(f File, _ *os.File) error {
			in.Files = append(in.Files, f)
			return nil
		})
		switch {
		case errors.Is(err, fs.ErrNotExist) && len(in.Files) == 0:
			in.Missing = true
		case err != nil:
			return nil, fmt.Errorf("input %s: %w", p, err)
		}
		inputs = append(inputs, in)
	}
	return inputs, nil
}

// walkFiles walks rel with rundir.Walk and calls fn with each entry as a
// File, counting against left; a regular file is hashed first and comes
// with its open handle, rewound, so a caller can copy it.
func walkFiles(ctx context.Context, root *os.Root, rel string, left *budget, fn func(File, *os.File) error) error {
	lim := rundir.WalkLimits{Depth: maxDepth, Entries: left.entries}
	return rundir.Walk(root, rel, lim, func(e rundir.Entry, f *os.File) error {
		if left.entries--; left.entries < 0 {
			return fmt.Errorf("more than %d files, folders and links", MaxEntries)
		}
		file := File{Path: e.Path}
		switch {
		case e.Type == fs.ModeDir:
			file.Type = "dir"
		case e.Type == fs.ModeSymlink:
			file.Type, file.Link = "link", e.Link
		case f == nil:
			return fmt.Errorf("%s is not a file, a folder or a link (a FIFO, socket or device)", e.Path)
		default:
			info, err := f.Stat()
			if err != nil {
				return err
			}
			if left.bytes -= info.Size(); left.bytes < 0 {
				return fmt.Errorf("more than %d GiB of files", MaxBytes>>30)
			}
			h := sha256.New()
			n, err := io.Copy(h, ctxReader{ctx, f})
			if err != nil {
				return err
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return err
			}
			file.Type, file.Size, file.Exec = "file", n, info.Mode().Perm()&0o111 != 0
			file.Digest = "sha256:" + hex.EncodeToString(h.Sum(nil))
		}
		return fn(file, f)
	})
}

// ctxReader reads r until ctx ends: hashing or copying a large file stops
// when the run is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// PartsOf gathers the parts of a step about to run: st as the policies
// left it, the image's ID, the env and limits the runner merged, and the
// content of its inputs in the run directory root.
func PartsOf(ctx context.Context, root *os.Root, st step.Step, imageID string, env []string, workDir string, limits step.Limits) (Parts, error) {
	p := Parts{Version: KeyVersion, Image: imageID, Env: make([]string, 0, len(env)), WorkDir: workDir, User: limits.User,
		Network: limits.Network, Memory: limits.Memory, CPUs: limits.CPUs, Pids: limits.Pids, ReadOnly: limits.ReadOnly,
		Outputs: st.Outputs}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		sum := sha256.Sum256([]byte(v))
		p.Env = append(p.Env, k+"=sha256:"+hex.EncodeToString(sum[:]))
	}
	if p.Outputs == nil {
		p.Outputs = []string{}
	}
	for _, c := range st.Commands {
		p.Commands = append(p.Commands, c.Args())
	}
	var err error
	p.Inputs, err = ReadInputs(ctx, root, st.Inputs)
	return p, err
}
