package docker

import (
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
)

// TestUsageOf: a stats sample's memory is what `docker stats` shows (usage
// less the inactive page cache) or the cgroup's high-water mark, whichever
// is larger; the empty sample of a stopped container is no sample.
func TestUsageOf(t *testing.T) {
	if u := usageOf(container.StatsResponse{}); u != nil {
		t.Errorf("empty sample = %+v, want nil", *u)
	}
	var s container.StatsResponse
	s.Read = time.Now()
	s.MemoryStats = container.MemoryStats{Usage: 50 << 20, MaxUsage: 30 << 20, Stats: map[string]uint64{"total_inactive_file": 10 << 20}}
	s.CPUStats.CPUUsage.TotalUsage = 1_500_000_000
	u := usageOf(s)
	if u == nil || u.PeakMemoryBytes != 40<<20 || u.CPUMS != 1500 {
		t.Errorf("v1 sample = %+v, want 40 MiB and 1500 ms", u)
	}
	s.MemoryStats = container.MemoryStats{Usage: 20 << 20, Stats: map[string]uint64{"inactive_file": 4 << 20}}
	if u := usageOf(s); u == nil || u.PeakMemoryBytes != 16<<20 {
		t.Errorf("v2 sample = %+v, want 16 MiB", u)
	}
	if m := maxUsage(usageOf(s), u); m.PeakMemoryBytes != 40<<20 || m.CPUMS != 1500 {
		t.Errorf("maxUsage = %+v", *m)
	}
}

// TestCgroupPaths: the cgroups of the container, from /proc/PID/cgroup;
// never a line whose path does not name it (an exiting process shows the
// root cgroup on some hierarchies: the whole host's figures).
func TestCgroupPaths(t *testing.T) {
	id := "f3489cfda52655a1e5f3b76b0626f12d7c000e8d1f3987109d5a421e3a696bef"
	v1 := "4:memory:/docker/" + id + "\n3:cpu,cpuacct:/docker/" + id + "\n0::/docker/" + id + "\n"
	m, c, v2 := cgroupPaths([]byte(v1), id)
	if m != "/sys/fs/cgroup/memory/docker/"+id || c != "/sys/fs/cgroup/cpu,cpuacct/docker/"+id || v2 != "/sys/fs/cgroup/docker/"+id {
		t.Errorf("v1 paths %q %q %q", m, c, v2)
	}
	exiting := "4:memory:/\n2:cpuacct:/\n1:name=systemd:/docker/" + id + "\n"
	if m, c, v2 := cgroupPaths([]byte(exiting), id); m != "" || c != "" || v2 != "" {
		t.Errorf("root cgroups taken: %q %q %q", m, c, v2)
	}
	_, _, v2 = cgroupPaths([]byte("0::/system.slice/docker-"+id+".scope\n"), id)
	if v2 != "/sys/fs/cgroup/system.slice/docker-"+id+".scope" {
		t.Errorf("v2 path %q", v2)
	}
	if m, _, v2 := cgroupPaths([]byte("4:memory:/docker/"+id+"/../../x\n"), id); m != "" || v2 != "" {
		t.Error("a path with .. was taken")
	}
}
