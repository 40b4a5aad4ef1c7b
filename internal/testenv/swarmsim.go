package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	wswarm "github.com/wflow/wflow/containers/swarm"
)

// simEnv is where scripts/swarm-sim.sh describes the swarm it simulates.
const simEnv = "/run/wflow-swarm-sim/cluster.env"

// SwarmCluster is the 3-node swarm simulated by scripts/swarm-sim.sh: a
// manager and two workers, each a dockerd in its own network namespace,
// sharing this machine's file system, and a registry they all pull from.
type SwarmCluster struct {
	// Manager is the manager's DOCKER_HOST, which SwarmSim sets for the test.
	Manager string
	// Nodes are clients of every node's own engine; Nodes[0] is the manager's.
	Nodes []*client.Client
	// Registry is the registry's host:port; Image is the test image in it.
	Registry, Image string
}

// SwarmSim returns the simulated swarm, with DOCKER_HOST pointing at its
// manager for the test (and the wflow runs it makes); it skips (fails in
// CI) when the simulation is not running (scripts/swarm-sim.sh start).
// Like Swarm, it accepts the missing no-new-privileges of Debian's Docker.
func SwarmSim(t testing.TB) *SwarmCluster {
	t.Helper()
	vars, err := readEnvFile(simEnv)
	if err != nil {
		Missing(t, "no simulated swarm (scripts/swarm-sim.sh start): %v", err)
	}
	c := &SwarmCluster{Manager: vars["WFLOW_SIM_MANAGER"], Registry: vars["WFLOW_SIM_REGISTRY"], Image: vars["WFLOW_SIM_IMAGE"]}
	for _, host := range strings.Fields(vars["WFLOW_SIM_NODES"]) {
		cli, err := client.NewClientWithOpts(client.WithHost(host), client.WithAPIVersionNegotiation())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		c.Nodes = append(c.Nodes, cli)
	}
	if c.Manager == "" || len(c.Nodes) < 3 || c.Image == "" {
		t.Fatalf("%s is incomplete: %v", simEnv, vars)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nodes, err := c.Nodes[0].NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		Missing(t, "the simulated swarm's manager does not answer (scripts/swarm-sim.sh start): %v", err)
	}
	for _, n := range nodes {
		if n.Status.State != swarm.NodeStateReady {
			Missing(t, "the simulated swarm's node %s is %s (scripts/swarm-sim.sh stop; scripts/swarm-sim.sh start)", n.Description.Hostname, n.Status.State)
		}
	}
	t.Setenv("DOCKER_HOST", c.Manager)
	t.Setenv(wswarm.AllowNewPrivileges, "allow")
	return c
}

// readEnvFile reads the NAME=value lines of a shell file (values may be
// double-quoted), skipping comments.
func readEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	vars := map[string]string{}
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		line := strings.TrimSpace(lines.Text())
		if name, value, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			vars[name] = strings.Trim(value, `"`)
		}
	}
	return vars, lines.Err()
}

// NodeID returns the swarm's id of node i (0 is the manager).
func (c *SwarmCluster) NodeID(t testing.TB, i int) string {
	t.Helper()
	info, err := c.Nodes[i].Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.Swarm.NodeID
}

// Started returns, for each node, the image of each container labelled
// key=value that its engine started since the given time.
func (c *SwarmCluster) Started(t testing.TB, since time.Time, key, value string) [][]string {
	t.Helper()
	started := make([][]string, len(c.Nodes))
	opts := events.ListOptions{
		Since: strconv.FormatInt(since.Unix()-1, 10),
		Until: strconv.FormatInt(time.Now().Unix()+1, 10),
		Filters: filters.NewArgs(
			filters.Arg("type", "container"),
			filters.Arg("event", "start"),
			filters.Arg("label", key+"="+value)),
	}
	for i, cli := range c.Nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		msgs, errs := cli.Events(ctx, opts)
	read:
		for {
			select {
			case m := <-msgs:
				started[i] = append(started[i], m.Actor.Attributes["image"])
			case err := <-errs:
				if !errors.Is(err, io.EOF) {
					cancel()
					t.Fatalf("events of node %d: %v", i, err)
				}
				break read
			}
		}
		cancel()
	}
	return started
}

// Left returns the containers labelled key=value that remain on each
// node, after waiting up to limit for the nodes' agents to remove them.
func (c *SwarmCluster) Left(t testing.TB, key, value string, limit time.Duration) [][]string {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		left, any := make([][]string, len(c.Nodes)), false
		for i, cli := range c.Nodes {
			list, err := cli.ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", key+"="+value))})
			if err != nil {
				t.Fatal(err)
			}
			for _, ctr := range list {
				left[i] = append(left[i], ctr.ID[:12]+" "+ctr.State)
				any = true
			}
		}
		if !any || time.Now().After(deadline) {
			return left
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// Tasks returns the tasks in the swarm's store whose container carries the
// label key=value, after waiting up to limit for the swarm to delete them.
func (c *SwarmCluster) Tasks(t testing.TB, key, value string, limit time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		all, err := c.Nodes[0].TaskList(context.Background(), swarm.TaskListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var tasks []string
		for _, task := range all {
			if cs := task.Spec.ContainerSpec; cs != nil && cs.Labels[key] == value {
				tasks = append(tasks, task.ID+" "+string(task.Status.State))
			}
		}
		if len(tasks) == 0 || time.Now().After(deadline) {
			return tasks
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// Pause stops the swarm from placing new tasks on node i (availability
// "pause"), until the test ends.
func (c *SwarmCluster) Pause(t testing.TB, i int) {
	t.Helper()
	if err := c.availability(t, i, swarm.NodeAvailabilityPause); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.availability(t, i, swarm.NodeAvailabilityActive); err != nil {
			t.Errorf("set node %d active again: %v", i+1, err)
		}
	})
}

// availability sets node i's availability, again when the node changed
// between reading and updating it (the update is then out of sequence).
func (c *SwarmCluster) availability(t testing.TB, i int, a swarm.NodeAvailability) error {
	id := c.NodeID(t, i)
	var err error
	for try := 0; try < 5; try++ {
		ctx := context.Background()
		var node swarm.Node
		if node, _, err = c.Nodes[0].NodeInspectWithRaw(ctx, id); err != nil {
			return err
		}
		node.Spec.Availability = a
		if err = c.Nodes[0].NodeUpdate(ctx, node.ID, node.Version, node.Spec); err == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return err
}

// Partition cuts node i (a worker) off the others, as a pulled cable
// would (scripts/swarm-sim.sh partition). It returns a function that heals
// the node, also called when the test ends.
func (c *SwarmCluster) Partition(t testing.TB, i int) (heal func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "cutting a node off takes root (scripts/swarm-sim.sh partition)")
	}
	node := "n" + strconv.Itoa(i+1)
	sim := func(verb string) error {
		if out, err := exec.Command(filepath.Join(Root(), "scripts", "swarm-sim.sh"), verb, node).CombinedOutput(); err != nil {
			return fmt.Errorf("swarm-sim.sh %s %s: %v: %s", verb, node, err, out)
		}
		return nil
	}
	if err := sim("partition"); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	heal = func() {
		once.Do(func() {
			if err := sim("heal"); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(heal)
	return heal
}
