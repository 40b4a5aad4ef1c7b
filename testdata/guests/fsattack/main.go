// Command fsattack is a hostile test guest: through links, FIFOs and
// devices a step may have planted in the run directory, it tries to create,
// truncate, read and stat host files outside it, to hang on a FIFO, and to
// plant links of its own that lead out; then it does ordinary file work
// that must keep working. It sets, for each attempt, whether it worked.
package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/wflow/wflow/sdk/go/wflow"
)

func ok(err error) bool { return err == nil }

func main() {
	out := map[string]any{}
	// Dangling relative link to a host path that does not exist yet.
	out["create_through_dangling_link"] = ok(os.WriteFile("dangling", []byte("x"), 0o644))
	// Link to an existing host file: truncate it, append to it.
	f, err := os.OpenFile("victim", os.O_WRONLY|os.O_TRUNC, 0)
	out["truncate_through_link"] = ok(err)
	if err == nil {
		f.Close()
	}
	f, err = os.OpenFile("victim", os.O_WRONLY|os.O_APPEND, 0)
	out["append_through_link"] = ok(err)
	if err == nil {
		f.Close()
	}
	_, err = os.Stat("victim")
	out["stat_through_link"] = ok(err)
	_, err = os.Stat("planted/secret.txt")
	out["stat_through_folder_link"] = ok(err)
	target, err := os.Readlink("victim")
	out["readlink_own_link"] = ok(err) && target != ""
	// FIFOs and devices: refused at once, never blocking.
	_, err = os.ReadFile("fifo")
	out["read_fifo"] = ok(err)
	f, err = os.OpenFile("fifo", os.O_WRONLY|os.O_CREATE, 0o644)
	out["write_fifo"] = ok(err)
	if err == nil {
		f.Close()
	}
	_, err = os.ReadFile("device")
	out["read_device"] = ok(err)
	// Links of its own that lead out.
	out["symlink_absolute"] = ok(os.Symlink("/etc/passwd", "abs"))
	out["symlink_climbing"] = ok(os.Symlink("../../../etc/passwd", "climb"))
	out["symlink_climbing_from_folder"] = ok(os.Mkdir("d", 0o755)) && ok(os.Symlink("../..", "d/up"))
	// Made in the run directory itself by way of a link to it: the path
	// looks six folders deep, the link's real folder is the top.
	out["symlink_climbing_through_link"] = ok(os.Symlink(".", "self")) && ok(os.Symlink("../../../../../../etc/shadow", "self/self/self/self/self/self/leak"))
	// wflow's records (.wflow): readable, never changed, however reached.
	rec, err := os.ReadFile(".wflow/report.json")
	out["records_read"] = ok(err) && string(rec) == "record"
	out["records_write"] = ok(os.WriteFile(".wflow/report.json", []byte("forged"), 0o644))
	out["records_create"] = ok(os.WriteFile(".wflow/results.jsonl", []byte("forged"), 0o644))
	f, err = os.OpenFile(".wflow/report.json", os.O_WRONLY|os.O_APPEND, 0)
	out["records_append"] = ok(err)
	if err == nil {
		f.Close()
	}
	out["records_write_through_planted_link"] = ok(os.WriteFile("rec/report.json", []byte("forged"), 0o644))
	out["records_mkdir"] = ok(os.Mkdir(".wflow/steps", 0o755))
	out["records_remove"] = ok(os.Remove(".wflow/report.json"))
	out["records_rename_folder"] = ok(os.Rename(".wflow", "moved"))
	out["records_rename_into"] = ok(os.WriteFile("forgery", []byte("forged"), 0o644)) && ok(os.Rename("forgery", ".wflow/report.json"))
	out["records_hard_link_out"] = ok(os.Link(".wflow/report.json", "alias-of-record"))
	out["records_symlink_in"] = ok(os.Symlink("../outside", ".wflow/out"))
	out["records_chtimes"] = ok(os.Chtimes(".wflow/report.json", time.Unix(0, 0), time.Unix(0, 0)))
	// Ordinary work: create, append, seek, truncate, list, link inside.
	// Each stage names itself when it fails.
	work := func() string {
		if err := os.WriteFile("own.txt", []byte("hello"), 0o644); err != nil {
			return "create: " + err.Error()
		}
		f, err := os.OpenFile("own.txt", os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return "open append: " + err.Error()
		}
		f.Write([]byte(" world"))
		f.Close()
		f, err = os.OpenFile("own.txt", os.O_RDWR, 0)
		if err != nil {
			return "open rw: " + err.Error()
		}
		defer f.Close()
		if _, err := f.Seek(6, io.SeekStart); err != nil {
			return "seek: " + err.Error()
		}
		if b, err := io.ReadAll(f); string(b) != "world" {
			return "read after seek: " + string(b) + fmt.Sprint(err)
		}
		if err := f.Truncate(5); err != nil {
			return "truncate: " + err.Error()
		}
		if err := os.Symlink("own.txt", "d/../alias"); err != nil {
			return "symlink inside: " + err.Error()
		}
		if a, err := os.ReadFile("alias"); err != nil || string(a) != "hello" {
			return "read through own link: " + string(a) + fmt.Sprint(err)
		}
		entries, err := os.ReadDir(".")
		if err != nil || len(entries) < 4 {
			return fmt.Sprintf("list: %d entries, %v", len(entries), err)
		}
		return "ok"
	}
	out["ordinary_work"] = work()
	wflow.SetOutput(out)
}
