package kubernetes

import (
	"context"
	"fmt"
	"strings"

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
// pod.
var Permissions = []Permission{
	{Group: "batch", Resource: "jobs", Verbs: []string{"create", "get", "list", "delete"}},
	{Resource: "pods", Verbs: []string{"list", "watch", "delete"}},
	{Resource: "pods", Subresource: "log", Verbs: []string{"get"}},
	{Group: "networking.k8s.io", Resource: "networkpolicies", Verbs: []string{"create", "list", "delete"}},
	{Resource: "events", Verbs: []string{"list"}},
}

// checkAccess asks the API server whether this client may do everything
// in Permissions in the namespace, and names what it may not.
func (e *Engine) checkAccess(ctx context.Context) error {
	var missing []string
	for _, p := range Permissions {
		for _, verb := range p.Verbs {
			review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
				ResourceAttributes: &authorizationv1.ResourceAttributes{
					Namespace: e.namespace, Verb: verb, Group: p.Group, Resource: p.Resource, Subresource: p.Subresource},
			}}
			got := &authorizationv1.SelfSubjectAccessReview{}
			err := e.api.accessReviews().create(ctx, review, got)
			if err != nil {
				return fmt.Errorf("ask the API server what wflow may do in namespace %s: %w", e.namespace, err)
			}
			if !got.Status.Allowed {
				missing = append(missing, verb+" "+p.name())
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("in namespace %s, wflow may not %s (the Role wflow needs is in docs/scale-out.md)", e.namespace, strings.Join(missing, ", "))
	}
	return nil
}

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
