package csdk

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/wflow/wflow/abi"
)

// TestHeadersMatchTheABI: the C headers copy the ABI's module names,
// return codes and functions by hand; each must be abi's.
func TestHeadersMatchTheABI(t *testing.T) {
	for _, h := range []struct {
		file, module string
		sigs         []abi.Signature
		errnos       bool
	}{
		{"wflow.h", abi.ModuleName, abi.Functions, true},
		{"wflow_policy.h", abi.PolicyModuleName, abi.PolicyFunctions, false},
	} {
		b, err := Source.ReadFile(h.file)
		if err != nil {
			t.Fatal(err)
		}
		src := string(b)
		if !strings.Contains(src, `"`+h.module+`"`) {
			t.Errorf("%s does not name the module %s", h.file, h.module)
		}
		for _, sig := range h.sigs {
			// IMPORT("name") then a declaration whose parameters are the signature's.
			decl := regexp.MustCompile(`IMPORT\("` + sig.Name + `"\)\s*\n[^;(]*\(([^)]*)\);`).FindStringSubmatch(src)
			if decl == nil {
				t.Errorf("%s does not import %s", h.file, sig.Name)
				continue
			}
			if n := len(strings.Split(decl[1], ",")); n != len(sig.Params) {
				t.Errorf("%s declares %s with %d parameters, abi %d (%v)", h.file, sig.Name, n, len(sig.Params), sig.Params)
			}
		}
		if !h.errnos {
			continue
		}
		for e := abi.Errno(0); e.String() != "unknown"; e++ {
			name := "WFLOW_ERR_" + strings.ToUpper(e.String())
			if e == abi.OK {
				name = "WFLOW_OK"
			}
			if !regexp.MustCompile(`\b` + name + ` = ` + strconv.Itoa(int(e)) + `,`).MatchString(src) {
				t.Errorf("%s has no %s = %d", h.file, name, e)
			}
		}
	}
}
