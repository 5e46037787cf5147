package deploy_test

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// renderCase is one kustomization the test renders and checks.
type renderCase struct {
	dir string // from this module's directory
	// complete: the render holds Intake's dependencies (NATS, PostgreSQL):
	// every same-namespace NetworkPolicy peer must select pods of it, and
	// the policies are checked against the pipeline's flows (checkFlows).
	complete bool
	prod     bool
	// monitored: the render has the Prometheus operator's objects.
	monitored bool
	// external are the objects the render uses but does not hold, by
	// "Kind/name", with their keys: the operator creates them before
	// applying (deploy/README.md says how). Secrets that CloudNativePG makes
	// for a Cluster of the render are added by the test.
	external map[string][]string
}

// The keys of the Secrets the operator creates (deploy/README.md).
var (
	apiSecretKeys    = []string{"INTAKE_ENCRYPTION_KEYS", "INTAKE_BOOTSTRAP_TOKEN", "INTAKE_WORKER_TOKEN"}
	workerSecretKeys = []string{"INTAKE_WORKER_TOKEN"}
	natsSecretKeys   = []string{"INTAKE_NATS_USER", "INTAKE_NATS_PASSWORD"}
	// cnpgAppSecretKeys are the keys of the Secret <cluster>-app that
	// CloudNativePG makes for a Cluster's application user.
	cnpgAppSecretKeys = []string{"username", "password", "host", "port", "dbname", "uri", "jdbc-uri", "pgpass", "fqdn-uri", "fqdn-jdbc-uri"}
	// cnpgCASecretKeys are the keys of the Secret <cluster>-ca: the CA
	// that signs the server's certificate (clients' sslrootcert) and its key.
	cnpgCASecretKeys = []string{"ca.crt", "ca.key"}
)

var renderCases = []renderCase{
	{
		dir: "k8s/base", monitored: true,
		external: map[string][]string{
			"Secret/intake-database": {"INTAKE_DATABASE_URL"}, "Secret/intake-api": apiSecretKeys,
			"Secret/intake-worker": workerSecretKeys, "Secret/intake-nats": natsSecretKeys,
		},
	},
	{dir: "k8s/overlays/dev", complete: true},
	{
		dir: "k8s/overlays/prod", complete: true, prod: true, monitored: true,
		external: map[string][]string{"Secret/intake-api": apiSecretKeys, "Secret/intake-worker": workerSecretKeys, "Secret/intake-nats": natsSecretKeys},
	},
}

// workers are the subcommands that consume a JetStream stream and scale
// on its lag.
var workers = []string{"fetcher", "mapper", "loader"}

// pod is the pod template of a workload of the render, or the pods an
// operator makes for a custom resource of it (spec nil).
type pod struct {
	owner     string // "Deployment intake/intake-api"
	kind      string
	name      string
	namespace string
	labels    map[string]string
	spec      *corev1.PodSpec
	replicas  *int32
}

// rendered is a render's objects with lookups.
type rendered struct {
	rc      renderCase
	objs    []object
	byKey   map[string]object // "Kind/namespace/name"
	pods    []pod
	readme  string
	flags   map[string]bool
	cmds    map[string]bool
	natsVal map[string]any
}

func (r *rendered) get(kind, ns, name string) (object, bool) {
	o, ok := r.byKey[kind+"/"+ns+"/"+name]
	return o, ok
}

func (r *rendered) all(kind string) []object {
	var out []object
	for _, o := range r.objs {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// selected are the pods of namespace ns that sel selects.
func (r *rendered) selected(t *testing.T, ns string, sel *metav1.LabelSelector) []pod {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Errorf("selector %v: %v", sel, err)
		return nil
	}
	var out []pod
	for _, p := range r.pods {
		if p.namespace == ns && s.Matches(labels.Set(p.labels)) {
			out = append(out, p)
		}
	}
	return out
}

func newRendered(t *testing.T, rc renderCase, readme string, flags, cmds map[string]bool, natsVal map[string]any) *rendered {
	r := &rendered{rc: rc, objs: renderObjects(t, rc.dir), byKey: map[string]object{}, readme: readme, flags: flags, cmds: cmds, natsVal: natsVal}
	external := map[string][]string{}
	for k, v := range rc.external {
		external[k] = v
	}
	r.rc.external = external
	for _, o := range r.objs {
		key := o.Kind + "/" + o.Namespace + "/" + o.Name
		if _, dup := r.byKey[key]; dup {
			t.Errorf("%s: two objects %s", rc.dir, key)
		}
		r.byKey[key] = o
		if p, ok := podOf(o); ok {
			r.pods = append(r.pods, p)
		}
		if v, ok := o.Obj.(*cnpgCluster); ok {
			// CloudNativePG labels its instances' pods cnpg.io/cluster and
			// adds the inherited labels; it makes the Secret <name>-app.
			l := map[string]string{"cnpg.io/cluster": o.Name, "cnpg.io/podRole": "instance"}
			if v.Spec.InheritedMetadata != nil {
				for k, val := range v.Spec.InheritedMetadata.Labels {
					l[k] = val
				}
			}
			r.pods = append(r.pods, pod{o.String(), o.Kind, o.Name, o.Namespace, l, nil, nil})
			r.rc.external["Secret/"+o.Name+"-app"] = cnpgAppSecretKeys
			r.rc.external["Secret/"+o.Name+"-ca"] = cnpgCASecretKeys
		}
	}
	return r
}

// podOf is the pod template of a workload.
func podOf(o object) (pod, bool) {
	switch v := o.Obj.(type) {
	case *appsv1.Deployment:
		return pod{o.String(), o.Kind, o.Name, o.Namespace, v.Spec.Template.Labels, &v.Spec.Template.Spec, v.Spec.Replicas}, true
	case *appsv1.StatefulSet:
		return pod{o.String(), o.Kind, o.Name, o.Namespace, v.Spec.Template.Labels, &v.Spec.Template.Spec, v.Spec.Replicas}, true
	case *batchv1.Job:
		return pod{o.String(), o.Kind, o.Name, o.Namespace, v.Spec.Template.Labels, &v.Spec.Template.Spec, nil}, true
	}
	return pod{}, false
}

func TestManifests(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	flags, cmds := flagEnvNames(t), subcommands(t)
	natsVal := natsValues(t)
	for _, rc := range renderCases {
		t.Run(strings.TrimPrefix(rc.dir, "k8s/"), func(t *testing.T) {
			t.Parallel()
			r := newRendered(t, rc, string(readme), flags, cmds, natsVal)
			if len(r.objs) == 0 {
				t.Fatal("rendered no objects")
			}
			for name, check := range map[string]func(*testing.T, *rendered){
				"names and labels":   checkNamesAndLabels,
				"namespaces":         checkNamespaces,
				"containers":         checkContainers,
				"intake containers":  checkIntakeContainers,
				"references":         checkReferences,
				"disruption budgets": checkPDBs,
				"services":           checkServices,
				"network policies":   checkNetworkPolicies,
				"flows":              checkFlows,
				"autoscaling":        checkAutoscaling,
				"monitoring":         checkMonitoring,
				"config":             checkConfig,
				"prod":               checkProd,
				"credentials":        checkCredentials,
				"API TLS":            checkAPITLS,
				"database TLS":       checkDatabaseTLS,
			} {
				t.Run(name, func(t *testing.T) { check(t, r) })
			}
		})
	}
}

func checkNamesAndLabels(t *testing.T, r *rendered) {
	for _, o := range r.objs {
		if errs := validation.IsDNS1123Subdomain(o.Name); len(errs) > 0 {
			t.Errorf("%s: name: %v", o, errs)
		}
		meta := metaOf(o)
		for k, v := range meta.Labels {
			if errs := append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...); len(errs) > 0 {
				t.Errorf("%s: label %s=%s: %v", o, k, v, errs)
			}
		}
	}
	for _, p := range r.pods {
		if p.spec == nil {
			continue
		}
		for k, v := range p.labels {
			if errs := append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...); len(errs) > 0 {
				t.Errorf("%s: pod label %s=%s: %v", p.owner, k, v, errs)
			}
		}
	}
}

// metaOf is the ObjectMeta of a decoded object.
func metaOf(o object) *metav1.ObjectMeta {
	type hasMeta interface{ GetObjectMeta() metav1.Object }
	if m, ok := o.Obj.(hasMeta); ok {
		if om, ok := m.GetObjectMeta().(*metav1.ObjectMeta); ok {
			return om
		}
	}
	return &metav1.ObjectMeta{}
}

func checkNamespaces(t *testing.T, r *rendered) {
	nss := r.all("Namespace")
	if len(nss) != 1 {
		t.Fatalf("want one Namespace in the render, got %d", len(nss))
	}
	ns := nss[0].Name
	if nss[0].Obj.(*corev1.Namespace).Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("Namespace %s does not enforce the restricted Pod Security Standard (pod-security.kubernetes.io/enforce=restricted)", ns)
	}
	for _, o := range r.objs {
		if o.Kind == "Namespace" {
			continue
		}
		if o.Namespace != ns {
			t.Errorf("%s: namespace %q, want %q (the render's Namespace)", o, o.Namespace, ns)
		}
	}
}

// isIntake reports whether a container runs the Intake image.
func isIntake(c corev1.Container) bool {
	repo, _ := splitImage(c.Image)
	return repo == "intake" || strings.HasSuffix(repo, "/intake")
}

// splitImage splits an image reference into repository and tag (empty
// without one); a digest counts as a tag.
func splitImage(image string) (repo, tag string) {
	if i := strings.Index(image, "@"); i >= 0 {
		return image[:i], image[i+1:]
	}
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		return image[:i], image[i+1:]
	}
	return image, ""
}

func allContainers(spec *corev1.PodSpec) []corev1.Container {
	return append(slices.Clone(spec.InitContainers), spec.Containers...)
}

func checkContainers(t *testing.T, r *rendered) {
	for _, p := range r.pods {
		if p.spec == nil {
			continue
		}
		psc := p.spec.SecurityContext
		if psc == nil {
			psc = &corev1.PodSecurityContext{}
		}
		if p.spec.HostNetwork || p.spec.HostPID || p.spec.HostIPC {
			t.Errorf("%s: uses the host's network, PID or IPC namespace", p.owner)
		}
		for _, c := range allContainers(p.spec) {
			where := fmt.Sprintf("%s: container %s", p.owner, c.Name)
			if c.Image == "" {
				t.Errorf("%s: no image", where)
			}
			checkResources(t, where, c.Resources)
			sc := c.SecurityContext
			if sc == nil {
				sc = &corev1.SecurityContext{}
			}
			nonRoot := sc.RunAsNonRoot
			if nonRoot == nil {
				nonRoot = psc.RunAsNonRoot
			}
			if nonRoot == nil || !*nonRoot {
				t.Errorf("%s: runAsNonRoot is not true (container or pod)", where)
			}
			uid := sc.RunAsUser
			if uid == nil {
				uid = psc.RunAsUser
			}
			if uid != nil && *uid == 0 {
				t.Errorf("%s: runAsUser 0", where)
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("%s: readOnlyRootFilesystem is not true", where)
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("%s: allowPrivilegeEscalation is not false", where)
			}
			if sc.Privileged != nil && *sc.Privileged {
				t.Errorf("%s: privileged", where)
			}
			if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
				t.Errorf("%s: capabilities must drop ALL and add none, got %+v", where, sc.Capabilities)
			}
			seccomp := sc.SeccompProfile
			if seccomp == nil {
				seccomp = psc.SeccompProfile
			}
			if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("%s: seccomp profile is not RuntimeDefault (container or pod)", where)
			}
			if r.rc.prod {
				if _, tag := splitImage(c.Image); tag == "" || tag == "latest" {
					t.Errorf("%s: image %q: prod pins a tag or digest, not latest", where, c.Image)
				}
			}
		}
		for _, c := range p.spec.Containers {
			where := fmt.Sprintf("%s: container %s", p.owner, c.Name)
			if c.ReadinessProbe == nil {
				t.Errorf("%s: no readiness probe", where)
			}
			if c.LivenessProbe == nil {
				t.Errorf("%s: no liveness probe", where)
			}
			for kind, pr := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe} {
				if pr != nil {
					checkProbePort(t, where+": "+kind+" probe", c, pr)
				}
			}
		}
	}
}

func checkResources(t *testing.T, where string, res corev1.ResourceRequirements) {
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := res.Requests[name]
		lim, hasLim := res.Limits[name]
		switch {
		case !hasReq || req.IsZero():
			t.Errorf("%s: no %s request", where, name)
		case !hasLim || lim.IsZero():
			t.Errorf("%s: no %s limit", where, name)
		case req.Cmp(lim) > 0:
			t.Errorf("%s: %s request %s above its limit %s", where, name, req.String(), lim.String())
		}
	}
}

// declaresPort reports whether c declares port p (a name or a number).
func declaresPort(c corev1.Container, p intstr.IntOrString) bool {
	for _, cp := range c.Ports {
		if p.Type == intstr.String && cp.Name == p.StrVal || p.Type == intstr.Int && cp.ContainerPort == p.IntVal {
			return true
		}
	}
	return false
}

func checkProbePort(t *testing.T, where string, c corev1.Container, pr *corev1.Probe) {
	var port *intstr.IntOrString
	switch {
	case pr.HTTPGet != nil:
		port = &pr.HTTPGet.Port
	case pr.TCPSocket != nil:
		port = &pr.TCPSocket.Port
	case pr.GRPC != nil:
		p := intstr.FromInt32(pr.GRPC.Port)
		port = &p
	case pr.Exec != nil:
		return
	default:
		t.Errorf("%s: no handler", where)
		return
	}
	if !declaresPort(c, *port) {
		t.Errorf("%s: port %s is not a port the container declares", where, port.String())
	}
}

// envNames are the variables a container gets: its env and the keys of the
// ConfigMaps and Secrets of its envFrom that the render holds.
func (r *rendered) envNames(ns string, c corev1.Container) []string {
	var names []string
	for _, e := range c.Env {
		names = append(names, e.Name)
	}
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			if o, ok := r.get("ConfigMap", ns, ef.ConfigMapRef.Name); ok {
				for k := range o.Obj.(*corev1.ConfigMap).Data {
					names = append(names, ef.Prefix+k)
				}
			}
		case ef.SecretRef != nil:
			for _, k := range r.rc.external["Secret/"+ef.SecretRef.Name] {
				names = append(names, ef.Prefix+k)
			}
			if o, ok := r.get("Secret", ns, ef.SecretRef.Name); ok {
				s := o.Obj.(*corev1.Secret)
				for k := range s.Data {
					names = append(names, ef.Prefix+k)
				}
				for k := range s.StringData {
					names = append(names, ef.Prefix+k)
				}
			}
		}
	}
	return names
}

func checkIntakeContainers(t *testing.T, r *rendered) {
	n := 0
	for _, p := range r.pods {
		if p.spec == nil {
			continue
		}
		intakePod := false
		for i, c := range allContainers(p.spec) {
			if !isIntake(c) {
				continue
			}
			initContainer := i < len(p.spec.InitContainers)
			intakePod = true
			n++
			where := fmt.Sprintf("%s: container %s", p.owner, c.Name)
			if len(c.Command) > 0 {
				t.Errorf("%s: sets command %v: the image's entrypoint is intake, args pick the subcommand", where, c.Command)
			}
			if len(c.Args) == 0 || !r.cmds[c.Args[0]] || c.Args[0] == "all" || c.Args[0] == "dev" {
				t.Errorf("%s: args %v: want one of intake's service subcommands first", where, c.Args)
			}
			for _, name := range r.envNames(p.namespace, c) {
				if strings.HasPrefix(name, "INTAKE_") && !r.flags[name] {
					t.Errorf("%s: %s is the variable of no intake flag (cmd/internal/cli)", where, name)
				}
			}
			if !initContainer {
				for kind, pr := range map[string]*corev1.Probe{"/readyz": c.ReadinessProbe, "/healthz": c.LivenessProbe} {
					if pr == nil || pr.HTTPGet == nil || pr.HTTPGet.Path != kind {
						t.Errorf("%s: probe should be GET %s (pkg/serve)", where, kind)
					}
				}
			}
		}
		if !intakePod {
			continue
		}
		if p.labels["app.kubernetes.io/part-of"] != "intake" {
			t.Errorf("%s: pod lacks label app.kubernetes.io/part-of=intake, which the NetworkPolicies select", p.owner)
		}
		if sa := p.spec.ServiceAccountName; sa == "" || sa == "default" {
			t.Errorf("%s: runs as the default ServiceAccount, want its own", p.owner)
		}
		if a := p.spec.AutomountServiceAccountToken; a == nil || *a {
			t.Errorf("%s: mounts a ServiceAccount token; Intake does not use the Kubernetes API", p.owner)
		}
	}
	if n == 0 {
		t.Error("no container runs the intake image")
	}
}

// ref is a reference from a pod to an object by name.
type ref struct {
	kind, name, key string
	optional        bool
}

func podRefs(spec *corev1.PodSpec) []ref {
	opt := func(b *bool) bool { return b != nil && *b }
	var refs []ref
	if spec.ServiceAccountName != "" {
		refs = append(refs, ref{kind: "ServiceAccount", name: spec.ServiceAccountName})
	}
	for _, s := range spec.ImagePullSecrets {
		refs = append(refs, ref{kind: "Secret", name: s.Name})
	}
	for _, c := range allContainers(spec) {
		for _, ef := range c.EnvFrom {
			if ef.ConfigMapRef != nil {
				refs = append(refs, ref{kind: "ConfigMap", name: ef.ConfigMapRef.Name, optional: opt(ef.ConfigMapRef.Optional)})
			}
			if ef.SecretRef != nil {
				refs = append(refs, ref{kind: "Secret", name: ef.SecretRef.Name, optional: opt(ef.SecretRef.Optional)})
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				continue
			}
			if k := e.ValueFrom.ConfigMapKeyRef; k != nil {
				refs = append(refs, ref{kind: "ConfigMap", name: k.Name, key: k.Key, optional: opt(k.Optional)})
			}
			if k := e.ValueFrom.SecretKeyRef; k != nil {
				refs = append(refs, ref{kind: "Secret", name: k.Name, key: k.Key, optional: opt(k.Optional)})
			}
		}
	}
	for _, v := range spec.Volumes {
		if v.ConfigMap != nil {
			refs = append(refs, ref{kind: "ConfigMap", name: v.ConfigMap.Name, optional: opt(v.ConfigMap.Optional)})
		}
		if v.Secret != nil {
			refs = append(refs, ref{kind: "Secret", name: v.Secret.SecretName, optional: opt(v.Secret.Optional)})
		}
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.ConfigMap != nil {
					refs = append(refs, ref{kind: "ConfigMap", name: s.ConfigMap.Name, optional: opt(s.ConfigMap.Optional)})
				}
				if s.Secret != nil {
					refs = append(refs, ref{kind: "Secret", name: s.Secret.Name, optional: opt(s.Secret.Optional)})
				}
			}
		}
	}
	return refs
}

func hasKey(o object, key string) bool {
	switch v := o.Obj.(type) {
	case *corev1.ConfigMap:
		_, a := v.Data[key]
		_, b := v.BinaryData[key]
		return a || b
	case *corev1.Secret:
		_, a := v.Data[key]
		_, b := v.StringData[key]
		return a || b
	}
	return false
}

func checkReferences(t *testing.T, r *rendered) {
	used := map[string]bool{}
	for _, p := range r.pods {
		if p.spec == nil {
			continue
		}
		for _, rf := range podRefs(p.spec) {
			o, ok := r.get(rf.kind, p.namespace, rf.name)
			extKeys, ext := r.rc.external[rf.kind+"/"+rf.name]
			switch {
			case ok && rf.key != "" && !hasKey(o, rf.key):
				t.Errorf("%s: %s %s has no key %q", p.owner, rf.kind, rf.name, rf.key)
			case ok:
			case r.certificateSecret(p.namespace, rf.name) != nil:
				// Made by cert-manager from a Certificate of the render.
			case ext && rf.key != "" && !slices.Contains(extKeys, rf.key):
				t.Errorf("%s: %s %s, made outside the render, has no key %q (it has %v)", p.owner, rf.kind, rf.name, rf.key, extKeys)
			case ext:
				used[rf.kind+"/"+rf.name] = true
			case rf.optional:
			default:
				t.Errorf("%s: %s %s is neither in the render nor provided by the operator (renderCase.external)", p.owner, rf.kind, rf.name)
			}
		}
	}
	for ext := range r.rc.external {
		name := strings.SplitN(ext, "/", 2)[1]
		if _, ok := r.get(strings.SplitN(ext, "/", 2)[0], r.all("Namespace")[0].Name, name); ok {
			t.Errorf("%s is listed as provided by the operator but the render holds it", ext)
		}
		if used[ext] && !strings.Contains(r.readme, name) {
			t.Errorf("%s is used, not in the render, and deploy/README.md does not say how to make it", ext)
		}
	}
}

func checkPDBs(t *testing.T, r *rendered) {
	pdbs := r.all("PodDisruptionBudget")
	for _, p := range r.pods {
		if p.kind != "Deployment" {
			continue
		}
		d := r.byKey["Deployment/"+p.namespace+"/"+p.name].Obj.(*appsv1.Deployment)
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(p.labels)) {
			t.Errorf("%s: selector %v does not select its own pod template (%v)", p.owner, d.Spec.Selector, err)
		}
		covered := 0
		for _, o := range pdbs {
			pdb := o.Obj.(*policyv1.PodDisruptionBudget)
			s, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
			if err != nil {
				t.Errorf("%s: %v", o, err)
				continue
			}
			if o.Namespace == p.namespace && !s.Empty() && s.Matches(labels.Set(p.labels)) {
				covered++
				if pdb.Spec.MinAvailable == nil && pdb.Spec.MaxUnavailable == nil {
					t.Errorf("%s: neither minAvailable nor maxUnavailable", o)
				}
			}
		}
		if covered != 1 {
			t.Errorf("%s: %d PodDisruptionBudgets select its pods, want 1", p.owner, covered)
		}
	}
}

func checkServices(t *testing.T, r *rendered) {
	for _, o := range r.all("Service") {
		svc := o.Obj.(*corev1.Service)
		if len(svc.Spec.Selector) == 0 {
			t.Errorf("%s: no selector", o)
			continue
		}
		pods := r.selected(t, o.Namespace, &metav1.LabelSelector{MatchLabels: svc.Spec.Selector})
		if len(pods) == 0 {
			t.Errorf("%s: selects no pod of the render", o)
		}
		for _, sp := range svc.Spec.Ports {
			target := sp.TargetPort
			if target.Type == intstr.Int && target.IntVal == 0 {
				target = intstr.FromInt32(sp.Port)
			}
			for _, p := range pods {
				if p.spec == nil {
					continue
				}
				if !slices.ContainsFunc(p.spec.Containers, func(c corev1.Container) bool { return declaresPort(c, target) }) {
					t.Errorf("%s: port %s targets %s, which %s does not declare", o, sp.Name, target.String(), p.owner)
				}
			}
		}
	}
}

// peerPods are the pods of the render a same-namespace NetworkPolicy peer
// selects; ok is false for a peer in other namespaces or an ipBlock.
func (r *rendered) peerPods(t *testing.T, ns string, peer networkingv1.NetworkPolicyPeer) (pods []pod, ok bool) {
	if peer.NamespaceSelector != nil || peer.IPBlock != nil || peer.PodSelector == nil {
		return nil, false
	}
	return r.selected(t, ns, peer.PodSelector), true
}

func checkNetworkPolicies(t *testing.T, r *rendered) {
	nps := r.all("NetworkPolicy")
	if len(nps) == 0 {
		t.Fatal("no NetworkPolicy")
	}
	denyAll := false
	for _, o := range nps {
		np := o.Obj.(*networkingv1.NetworkPolicy)
		pods := r.selected(t, o.Namespace, &np.Spec.PodSelector)
		if len(pods) == 0 {
			t.Errorf("%s: podSelector %v selects no pod of the render", o, np.Spec.PodSelector)
		}
		if len(np.Spec.PolicyTypes) == 0 {
			t.Errorf("%s: no policyTypes", o)
		}
		if slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) && slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) &&
			len(np.Spec.Ingress) == 0 && len(np.Spec.Egress) == 0 {
			denyAll = true
		}
		// An ingress port is one a selected pod declares.
		for i, rule := range np.Spec.Ingress {
			for _, pp := range rule.Ports {
				if pp.Port == nil {
					continue
				}
				if !anyDeclares(pods, *pp.Port) {
					t.Errorf("%s: ingress rule %d allows port %s, which no selected pod of the render declares", o, i, pp.Port.String())
				}
			}
			for _, peer := range rule.From {
				if peerPods, ok := r.peerPods(t, o.Namespace, peer); ok && len(peer.PodSelector.MatchLabels)+len(peer.PodSelector.MatchExpressions) > 0 && len(peerPods) == 0 && r.rc.complete {
					t.Errorf("%s: ingress rule %d: peer %v selects no pod of the render", o, i, peer.PodSelector)
				}
			}
		}
		// An egress peer in the namespace is a pod of the render, and the
		// port is one it declares.
		for i, rule := range np.Spec.Egress {
			for _, peer := range rule.To {
				peerPods, ok := r.peerPods(t, o.Namespace, peer)
				if !ok || !r.rc.complete {
					continue
				}
				if len(peerPods) == 0 {
					t.Errorf("%s: egress rule %d: peer %v selects no pod of the render", o, i, peer.PodSelector)
				}
				for _, pp := range rule.Ports {
					if pp.Port != nil && !anyDeclares(peerPods, *pp.Port) {
						t.Errorf("%s: egress rule %d allows port %s, which no peer pod of the render declares", o, i, pp.Port.String())
					}
				}
			}
		}
	}
	if !denyAll {
		t.Error("no NetworkPolicy denies all ingress and egress by default")
	}
	// Every pod of the render is under some policy.
	for _, p := range r.pods {
		if !slices.ContainsFunc(nps, func(o object) bool {
			s, _ := metav1.LabelSelectorAsSelector(&o.Obj.(*networkingv1.NetworkPolicy).Spec.PodSelector)
			return o.Namespace == p.namespace && s.Matches(labels.Set(p.labels))
		}) {
			t.Errorf("%s: no NetworkPolicy selects its pods", p.owner)
		}
	}
}

// anyDeclares reports whether a pod of pods declares port, or whether none
// of them is a pod the render specifies (an operator's: ports unknown).
func anyDeclares(pods []pod, port intstr.IntOrString) bool {
	known := false
	for _, p := range pods {
		if p.spec == nil {
			continue
		}
		known = true
		if slices.ContainsFunc(p.spec.Containers, func(c corev1.Container) bool { return declaresPort(c, port) }) {
			return true
		}
	}
	return !known
}

// subcommandOf is the intake subcommand a pod runs ("" for other pods).
func subcommandOf(p pod) string {
	if p.spec == nil {
		return ""
	}
	for _, c := range p.spec.Containers {
		if isIntake(c) && len(c.Args) > 0 {
			return c.Args[0]
		}
	}
	return ""
}

func checkAutoscaling(t *testing.T, r *rendered) {
	scalers := map[string][]string{} // Deployment name -> autoscalers
	for _, o := range r.all("HorizontalPodAutoscaler") {
		hpa := o.Obj.(*autoscalingv2.HorizontalPodAutoscaler)
		ref := hpa.Spec.ScaleTargetRef
		if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" {
			t.Errorf("%s: targets %s %s, want an apps/v1 Deployment", o, ref.APIVersion, ref.Kind)
		}
		scalers[ref.Name] = append(scalers[ref.Name], o.String())
		if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 1 || *hpa.Spec.MinReplicas > hpa.Spec.MaxReplicas {
			t.Errorf("%s: replicas %v to %d", o, hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
		}
		if len(hpa.Spec.Metrics) == 0 {
			t.Errorf("%s: no metrics", o)
		}
	}
	natsEndpoint := fmt.Sprintf("%s-headless.nats.svc.cluster.local:%v", r.natsVal["fullnameOverride"], valuesGet(r.natsVal, "config", "monitor", "port"))
	for _, o := range r.all("ScaledObject") {
		so := o.Obj.(*scaledObject)
		ref := so.Spec.ScaleTargetRef
		if ref.Kind != "" && ref.Kind != "Deployment" || ref.APIVersion != "" && ref.APIVersion != "apps/v1" {
			t.Errorf("%s: targets %s %s, want an apps/v1 Deployment", o, ref.APIVersion, ref.Kind)
		}
		scalers[ref.Name] = append(scalers[ref.Name], o.String())
		if so.Spec.MinReplicaCount == nil || so.Spec.MaxReplicaCount == nil || *so.Spec.MinReplicaCount < 1 || *so.Spec.MinReplicaCount > *so.Spec.MaxReplicaCount {
			t.Errorf("%s: replicas %v to %v: want 1 <= min <= max", o, so.Spec.MinReplicaCount, so.Spec.MaxReplicaCount)
		}
		target, ok := r.get("Deployment", o.Namespace, ref.Name)
		if !ok {
			continue // reported below
		}
		var svc string
		for _, p := range r.pods {
			if p.owner == target.String() {
				svc = subcommandOf(p)
			}
		}
		if !slices.Contains(workers, svc) {
			t.Errorf("%s: scales %s, which runs %q, not a worker that consumes a stream", o, ref.Name, svc)
			continue
		}
		stream, consumer := workerConsumer(t, svc)
		lag := 0
		for _, tr := range so.Spec.Triggers {
			switch tr.Type {
			case "nats-jetstream":
				lag++
				m := tr.Metadata
				if m["stream"] != stream || m["consumer"] != consumer {
					t.Errorf("%s: scales on %s/%s, but %s consumes %s/%s (services/%s)", o, m["stream"], m["consumer"], svc, stream, consumer, svc)
				}
				if m["account"] != "$G" {
					t.Errorf("%s: account %q, want $G (NATS without accounts)", o, m["account"])
				}
				if m["natsServerMonitoringEndpoint"] != natsEndpoint {
					t.Errorf("%s: natsServerMonitoringEndpoint %q, want %q (deploy/k8s/nats/values.yaml)", o, m["natsServerMonitoringEndpoint"], natsEndpoint)
				}
				if n, err := strconv.Atoi(m["lagThreshold"]); err != nil || n < 1 {
					t.Errorf("%s: lagThreshold %q", o, m["lagThreshold"])
				}
				for k := range m {
					if !slices.Contains([]string{"natsServerMonitoringEndpoint", "account", "stream", "consumer", "lagThreshold", "activationLagThreshold", "useHttps"}, k) {
						t.Errorf("%s: nats-jetstream has no parameter %q", o, k)
					}
				}
			case "cpu":
				if tr.MetricType != "Utilization" || tr.Metadata["value"] == "" {
					t.Errorf("%s: cpu trigger needs metricType Utilization and a value", o)
				}
			default:
				t.Errorf("%s: unexpected trigger type %q", o, tr.Type)
			}
		}
		if lag != 1 {
			t.Errorf("%s: %d nats-jetstream triggers, want 1", o, lag)
		}
	}
	for name, by := range scalers {
		if len(by) > 1 {
			t.Errorf("Deployment %s has %d autoscalers, which fight: %v", name, len(by), by)
		}
		if _, ok := r.get("Deployment", r.all("Namespace")[0].Name, name); !ok {
			t.Errorf("%v: target Deployment %s is not in the render", by, name)
		}
	}
	for _, p := range r.pods {
		if p.kind != "Deployment" {
			continue
		}
		by := scalers[p.name]
		if len(by) > 0 && p.replicas != nil {
			t.Errorf("%s: sets replicas while %v scales it: every apply would reset the count", p.owner, by)
		}
		if slices.Contains(workers, subcommandOf(p)) && len(by) == 0 {
			t.Errorf("%s: a worker without an autoscaler", p.owner)
		}
	}
}

func checkMonitoring(t *testing.T, r *rendered) {
	sms := r.all("ServiceMonitor")
	if !r.rc.monitored {
		for _, kind := range []string{"ServiceMonitor", "PodMonitor", "PrometheusRule"} {
			if len(r.all(kind)) > 0 {
				t.Errorf("has a %s, but renderCase.monitored is false", kind)
			}
		}
		return
	}
	if len(sms) == 0 {
		t.Error("no ServiceMonitor")
	}
	scraped := map[string]bool{}
	for _, o := range sms {
		sm := o.Obj.(*monitoringv1.ServiceMonitor)
		if sm.Spec.NamespaceSelector.Any || len(sm.Spec.NamespaceSelector.MatchNames) > 0 {
			t.Errorf("%s: selects Services of other namespaces", o)
		}
		sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
		if err != nil || sel.Empty() {
			t.Errorf("%s: selector %v (%v)", o, sm.Spec.Selector, err)
			continue
		}
		n := 0
		for _, so := range r.all("Service") {
			svc := so.Obj.(*corev1.Service)
			if so.Namespace != o.Namespace || !sel.Matches(labels.Set(svc.Labels)) {
				continue
			}
			n++
			for _, ep := range sm.Spec.Endpoints {
				if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
					t.Errorf("%s: endpoint port %q is not a port of %s", o, ep.Port, so)
				}
			}
			for _, p := range r.selected(t, so.Namespace, &metav1.LabelSelector{MatchLabels: svc.Spec.Selector}) {
				scraped[p.owner] = true
			}
		}
		if n == 0 {
			t.Errorf("%s: selects no Service of the render", o)
		}
	}
	for _, p := range r.pods {
		if subcommandOf(p) != "" && !scraped[p.owner] {
			t.Errorf("%s: no ServiceMonitor scrapes it", p.owner)
		}
	}
	for _, o := range r.all("PodMonitor") {
		pm := o.Obj.(*monitoringv1.PodMonitor)
		if len(r.selected(t, o.Namespace, &pm.Spec.Selector)) == 0 {
			t.Errorf("%s: selects no pod of the render", o)
		}
	}
	for _, o := range r.all("PrometheusRule") {
		if len(o.Obj.(*monitoringv1.PrometheusRule).Spec.Groups) == 0 {
			t.Errorf("%s: no rule groups", o)
		}
	}
}

// portOf is the port of a host:port address.
func portOf(t *testing.T, what, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s %q: %v", what, addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%s %q: %v", what, addr, err)
	}
	return int32(n)
}

// resolvePort is the number of port p (a name or a number) of c.
func resolvePort(c corev1.Container, p intstr.IntOrString) int32 {
	if p.Type == intstr.Int {
		return p.IntVal
	}
	return containerPort(c, p.StrVal)
}

// containerPort is the number of c's port called name, 0 if none.
func containerPort(c corev1.Container, name string) int32 {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

func checkConfig(t *testing.T, r *rendered) {
	ns := r.all("Namespace")[0].Name
	o, ok := r.get("ConfigMap", ns, "intake-config")
	if !ok {
		t.Fatal("no ConfigMap intake-config")
	}
	cfg := o.Obj.(*corev1.ConfigMap).Data
	httpPort := portOf(t, "INTAKE_HTTP_ADDR", cfg["INTAKE_HTTP_ADDR"])
	grpcPort := portOf(t, "INTAKE_GRPC_ADDR", cfg["INTAKE_GRPC_ADDR"])
	restPort := portOf(t, "INTAKE_REST_ADDR", cfg["INTAKE_REST_ADDR"])
	grace, err := time.ParseDuration(cfg["INTAKE_SHUTDOWN_GRACE"])
	if err != nil || grace <= 0 {
		t.Errorf("INTAKE_SHUTDOWN_GRACE %q: want the workers' stop grace (%v)", cfg["INTAKE_SHUTDOWN_GRACE"], err)
	}
	serveStop := durationConst(t, "pkg/serve", "ShutdownTimeout")
	apiStop := durationConst(t, "api", "DefaultShutdownTimeout")
	const margin = 5 * time.Second

	var apiPods []pod
	for _, p := range r.pods {
		svc := subcommandOf(p)
		if svc == "" {
			continue
		}
		c := p.spec.Containers[slices.IndexFunc(p.spec.Containers, isIntake)]
		if got := containerPort(c, "http"); got != httpPort {
			t.Errorf("%s: port http is %d, INTAKE_HTTP_ADDR says %d", p.owner, got, httpPort)
		}
		stop := serveStop
		switch {
		case svc == "api":
			apiPods = append(apiPods, p)
			if got := containerPort(c, "grpc"); got != grpcPort {
				t.Errorf("%s: port grpc is %d, INTAKE_GRPC_ADDR says %d", p.owner, got, grpcPort)
			}
			if got := containerPort(c, "rest"); got != restPort {
				t.Errorf("%s: port rest is %d, INTAKE_REST_ADDR says %d", p.owner, got, restPort)
			}
			stop = max(stop, apiStop)
		case slices.Contains(workers, svc):
			stop = max(stop, grace)
		}
		if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
			stop += time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
		}
		tgps := 30 * time.Second
		if p.spec.TerminationGracePeriodSeconds != nil {
			tgps = time.Duration(*p.spec.TerminationGracePeriodSeconds) * time.Second
		}
		if tgps < stop+margin {
			t.Errorf("%s: terminationGracePeriodSeconds %v is shorter than its stop (%v) and a margin of %v: it would be killed mid-stop", p.owner, tgps, stop, margin)
		}
	}
	if len(apiPods) != 1 {
		t.Fatalf("%d workloads run intake api, want 1", len(apiPods))
	}

	// The workers reach the API through a Service on its gRPC port.
	host, _, _ := net.SplitHostPort(cfg["INTAKE_API_ADDR"])
	apiAddrPort := portOf(t, "INTAKE_API_ADDR", cfg["INTAKE_API_ADDR"])
	svcObj, ok := r.get("Service", ns, host)
	if !ok {
		t.Errorf("INTAKE_API_ADDR %q: no Service %s", cfg["INTAKE_API_ADDR"], host)
	} else {
		svc := svcObj.Obj.(*corev1.Service)
		i := slices.IndexFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == apiAddrPort })
		apiC := apiPods[0].spec.Containers[slices.IndexFunc(apiPods[0].spec.Containers, isIntake)]
		switch {
		case i < 0:
			t.Errorf("INTAKE_API_ADDR %q: Service %s has no port %d", cfg["INTAKE_API_ADDR"], host, apiAddrPort)
		case !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(apiPods[0].labels)):
			t.Errorf("INTAKE_API_ADDR %q: Service %s does not select the API's pods", cfg["INTAKE_API_ADDR"], host)
		case !declaresPort(apiC, svc.Spec.Ports[i].TargetPort) || resolvePort(apiC, svc.Spec.Ports[i].TargetPort) != grpcPort:
			t.Errorf("INTAKE_API_ADDR %q: Service port %d does not lead to the API's gRPC port", cfg["INTAKE_API_ADDR"], apiAddrPort)
		}
	}

	// NATS: a Service of the render, or the Helm chart's in namespace nats.
	u, err := url.Parse(cfg["INTAKE_NATS_URL"])
	if err != nil || u.Scheme != "nats" || u.User != nil {
		t.Fatalf("INTAKE_NATS_URL %q: want nats://host:port without credentials (they go in the Secret intake-nats) (%v)", cfg["INTAKE_NATS_URL"], err)
	}
	natsPort, _ := strconv.Atoi(u.Port())
	if svcObj, ok := r.get("Service", ns, u.Hostname()); ok {
		svc := svcObj.Obj.(*corev1.Service)
		if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == int32(natsPort) }) {
			t.Errorf("INTAKE_NATS_URL %q: Service %s has no port %d", cfg["INTAKE_NATS_URL"], u.Hostname(), natsPort)
		}
	} else if want := fmt.Sprintf("%s.nats.svc", r.natsVal["fullnameOverride"]); u.Hostname() != want || natsPort != 4222 {
		t.Errorf("INTAKE_NATS_URL %q: neither a Service of the render nor the NATS chart's %s:4222", cfg["INTAKE_NATS_URL"], want)
	}
}

func checkProd(t *testing.T, r *rendered) {
	if !r.rc.prod {
		return
	}
	for _, o := range r.all("Secret") {
		t.Errorf("%s: prod holds no Secret: its values come from the operator or CloudNativePG", o)
	}
	clusters := r.all("Cluster")
	if len(clusters) != 1 {
		t.Fatalf("want one CloudNativePG Cluster, got %d", len(clusters))
	}
	pg := clusters[0].Obj.(*cnpgCluster)
	if pg.Spec.Instances < 3 {
		t.Errorf("%s: %d instances, want 3 or more", clusters[0], pg.Spec.Instances)
	}
	if a := pg.Spec.Affinity; a == nil || a.EnablePodAntiAffinity == nil || !*a.EnablePodAntiAffinity || a.PodAntiAffinityType != "required" {
		t.Errorf("%s: instances may share a node: want affinity.enablePodAntiAffinity with podAntiAffinityType required", clusters[0])
	}
	if _, tag := splitImage(pg.Spec.ImageName); pg.Spec.ImageName != "" && (tag == "" || tag == "latest") {
		t.Errorf("%s: imageName %q is not pinned", clusters[0], pg.Spec.ImageName)
	}
	checkResources(t, clusters[0].String(), pg.Spec.Resources)
	cfg := r.byKey["ConfigMap/"+clusters[0].Namespace+"/intake-config"].Obj.(*corev1.ConfigMap).Data
	nodes := fmt.Sprint(valuesGet(r.natsVal, "config", "cluster", "replicas"))
	for _, k := range []string{"INTAKE_STREAM_REPLICAS", "INTAKE_KV_REPLICAS"} {
		if cfg[k] != nodes {
			t.Errorf("%s is %q, want %s: one replica per node of the NATS cluster (deploy/k8s/nats/values.yaml)", k, cfg[k], nodes)
		}
	}
	if len(r.all("PrometheusRule")) == 0 {
		t.Error("no PrometheusRule: prod alerts (deploy/monitoring)")
	}
	for _, w := range workers {
		if _, ok := r.get("ScaledObject", clusters[0].Namespace, "intake-"+w); !ok {
			t.Errorf("no ScaledObject intake-%s: prod scales the workers on consumer lag", w)
		}
	}
}

// natsValues reads deploy/k8s/nats/values.yaml, the NATS Helm chart's
// values for prod.
func natsValues(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile("k8s/nats/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := yaml.UnmarshalStrict(data, &v); err != nil {
		t.Fatalf("k8s/nats/values.yaml: %v", err)
	}
	return v
}

// valuesGet is the value at path in Helm values, nil if absent.
func valuesGet(v map[string]any, path ...string) any {
	var cur any = v
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

func TestNATSValues(t *testing.T) {
	t.Parallel()
	v := natsValues(t)
	for _, c := range []struct {
		path []string
		want any
	}{
		{[]string{"fullnameOverride"}, "nats"},
		{[]string{"config", "cluster", "enabled"}, true},
		{[]string{"config", "cluster", "replicas"}, float64(3)},
		{[]string{"config", "jetstream", "enabled"}, true},
		{[]string{"config", "jetstream", "fileStore", "enabled"}, true},
		{[]string{"config", "jetstream", "fileStore", "pvc", "enabled"}, true},
		{[]string{"config", "monitor", "enabled"}, true},
		{[]string{"config", "monitor", "port"}, float64(8222)},
		// The monitoring port on the Services, for KEDA's scaler.
		{[]string{"service", "ports", "monitor", "enabled"}, true},
		{[]string{"podDisruptionBudget", "enabled"}, true},
	} {
		if got := valuesGet(v, c.path...); got != c.want {
			t.Errorf("%s = %v, want %v", strings.Join(c.path, "."), got, c.want)
		}
	}
	if valuesGet(v, "container", "merge", "resources", "limits", "memory") == nil {
		t.Error("the NATS container has no memory limit (container.merge.resources)")
	}
}
