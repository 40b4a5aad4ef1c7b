// Package stepcache is wflow's step cache: a step's key (everything that
// can change what its containers do, the content of its declared inputs
// included), a content-addressed store of the results and outputs of steps
// that succeeded, shared by every run of the user, and an explanation of
// each miss. docs/durability.md says what is keyed and why.
package stepcache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

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
	Env      []string   `json:"env"`      // KEY=VALUE, sorted, the run's --env under the step's
	WorkDir  string     `json:"workdir"`  // the run directory's mount point, also the working directory
	User     string     `json:"user"`     // uid:gid or name the commands run as
	Network  string     `json:"network"`
	Memory   int64      `json:"memory"` // bytes; 0 for none
	CPUs     float64    `json:"cpus"`
	Pids     int64      `json:"pids"`
	ReadOnly bool       `json:"read_only"`
	Inputs   []Input    `json:"inputs"` // in the order the step declares them
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

// Walk caps for inputs and outputs: steps can make folders nest thousands
// deep or hold millions of files.
var walkLimits = rundir.WalkLimits{Depth: 256, Entries: 1_000_000}

// Key is the key of the parts: the SHA-256 of their JSON, which
// encoding/json writes the same way every time for the same parts.
func (p Parts) Key() string {
	b, _ := json.Marshal(p) // only strings, numbers and lists: cannot fail
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ReadInputs hashes the declared inputs of a step in the run directory
// root. An input that is not there is recorded as missing (the step may
// fail on it, or make it); a FIFO, socket or device in an input is an
// error: its content is no content a key can hold.
func ReadInputs(root *os.Root, paths []string) ([]Input, error) {
	inputs := make([]Input, 0, len(paths))
	for _, p := range paths {
		in := Input{Path: p}
		err := walkFiles(root, p, func(f File, _ *os.File) error {
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
// File; a regular file is hashed first and comes with its open handle,
// rewound, so a caller can copy it.
func walkFiles(root *os.Root, rel string, fn func(File, *os.File) error) error {
	return rundir.Walk(root, rel, walkLimits, func(e rundir.Entry, f *os.File) error {
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
			h := sha256.New()
			n, err := io.Copy(h, f)
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

// PartsOf gathers the parts of a step about to run: st as the policies
// left it, the image's ID, the env and limits the runner merged, and the
// content of its inputs in the run directory root.
func PartsOf(root *os.Root, st step.Step, imageID string, env []string, workDir string, limits step.Limits) (Parts, error) {
	p := Parts{Version: KeyVersion, Image: imageID, Env: env, WorkDir: workDir, User: limits.User,
		Network: limits.Network, Memory: limits.Memory, CPUs: limits.CPUs, Pids: limits.Pids, ReadOnly: limits.ReadOnly}
	if p.Env == nil {
		p.Env = []string{}
	}
	for _, c := range st.Commands {
		p.Commands = append(p.Commands, c.Args())
	}
	var err error
	p.Inputs, err = ReadInputs(root, st.Inputs)
	return p, err
}
