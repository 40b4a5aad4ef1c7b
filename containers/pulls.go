package containers

import (
	"fmt"
	"path"
	"strings"
)

// Pulls says which images wflow may ask the engine to pull: only those the
// invoking user allowed on the command line. An image reference is chosen
// by the module, and a pull makes the daemon resolve and contact the
// registry host it names, whatever --network says, which a hostile module
// could use to send data out (the host name itself can carry it). Images
// already present are used without asking.
type Pulls struct {
	Registries []string // --allow-registry: registry hosts ("docker.io", "ghcr.io", "localhost:5000"); "*" for any
	Images     []string // --allow-image: globs an image may match (MatchImage)
}

// Allowed reports whether ref may be pulled.
func (p Pulls) Allowed(ref string) bool {
	host := RegistryHost(ref)
	for _, r := range p.Registries {
		if r == "*" || strings.EqualFold(r, host) {
			return true
		}
	}
	for _, pat := range p.Images {
		if MatchImage(pat, ref) {
			return true
		}
	}
	return false
}

// Refusal is the error of an image that is missing and may not be pulled;
// it wraps ErrImageUnavailable.
func (p Pulls) Refusal(ref string) error {
	return fmt.Errorf("%w: image %s is not present, and wflow pulls only from registries the user allows: run with --allow-registry %s, or load the image first",
		ErrImageUnavailable, ref, RegistryHost(ref))
}

// RegistryHost returns the registry an image reference names: its first
// path component when that looks like a host (has a '.' or a ':', or is
// localhost), else Docker Hub, "docker.io".
func RegistryHost(ref string) string {
	first, _, ok := strings.Cut(ref, "/")
	if !ok || !(strings.ContainsAny(first, ".:") || first == "localhost") {
		return "docker.io"
	}
	switch first = strings.ToLower(first); first {
	case "index.docker.io", "registry-1.docker.io":
		return "docker.io"
	}
	return first
}

// MatchImage reports whether an image reference matches a glob
// (path.Match: "wflow-test/*", "python@sha256:*"); a reference without a tag
// or digest also matches a pattern written with ":latest".
func MatchImage(pattern, ref string) bool {
	if ok, _ := path.Match(pattern, ref); ok {
		return true
	}
	if !strings.ContainsAny(path.Base(ref), ":@") {
		ok, _ := path.Match(pattern, ref+":latest")
		return ok
	}
	return false
}
