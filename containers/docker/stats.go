package docker

import (
	"context"
	"encoding/json"

	"github.com/docker/docker/api/types/container"

	"github.com/wflow/wflow/step"
)

// sampleUsage follows a running container's stats stream, the engine's
// sample once a second (what `docker stats` shows), until stop is called;
// stop returns the highest memory and the CPU time seen, or nil when no
// sample came (a container that ended before the engine's first one).
//
// A cgroup is gone once its container has exited, so what the last second
// of a container used is not seen: on cgroup v1 the memory figure is the
// cgroup's own high-water mark (max_usage) and misses nothing before the
// last sample; CPU time is the total at the last sample. docs/reports.md
// says so.
func (e *Engine) sampleUsage(ctx context.Context, id string) (stop func() *step.Resources) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan *step.Resources, 1)
	go func() {
		var seen *step.Resources
		defer func() { done <- seen }()
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
