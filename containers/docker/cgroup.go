package docker

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/wflow/wflow/step"
)

// cgroupRoot is where this host mounts its cgroup file systems.
const cgroupRoot = "/sys/fs/cgroup"

// cgroupFiles are a local container's accounting files, open: its peak
// (cgroup v1's memory.max_usage_in_bytes, v2's memory.peak) or current
// memory (v2 before Linux 5.19), and its CPU time (v1's cpuacct.usage in
// ns, v2's cpu.stat usage_usec). They are read again and again while the
// container runs; once it has ended and its cgroup is gone, reads fail.
type cgroupFiles struct {
	memory, cpu *os.File
	v2          bool
}

// openCgroup opens the accounting files of container id, whose first
// process is pid on this host; nil when the engine is not on this host (or
// not in this process id namespace), or the files are not where this
// host's cgroup mounts say.
func openCgroup(pid int, id string) *cgroupFiles {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil || len(id) < 12 {
		return nil
	}
	v1Memory, v1CPU, v2 := cgroupPaths(b, id)
	if v1Memory != "" && v1CPU != "" {
		return open2(filepath.Join(v1Memory, "memory.max_usage_in_bytes"), filepath.Join(v1CPU, "cpuacct.usage"), false)
	}
	if v2 != "" {
		if c := open2(filepath.Join(v2, "memory.peak"), filepath.Join(v2, "cpu.stat"), true); c != nil {
			return c
		}
		return open2(filepath.Join(v2, "memory.current"), filepath.Join(v2, "cpu.stat"), true)
	}
	return nil
}

// cgroupPaths reads /proc/PID/cgroup: the folders of container id's memory
// and cpuacct cgroups (v1), or of its one cgroup (v2), under cgroupRoot.
func cgroupPaths(procCgroup []byte, id string) (v1Memory, v1CPU, v2 string) {
	sc := bufio.NewScanner(bytes.NewReader(procCgroup))
	for sc.Scan() {
		// hierarchy-ID:controller-list:path
		// Only a path naming the container: an exiting process may show
		// the root cgroup on some hierarchies, whose figures are the
		// whole host's.
		f := strings.SplitN(sc.Text(), ":", 3)
		if len(f) != 3 || strings.Contains(f[2], "..") || !strings.Contains(f[2], id) {
			continue
		}
		for _, c := range strings.Split(f[1], ",") {
			switch {
			case c == "memory":
				v1Memory = filepath.Join(cgroupRoot, f[1], f[2])
			case c == "cpuacct":
				v1CPU = filepath.Join(cgroupRoot, f[1], f[2])
			}
		}
		if f[0] == "0" && f[1] == "" {
			v2 = filepath.Join(cgroupRoot, f[2])
		}
	}
	return v1Memory, v1CPU, v2
}

func open2(memory, cpu string, v2 bool) *cgroupFiles {
	m, err := os.Open(memory)
	if err != nil {
		return nil
	}
	c, err := os.Open(cpu)
	if err != nil {
		m.Close()
		return nil
	}
	return &cgroupFiles{memory: m, cpu: c, v2: v2}
}

// read reads the files once; nil once the cgroup is gone.
func (c *cgroupFiles) read() *step.Resources {
	var buf [4096]byte
	n, _ := c.memory.ReadAt(buf[:], 0)
	if n == 0 {
		return nil
	}
	memory, err := strconv.ParseInt(strings.TrimSpace(string(buf[:n])), 10, 64)
	if err != nil {
		return nil
	}
	n, _ = c.cpu.ReadAt(buf[:], 0)
	if n == 0 {
		return nil
	}
	var cpuMS int64
	if !c.v2 {
		ns, err := strconv.ParseInt(strings.TrimSpace(string(buf[:n])), 10, 64)
		if err != nil {
			return nil
		}
		cpuMS = ns / 1e6
	} else {
		for _, line := range strings.Split(string(buf[:n]), "\n") {
			if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
				us, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				if err != nil {
					return nil
				}
				cpuMS = us / 1e3
			}
		}
	}
	return &step.Resources{PeakMemoryBytes: memory, CPUMS: cpuMS}
}

func (c *cgroupFiles) close() {
	c.memory.Close()
	c.cpu.Close()
}
