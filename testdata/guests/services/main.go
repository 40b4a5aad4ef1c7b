// Command services is a test guest of services (docs/services.md): a web
// server from the test image that a step reaches by name on the run's
// network (and a step without it cannot), a job container that runs
// commands with exec (20 of them, one past its timeout, one cancelled), a
// service that never gets ready, and a service left running for wflow to
// stop at the end. With -p case=hold it starts a service and then waits
// in a long step, for a test to interrupt the run.
package main

import (
	"context"
	"os"
	"strings"
	"time"

	"github.com/wflow/wflow/sdk/go/wflow"
)

func must(err error) {
	if err != nil {
		wflow.Warn("%v", err)
		os.Exit(1)
	}
}

func step(name, network, script string) wflow.Step {
	return wflow.Step{Name: name, Image: "wflow-test/busybox", Network: network,
		Commands: []wflow.Command{wflow.Shell(strings.ReplaceAll(script, "$", "$$"))}}
}

func main() {
	web, err := wflow.StartService(wflow.ServiceSpec{
		Name: "web", Image: "wflow-test/python",
		Command: wflow.Argv("python3", "-m", "http.server", "8080", "--directory", "/wflow/site"),
		Ready:   &wflow.Ready{Port: 8080, Timeout: time.Minute},
	})
	must(err)
	if wflow.Param("case") == "hold" {
		wflow.Run(step("hold", "run", "sleep 120"))
		return
	}
	out := map[string]any{}
	reached, err := wflow.Run(step("client", "run", "wget -qO- http://web:8080/hello.txt"))
	must(err)
	out["reached"] = strings.TrimSpace(reached.Stdout)
	get := func(host, port, path string) string {
		return "printf 'GET " + path + " HTTP/1.0\\r\\n\\r\\n' | nc -w 3 " + host + " " + port
	}
	cut, err := wflow.Run(step("isolated", "", get("web", "8080", "/hello.txt")))
	must(err)
	out["isolated_reached"] = strings.Contains(cut.Stdout, "hello-from-web")
	if ip, port := wflow.Param("hostip"), wflow.Param("hostport"); ip != "" {
		// The host's own address, off the run's network: no route there.
		outside, err := wflow.Run(step("outside", "run", get(ip, port, "/")))
		must(err)
		out["outside_reached"] = strings.Contains(outside.Stdout, "host-secret")
	}
	if port := wflow.Param("hostport"); port != "" {
		// The host has no address on the run's network: a server of the
		// host listening on every address is out of reach, at the default
		// gateway (if any) and at the first address of each network the
		// container is on, where an engine puts the bridge's own.
		gateways := "$(ip route | awk '/default/ {print $3}') " +
			"$(ip -4 route | awk '/scope link/ {split($1, n, \"/\"); split(n[1], o, \".\"); print o[1] \".\" o[2] \".\" o[3] \".\" o[4] + 1}')"
		probe, err := wflow.Run(step("probe-host", "run", "for gw in "+gateways+"; do echo gw=$gw; "+get("$gw", port, "/")+"; done"))
		must(err)
		out["host_reached"] = strings.Contains(probe.Stdout, "host-secret")
	}
	must(web.Stop())
	after, err := wflow.Run(step("after-stop", "run", get("web", "8080", "/hello.txt")))
	must(err)
	out["after_stop_reached"] = strings.Contains(after.Stdout, "hello-from-web")

	job, err := wflow.StartService(wflow.ServiceSpec{Name: "job", Image: "wflow-test/busybox", Command: wflow.Argv("sleep", "86400"),
		Ready: &wflow.Ready{Command: ptr(wflow.Argv("true"))}})
	must(err)
	ok := 0
	for i := 0; i < 20; i++ {
		res, err := job.Exec(wflow.Exec{Name: "count", Commands: []wflow.Command{wflow.Shell("echo $$N >> counted.txt")}, Env: map[string]string{"N": "x"}})
		must(err)
		if res.OK() && res.Service == "job" {
			ok++
		}
	}
	out["execs_ok"] = ok
	counted, _ := os.ReadFile("counted.txt")
	out["counted"] = strings.Count(string(counted), "x\n")
	slow, err := job.Exec(wflow.Exec{Name: "slow", Commands: []wflow.Command{wflow.Argv("sleep", "300")}, Timeout: time.Second})
	must(err)
	out["slow"] = slow.ErrorKind
	h, err := job.SubmitExec(wflow.Exec{Name: "cancelled", Commands: []wflow.Command{wflow.Argv("sleep", "301")}})
	must(err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_, err = wflow.WaitAny(ctx, h) // it runs by then
	cancel()
	out["wait_err"] = errString(err)
	must(wflow.Cancel(h))
	cancelled, err := wflow.Wait(h)
	must(err)
	out["cancelled"] = cancelled.ErrorKind
	left, err := job.Exec(wflow.Exec{Name: "left", Commands: []wflow.Command{wflow.Shell("ps | grep -c '[s]leep 30' || true")}})
	must(err)
	out["sleeps_left"] = strings.TrimSpace(left.Stdout)
	failed, err := job.Exec(wflow.Exec{Name: "fails", Commands: []wflow.Command{wflow.Shell("exit 4")}})
	must(err)
	out["fails"] = failed.ReturnCode

	_, err = wflow.StartService(wflow.ServiceSpec{Name: "never", Image: "wflow-test/busybox", Command: wflow.Argv("sleep", "86400"),
		Ready: &wflow.Ready{Command: ptr(wflow.Shell("echo not yet; exit 1")), Timeout: time.Second}})
	out["never"] = errString(err)
	_, err = wflow.StartService(wflow.ServiceSpec{Name: "job", Image: "wflow-test/busybox", Command: wflow.Argv("sleep", "1")})
	out["twice"] = errString(err)
	// job is left running: wflow stops it when the module ends.
	must(wflow.SetOutput(out))
}

func ptr(c wflow.Command) *wflow.Command { return &c }

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
