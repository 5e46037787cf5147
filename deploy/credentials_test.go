package deploy_test

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// minTokenLength is the API's api.MinConfiguredTokenLength: the shortest
// bootstrap or worker token it takes.
const minTokenLength = 32

// apiClients are the subcommands that call the control API with the
// worker token.
var apiClients = []string{"fetcher", "mapper", "loader", "scheduler"}

// envVar is a container's variable and where it comes from.
type envVar struct {
	value  string // when known
	known  bool   // the render holds the value
	source string // "value", "Secret NAME", "ConfigMap NAME"
}

func (v envVar) fromSecret() bool { return strings.HasPrefix(v.source, "Secret ") }

// env resolves a variable of c, a container of a pod of namespace ns, as
// the kubelet does: env wins over envFrom, a later envFrom over an earlier.
func (r *rendered) env(ns string, c corev1.Container, name string) (envVar, bool) {
	for i := len(c.Env) - 1; i >= 0; i-- {
		e := c.Env[i]
		if e.Name != name {
			continue
		}
		switch {
		case e.ValueFrom == nil:
			return envVar{value: e.Value, known: true, source: "value"}, true
		case e.ValueFrom.SecretKeyRef != nil:
			return r.keyOf("Secret", ns, e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key), true
		case e.ValueFrom.ConfigMapKeyRef != nil:
			return r.keyOf("ConfigMap", ns, e.ValueFrom.ConfigMapKeyRef.Name, e.ValueFrom.ConfigMapKeyRef.Key), true
		default:
			return envVar{source: "field"}, true
		}
	}
	for i := len(c.EnvFrom) - 1; i >= 0; i-- {
		ef := c.EnvFrom[i]
		if !strings.HasPrefix(name, ef.Prefix) {
			continue
		}
		key := strings.TrimPrefix(name, ef.Prefix)
		kind, obj := "ConfigMap", ""
		switch {
		case ef.ConfigMapRef != nil:
			obj = ef.ConfigMapRef.Name
		case ef.SecretRef != nil:
			kind, obj = "Secret", ef.SecretRef.Name
		}
		if o, ok := r.get(kind, ns, obj); ok && hasKey(o, key) || slices.Contains(r.rc.external[kind+"/"+obj], key) {
			return r.keyOf(kind, ns, obj, key), true
		}
	}
	return envVar{}, false
}

// keyOf is the value of a key of a ConfigMap or Secret, known when the
// render holds the object.
func (r *rendered) keyOf(kind, ns, name, key string) envVar {
	v := envVar{source: kind + " " + name}
	o, ok := r.get(kind, ns, name)
	if !ok {
		return v
	}
	switch obj := o.Obj.(type) {
	case *corev1.ConfigMap:
		v.value, v.known = obj.Data[key]
	case *corev1.Secret:
		if b, ok := obj.Data[key]; ok {
			v.value, v.known = string(b), true
		} else {
			v.value, v.known = obj.StringData[key]
		}
	}
	return v
}

// intakeContainers are the service containers of the render (not the
// migrate init containers), with their subcommand.
func (r *rendered) intakeContainers() (out []struct {
	p   pod
	c   corev1.Container
	svc string
}) {
	for _, p := range r.pods {
		if p.spec == nil {
			continue
		}
		for _, c := range p.spec.Containers {
			if isIntake(c) && len(c.Args) > 0 {
				out = append(out, struct {
					p   pod
					c   corev1.Container
					svc string
				}{p, c, c.Args[0]})
			}
		}
	}
	return out
}

// checkCredentials: the API gets its bootstrap token and the worker token
// from a Secret; every worker gets the worker token from a Secret (and may
// send it over the cluster network: checkAPITLS); when the render
// holds the values, the workers' token is the API's and long enough. The
// NATS credentials, when given, are the same for every service.
func checkCredentials(t *testing.T, r *rendered) {
	var apiWorkerTokens []string
	type workerToken struct{ where, token string }
	var workerTokens []workerToken
	natsSources := map[string][]string{} // source of INTAKE_NATS_USER/PASSWORD -> containers
	for _, ic := range r.intakeContainers() {
		where := fmt.Sprintf("%s: container %s", ic.p.owner, ic.c.Name)
		need := func(name string) envVar {
			v, ok := r.env(ic.p.namespace, ic.c, name)
			switch {
			case !ok:
				t.Errorf("%s (intake %s): no %s", where, ic.svc, name)
			case !v.fromSecret():
				t.Errorf("%s (intake %s): %s comes from a %s, want a Secret", where, ic.svc, name, v.source)
			case v.known && len(strings.TrimSpace(v.value)) < minTokenLength:
				t.Errorf("%s (intake %s): %s of %s is shorter than %d characters: the API refuses it", where, ic.svc, name, v.source, minTokenLength)
			}
			return v
		}
		switch {
		case ic.svc == "api":
			need("INTAKE_BOOTSTRAP_TOKEN")
			if v := need("INTAKE_WORKER_TOKEN"); v.known {
				apiWorkerTokens = append(apiWorkerTokens, strings.TrimSpace(v.value))
			}
		case slices.Contains(apiClients, ic.svc):
			if v := need("INTAKE_WORKER_TOKEN"); v.known {
				workerTokens = append(workerTokens, workerToken{where, strings.TrimSpace(v.value)})
			}
			// Where the token may go (TLS, or INTAKE_API_INSECURE): checkAPITLS.
		}
		user, hasUser := r.env(ic.p.namespace, ic.c, "INTAKE_NATS_USER")
		pass, hasPass := r.env(ic.p.namespace, ic.c, "INTAKE_NATS_PASSWORD")
		switch {
		case hasUser != hasPass:
			t.Errorf("%s: INTAKE_NATS_USER and INTAKE_NATS_PASSWORD come together or not at all", where)
		case hasPass && !pass.fromSecret():
			t.Errorf("%s: INTAKE_NATS_PASSWORD comes from a %s, want a Secret", where, pass.source)
		}
		key := "none"
		if hasUser {
			key = user.source + ", " + pass.source
		}
		natsSources[key] = append(natsSources[key], where)
	}
	for _, w := range workerTokens {
		if len(apiWorkerTokens) > 0 && !slices.Contains(apiWorkerTokens, w.token) {
			t.Errorf("%s: its INTAKE_WORKER_TOKEN is not one the API accepts (the API's INTAKE_WORKER_TOKEN)", w.where)
		}
	}
	if len(natsSources) > 1 {
		t.Errorf("the services take their NATS credentials from different places: %v", natsSources)
	}
}

// checkDatabaseTLS: a service that connects to a CloudNativePG cluster of
// the render (the URL of its Secret <cluster>-app) verifies the server's
// certificate against the cluster's CA (the Secret <cluster>-ca, key
// ca.crt, mounted), with PGSSLMODE=verify-full and PGSSLROOTCERT.
func checkDatabaseTLS(t *testing.T, r *rendered) {
	for _, p := range r.pods {
		if p.spec == nil {
			continue
		}
		for _, c := range allContainers(p.spec) {
			if !isIntake(c) {
				continue
			}
			where := fmt.Sprintf("%s: container %s", p.owner, c.Name)
			db, ok := r.env(p.namespace, c, "INTAKE_DATABASE_URL")
			if !ok || !db.fromSecret() {
				continue
			}
			secret := strings.TrimPrefix(db.source, "Secret ")
			cluster, isApp := strings.CutSuffix(secret, "-app")
			if _, cnpg := r.get("Cluster", p.namespace, cluster); !isApp || !cnpg {
				continue
			}
			if v, _ := r.env(p.namespace, c, "PGSSLMODE"); v.value != "verify-full" {
				t.Errorf("%s: connects to the CloudNativePG cluster %s with PGSSLMODE %q, want verify-full", where, cluster, v.value)
			}
			root, _ := r.env(p.namespace, c, "PGSSLROOTCERT")
			if !mountsKey(p.spec, c, root.value, cluster+"-ca", "ca.crt") {
				t.Errorf("%s: PGSSLROOTCERT %q is not the key ca.crt of the Secret %s-ca mounted in the container", where, root.value, cluster)
			}
		}
	}
}

// mountsKey reports whether file, in container c of spec, is key of the
// Secret secret, through a volume mount.
func mountsKey(spec *corev1.PodSpec, c corev1.Container, file, secret, key string) bool {
	for _, m := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/")
		if !ok || m.SubPath != "" {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name != m.Name || v.Secret == nil || v.Secret.SecretName != secret {
				continue
			}
			if len(v.Secret.Items) == 0 {
				return rel == key
			}
			for _, it := range v.Secret.Items {
				if it.Key == key && path.Clean(it.Path) == rel {
					return true
				}
			}
		}
	}
	return false
}
