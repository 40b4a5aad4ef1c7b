package stepcache

import (
	"fmt"
	"slices"
	"strings"
)

// Diff says which parts differ between an earlier key's parts and now, most
// telling first: the inputs (naming the files), the image, the commands, the
// env (names only: values may be secret), then the limits. It returns ""
// when the parts are the same.
func Diff(before, now Parts) string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if before.Version != now.Version {
		add("the key's format (wflow %d → %d)", before.Version, now.Version)
	}
	out = append(out, diffInputs(before.Inputs, now.Inputs)...)
	if before.Image != now.Image {
		add("the image (%s → %s)", short(before.Image), short(now.Image))
	}
	switch {
	case len(before.Commands) != len(now.Commands):
		add("the commands (%d → %d commands)", len(before.Commands), len(now.Commands))
	default:
		for i := range now.Commands {
			if !slices.Equal(before.Commands[i], now.Commands[i]) {
				add("command %d", i+1) // not its text: a --var may be a secret, and the module reads this
			}
		}
	}
	if names := diffEnv(before.Env, now.Env); names != "" {
		add("env %s", names)
	}
	if before.WorkDir != now.WorkDir {
		add("the working directory (%s → %s)", before.WorkDir, now.WorkDir)
	}
	if before.User != now.User {
		add("the user (%q → %q)", before.User, now.User)
	}
	if before.Network != now.Network {
		add("the network (%s → %s)", before.Network, now.Network)
	}
	if before.Memory != now.Memory {
		add("the memory limit (%d → %d bytes)", before.Memory, now.Memory)
	}
	if before.CPUs != now.CPUs {
		add("cpus (%g → %g)", before.CPUs, now.CPUs)
	}
	if before.Pids != now.Pids {
		add("pids (%d → %d)", before.Pids, now.Pids)
	}
	if !slices.Equal(before.Outputs, now.Outputs) {
		add("the declared outputs")
	}
	if before.ReadOnly != now.ReadOnly {
		add("read_only (%t → %t)", before.ReadOnly, now.ReadOnly)
	}
	return strings.Join(out, "; ")
}

// diffInputs names the inputs and the files in them that changed.
func diffInputs(before, now []Input) []string {
	var out []string
	old := map[string]Input{}
	for _, in := range before {
		old[in.Path] = in
	}
	for _, in := range now {
		prev, ok := old[in.Path]
		delete(old, in.Path)
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("input %s (new input)", in.Path))
		case prev.Missing && !in.Missing:
			out = append(out, fmt.Sprintf("input %s (now there)", in.Path))
		case !prev.Missing && in.Missing:
			out = append(out, fmt.Sprintf("input %s (gone)", in.Path))
		default:
			if files := diffFiles(prev.Files, in.Files); files != "" {
				out = append(out, "input "+files)
			}
		}
	}
	for _, in := range before {
		if _, ok := old[in.Path]; ok {
			out = append(out, fmt.Sprintf("input %s (no longer declared)", in.Path))
		}
	}
	return out
}

// diffFiles names the files of an input that changed, were added or were
// removed: the first three, and how many more.
func diffFiles(before, now []File) string {
	old := map[string]File{}
	for _, f := range before {
		old[f.Path] = f
	}
	var changed []string
	for _, f := range now {
		prev, ok := old[f.Path]
		delete(old, f.Path)
		switch {
		case !ok:
			changed = append(changed, f.Path+" (added)")
		case prev != f:
			changed = append(changed, f.Path+" ("+what(prev, f)+")")
		}
	}
	for _, f := range before {
		if _, ok := old[f.Path]; ok {
			changed = append(changed, f.Path+" (removed)")
		}
	}
	if len(changed) > 3 {
		return fmt.Sprintf("%s and %d more", strings.Join(changed[:3], ", "), len(changed)-3)
	}
	return strings.Join(changed, ", ")
}

// what says how a file changed.
func what(before, now File) string {
	switch {
	case before.Type != now.Type:
		return "was a " + kindName(before.Type) + ", now a " + kindName(now.Type)
	case before.Link != now.Link:
		return "link target"
	case before.Digest != now.Digest:
		return "content"
	default:
		return "executable bit"
	}
}

func kindName(t string) string {
	if t == "dir" {
		return "folder"
	}
	return t
}

// diffEnv names the variables added, removed or changed.
func diffEnv(before, now []string) string {
	split := func(env []string) map[string]string {
		m := map[string]string{}
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			m[k] = v
		}
		return m
	}
	b, n := split(before), split(now)
	var out []string
	for _, kv := range now {
		k, _, _ := strings.Cut(kv, "=")
		switch v, ok := b[k]; {
		case !ok:
			out = append(out, k+" (added)")
		case v != n[k]:
			out = append(out, k+" (changed)")
		}
	}
	for _, kv := range before {
		if k, _, _ := strings.Cut(kv, "="); !hasKey(n, k) {
			out = append(out, k+" (removed)")
		}
	}
	return strings.Join(out, ", ")
}

func hasKey(m map[string]string, k string) bool { _, ok := m[k]; return ok }

// short is an image ID cut for a message: sha256: and 12 hex digits.
func short(id string) string {
	if len(id) > len("sha256:")+12 {
		return id[:len("sha256:")+12]
	}
	return id
}
