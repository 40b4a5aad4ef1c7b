package kubernetes

import (
	"context"
	"fmt"
	"io"

	authorizationv1 "k8s.io/api/authorization/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
)

// api is the engine's client of the four API groups it uses, on a scheme
// of their own. client-go's typed clientset would do, but it registers
// every group of Kubernetes when the program starts: that cost every
// wflow command, with Kubernetes or not, 4.7 ms of start-up and 27 MB of
// memory (docs/design.md).
type api struct {
	core, batch, networking, authorization *rest.RESTClient
	params                                 runtime.ParameterCodec
}

// newAPI makes the clients of config's cluster.
func newAPI(config *rest.Config) (*api, error) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, batchv1.AddToScheme, networkingv1.AddToScheme, authorizationv1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	// Options and status of every group, as client-go's scheme has them.
	metav1.AddToGroupVersion(scheme, schema.GroupVersion{Version: "v1"})
	codecs := serializer.NewCodecFactory(scheme)
	a := &api{params: runtime.NewParameterCodec(scheme)}
	for _, c := range []struct {
		gv      schema.GroupVersion
		apiPath string
		client  **rest.RESTClient
	}{
		{corev1.SchemeGroupVersion, "/api", &a.core},
		{batchv1.SchemeGroupVersion, "/apis", &a.batch},
		{networkingv1.SchemeGroupVersion, "/apis", &a.networking},
		{authorizationv1.SchemeGroupVersion, "/apis", &a.authorization},
	} {
		cfg := rest.CopyConfig(config)
		gv := c.gv
		cfg.GroupVersion, cfg.APIPath = &gv, c.apiPath
		cfg.NegotiatedSerializer = codecs.WithoutConversion()
		if cfg.UserAgent == "" {
			cfg.UserAgent = rest.DefaultKubernetesUserAgent()
		}
		rc, err := rest.RESTClientFor(cfg)
		if err != nil {
			return nil, fmt.Errorf("a client of %s: %w", gv, err)
		}
		*c.client = rc
	}
	return a, nil
}

// resourceClient is one resource of one namespace ("" for a cluster-wide one).
type resourceClient struct {
	rc        *rest.RESTClient
	params    runtime.ParameterCodec
	name, ns  string
	namespace bool
}

func (a *api) jobs(ns string) resourceClient {
	return resourceClient{a.batch, a.params, "jobs", ns, true}
}
func (a *api) pods(ns string) resourceClient {
	return resourceClient{a.core, a.params, "pods", ns, true}
}
func (a *api) events(ns string) resourceClient {
	return resourceClient{a.core, a.params, "events", ns, true}
}
func (a *api) networkPolicies(ns string) resourceClient {
	return resourceClient{a.networking, a.params, "networkpolicies", ns, true}
}
func (a *api) claims(ns string) resourceClient {
	return resourceClient{a.core, a.params, "persistentvolumeclaims", ns, true}
}
func (a *api) accessReviews() resourceClient {
	return resourceClient{a.authorization, a.params, "selfsubjectaccessreviews", "", false}
}

func (r resourceClient) request(req *rest.Request) *rest.Request {
	if r.namespace {
		req = req.Namespace(r.ns)
	}
	return req.Resource(r.name)
}

// create makes obj and decodes what the server made into out.
func (r resourceClient) create(ctx context.Context, obj, out runtime.Object) error {
	return r.request(r.rc.Post()).Body(obj).Do(ctx).Into(out)
}

// createDryRun asks the server to check obj as a create, without making
// it.
func (r resourceClient) createDryRun(ctx context.Context, obj runtime.Object) error {
	opts := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	return r.request(r.rc.Post()).VersionedParams(&opts, r.params).Body(obj).Do(ctx).Error()
}

// get decodes the object named name into out.
func (r resourceClient) get(ctx context.Context, name string, out runtime.Object) error {
	return r.request(r.rc.Get()).Name(name).Do(ctx).Into(out)
}

// list decodes the objects opts selects into out, a list.
func (r resourceClient) list(ctx context.Context, opts metav1.ListOptions, out runtime.Object) error {
	return r.request(r.rc.Get()).VersionedParams(&opts, r.params).Do(ctx).Into(out)
}

// delete deletes the object named name.
func (r resourceClient) delete(ctx context.Context, name string, opts metav1.DeleteOptions) error {
	return r.request(r.rc.Delete()).Name(name).Body(&opts).Do(ctx).Error()
}

// watch watches the objects opts selects.
func (r resourceClient) watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return r.request(r.rc.Get()).VersionedParams(&opts, r.params).Watch(ctx)
}

// logs streams the log of the pod named name.
func (r resourceClient) logs(ctx context.Context, name string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	return r.request(r.rc.Get()).Name(name).SubResource("log").VersionedParams(opts, r.params).Stream(ctx)
}
