package kubernetes_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wflow/wflow/containers/kubernetes"
	"github.com/wflow/wflow/internal/testenv"
)

var ruleLine = regexp.MustCompile(`^- \{apiGroups: \[(.*?)\], resources: \[(.*?)\], verbs: \[(.*?)\]\}$`)

// documentedRole reads the rules of the Role in docs/scale-out.md.
func documentedRole(t *testing.T) []rbacv1.PolicyRule {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.Root(), "docs", "scale-out.md"))
	if err != nil {
		t.Fatal(err)
	}
	var rules []rbacv1.PolicyRule
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case line == "kind: Role":
			in = true
		case in && line == "---":
			in = false
		case in:
			if m := ruleLine.FindStringSubmatch(line); m != nil {
				list := func(s string) []string {
					var out []string
					for _, f := range strings.Split(s, ",") {
						out = append(out, strings.Trim(strings.TrimSpace(f), `"`))
					}
					return out
				}
				rules = append(rules, rbacv1.PolicyRule{APIGroups: list(m[1]), Resources: list(m[2]), Verbs: list(m[3])})
			}
		}
	}
	return rules
}

// TestDocumentedRoleIsPermissions: the Role in docs/scale-out.md grants
// exactly kubernetes.Permissions.
func TestDocumentedRoleIsPermissions(t *testing.T) {
	rules := documentedRole(t)
	if len(rules) != len(kubernetes.Permissions) {
		t.Fatalf("the documented Role has %d rules, Permissions %d: %+v", len(rules), len(kubernetes.Permissions), rules)
	}
	for i, p := range kubernetes.Permissions {
		res := p.Resource
		if p.Subresource != "" {
			res += "/" + p.Subresource
		}
		r := rules[i]
		if !slices.Equal(r.APIGroups, []string{p.Group}) || !slices.Equal(r.Resources, []string{res}) || !slices.Equal(r.Verbs, p.Verbs) {
			t.Errorf("rule %d: documented %+v, Permissions %+v", i, r, p)
		}
	}
}

// TestAccess: a service account bound to the documented Role runs a step;
// one whose Role lacks "delete pods" is refused before any step, with what
// it lacks named.
func TestAccess(t *testing.T) {
	c := testenv.KubeSim(t, "wflow-rbac")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	full := documentedRole(t)
	var lacking []rbacv1.PolicyRule
	for _, r := range full {
		r = *r.DeepCopy()
		if slices.Equal(r.Resources, []string{"pods"}) {
			r.Verbs = slices.DeleteFunc(r.Verbs, func(v string) bool { return v == "delete" })
		}
		lacking = append(lacking, r)
	}
	for _, tc := range []struct {
		name  string
		rules []rbacv1.PolicyRule
		want  string // in New's error; "" for none
	}{
		{"wflow-documented", full, ""},
		{"wflow-lacking", lacking, "wflow may not delete pods"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("KUBECONFIG", serviceAccountConfig(t, ctx, c, tc.name, tc.rules))
			e, err := kubernetes.New(ctx, kubernetes.Options{Namespace: c.Namespace, VolumeClaim: c.Claim, VolumeRoot: c.Root})
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "docs/scale-out.md") {
					t.Errorf("New: %v, want an error naming %q and the docs", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			s := kwokSpec(t, c, "WFLOW_KWOK_EXIT_CODE=7")
			if exit, _, _, err := runSpec(t, e, s); err != nil || exit.Code != 7 {
				t.Errorf("a step with the documented Role: %+v, %v", exit, err)
			}
			if err := e.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			assertGone(t, c, s)
		})
	}
}

// serviceAccountConfig makes a service account with a Role of rules in
// c's namespace and returns a kubeconfig with a token of it.
func serviceAccountConfig(t *testing.T, ctx context.Context, c *testenv.KubeCluster, name string, rules []rbacv1.PolicyRule) string {
	t.Helper()
	ns := c.Namespace
	core, rbac := c.Client.CoreV1(), c.Client.RbacV1()
	must := func(err error) {
		t.Helper()
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	_, err := core.ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	must(err)
	rbac.Roles(ns).Delete(ctx, name, metav1.DeleteOptions{})
	_, err = rbac.Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, metav1.CreateOptions{})
	must(err)
	_, err = rbac.RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: ns}},
	}, metav1.CreateOptions{})
	must(err)
	tok, err := core.ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := os.ReadFile(c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	// The administrator's kubeconfig with the account's token instead.
	config := regexp.MustCompile(`(?m)^(\s*token:).*$`).ReplaceAllString(string(admin), "${1} "+tok.Status.Token)
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
