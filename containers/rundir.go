package containers

import (
	"os"
	"path/filepath"
)

// The run directory is written by steps (it is mounted in every container)
// and by wflow. A step may plant a symbolic link there, say .wflow/steps ->
// /etc, so wflow reaches its own files in the run directory through
// os.Root: a path that would lead outside the run directory is an error,
// never a write elsewhere on the host.

// CreateInRunDir opens rel, a path relative to rundir, for writing (with
// flag, e.g. os.O_TRUNC or os.O_APPEND), creating it and its folders, without
// leaving rundir.
func CreateInRunDir(rundir, rel string, flag int) (*os.File, error) {
	root, err := os.OpenRoot(rundir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	if err := root.MkdirAll(filepath.Dir(rel), 0o755); err != nil {
		return nil, err
	}
	return root.OpenFile(rel, flag|os.O_CREATE|os.O_WRONLY, 0o644)
}

// WriteInRunDir writes data to rel atomically (a temporary file renamed into
// place), creating its folders, without leaving rundir.
func WriteInRunDir(rundir, rel string, data []byte) error {
	root, err := os.OpenRoot(rundir)
	if err != nil {
		return err
	}
	defer root.Close()
	if err := root.MkdirAll(filepath.Dir(rel), 0o755); err != nil {
		return err
	}
	if err := root.WriteFile(rel+".tmp", data, 0o644); err != nil {
		return err
	}
	return root.Rename(rel+".tmp", rel)
}

// ReadInRunDir reads rel without leaving rundir.
func ReadInRunDir(rundir, rel string) ([]byte, error) {
	root, err := os.OpenRoot(rundir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return root.ReadFile(rel)
}
