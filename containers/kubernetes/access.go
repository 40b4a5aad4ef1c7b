package kubernetes

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authorizationv1 "k8s.io/api/authorization/v1"
)

// Permission is one thing wflow does in its namespace: a verb on a
// resource of an API group.
type Permission struct {
	Group, Resource, Subresource string
	Verbs                        []string
}

// Permissions are what the engine needs in its namespace, the rules of
// the Role in docs/scale-out.md (a test checks they are the same, and runs
// a step with that Role). Events are read only to say why a Job made no
// pod; the claim of run directories only to check, before a run, that it
// is there.
var Permissions = []Permission{
	{Group: "batch", Resource: "jobs", Verbs: []string{"create", "get", "list", "delete"}},
	{Resource: "pods", Verbs: []string{"list", "watch", "delete"}},
	{Resource: "pods", Subresource: "log", Verbs: []string{"get"}},
	{Group: "networking.k8s.io", Resource: "networkpolicies", Verbs: []string{"create", "list", "delete"}},
	{Resource: "events", Verbs: []string{"list"}},
	{Resource: "persistentvolumeclaims", Verbs: []string{"get"}},
}

// checkAccess asks the API server whether this client may do everything
// in Permissions in the namespace, and names what it may not. The reviews
// are asked at once: every wflow command that opens the engine waits for
// them, one round trip to a distant API server rather than thirteen.
func (e *Engine) checkAccess(ctx context.Context) error {
	type check struct {
		what    string
		allowed bool
		err     error
	}
	var checks []*check
	var wg sync.WaitGroup
	for _, p := range Permissions {
		for _, verb := range p.Verbs {
			c := &check{what: verb + " " + p.name()}
			checks = append(checks, c)
			review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
				ResourceAttributes: &authorizationv1.ResourceAttributes{
					Namespace: e.namespace, Verb: verb, Group: p.Group, Resource: p.Resource, Subresource: p.Subresource},
			}}
			wg.Add(1)
			go func() {
				defer wg.Done()
				got := &authorizationv1.SelfSubjectAccessReview{}
				c.err = e.api.accessReviews().create(ctx, review, got)
				c.allowed = got.Status.Allowed
			}()
		}
	}
	wg.Wait()
	var missing []string
	for _, c := range checks {
		if c.err != nil {
			return fmt.Errorf("ask the API server what wflow may do in namespace %s: %w", e.namespace, c.err)
		}
		if !c.allowed {
			missing = append(missing, c.what)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("in namespace %s, wflow may not %s (the Role wflow needs is in docs/scale-out.md)", e.namespace, strings.Join(missing, ", "))
	}
	// An administrator may do anything in a namespace that does not
	// exist: a dry run of the run's NetworkPolicy says whether it does.
	probe := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{GenerateName: "wflow-probe-"},
		Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}}
	// Another refusal (an admission webhook that takes no dry runs) is
	// left to the first real create to report.
	if err := e.api.networkPolicies(e.namespace).createDryRun(ctx, probe); apierrors.IsNotFound(err) {
		return fmt.Errorf("namespace %s does not exist (--namespace, or the kubeconfig context's)", e.namespace)
	}
	return nil
}

var namespacePattern = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// name is the resource as kubectl names it: pods/log, jobs.batch.
func (p Permission) name() string {
	n := p.Resource
	if p.Group != "" {
		n += "." + p.Group
	}
	if p.Subresource != "" {
		n += "/" + p.Subresource
	}
	return n
}
