package docker

import (
	"context"
	"encoding/json"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/wflow/wflow/step"
)

// cgroupInterval is how often a local container's cgroup is read.
const cgroupInterval = 100 * time.Millisecond

// sampleUsage measures what a running container uses until stop is called;
// stop returns the peak memory and the CPU time seen, or nil when nothing
// was measured (a container that ended before the first sample).
//
// When the engine runs on this host, its cgroup's files are read every
// cgroupInterval, and once more at stop (a cgroup outlives its container
// for a moment, not always); else the engine's stats stream is followed,
// a sample a second (what `docker stats` shows). What a container used
// after the last read is not seen: the memory figure is the cgroup's own
// high-water mark where the kernel keeps one, and misses nothing before
// that read; CPU time is the total at that read. docs/reports.md says so.
func (e *Engine) sampleUsage(ctx context.Context, id string) (stop func() *step.Resources) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan *step.Resources, 1)
	go func() {
		var seen *step.Resources
		defer func() { done <- seen }()
		if cg := e.localCgroup(ctx, id); cg != nil {
			seen = cg.follow(ctx)
			return
		}
		stats, err := e.cli.ContainerStats(ctx, id, true)
		if err != nil {
			return
		}
		defer stats.Body.Close()
		dec := json.NewDecoder(stats.Body)
		for {
			var s container.StatsResponse
			if err := dec.Decode(&s); err != nil {
				return
			}
			if sample := usageOf(s); sample != nil {
				seen = maxUsage(seen, sample)
			}
		}
	}()
	return func() *step.Resources {
		cancel()
		return <-done
	}
}

// SampleLocal measures what a container of this host uses, from its cgroup
// (as sampleUsage does), given the process id and container id an engine
// reported (a swarm task's); stop returns what was seen, nil when the
// container is not this host's or ended first.
func SampleLocal(pid int, containerID string) (stop func() *step.Resources) {
	cg := openCgroup(pid, containerID)
	if cg == nil {
		return func() *step.Resources { return nil }
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *step.Resources, 1)
	go func() { done <- cg.follow(ctx) }()
	return func() *step.Resources {
		cancel()
		return <-done
	}
}

// follow reads the cgroup every cgroupInterval until ctx ends, then once
// more, closes it, and returns the most seen.
func (c *cgroupFiles) follow(ctx context.Context) *step.Resources {
	defer c.close()
	var seen *step.Resources
	tick := time.NewTicker(cgroupInterval)
	defer tick.Stop()
	for {
		if u := c.read(); u != nil {
			seen = maxUsage(seen, u)
		}
		select {
		case <-ctx.Done():
			if u := c.read(); u != nil {
				seen = maxUsage(seen, u)
			}
			return seen
		case <-tick.C:
		}
	}
}

// localCgroup opens the cgroup files of container id when the engine runs
// on this host; nil when it does not, or the container has ended.
func (e *Engine) localCgroup(ctx context.Context, id string) *cgroupFiles {
	ictx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	info, err := e.cli.ContainerInspect(ictx, id)
	if err != nil || info.State == nil || info.State.Pid <= 0 {
		return nil
	}
	return openCgroup(info.State.Pid, info.ID)
}

// usageOf is one sample's use; nil for the empty sample the engine sends
// for a container that is not running.
func usageOf(s container.StatsResponse) *step.Resources {
	m := s.MemoryStats
	if s.Read.IsZero() || (m.Usage == 0 && m.MaxUsage == 0 && s.CPUStats.CPUUsage.TotalUsage == 0) {
		return nil
	}
	// What `docker stats` shows: usage less the inactive page cache
	// (total_inactive_file on cgroup v1, inactive_file on v2).
	used := m.Usage
	inactive := m.Stats["total_inactive_file"]
	if v, ok := m.Stats["inactive_file"]; ok && inactive == 0 {
		inactive = v
	}
	if inactive < used {
		used -= inactive
	}
	peak := max(used, m.MaxUsage)
	return &step.Resources{
		PeakMemoryBytes: int64(min(peak, 1<<62)),
		CPUMS:           int64(min(s.CPUStats.CPUUsage.TotalUsage/1e6, 1<<62)),
	}
}

// maxUsage keeps the larger of each figure: the stream's CPU time only
// grows, and the peak is the highest seen.
func maxUsage(a, b *step.Resources) *step.Resources {
	if a == nil {
		return b
	}
	return &step.Resources{PeakMemoryBytes: max(a.PeakMemoryBytes, b.PeakMemoryBytes), CPUMS: max(a.CPUMS, b.CPUMS)}
}
