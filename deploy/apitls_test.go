package deploy_test

import (
	"net"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// certificateSecret is the Certificate of the render that makes Secret
// name of namespace ns (cert-manager writes tls.crt, tls.key and ca.crt),
// nil when none does.
func (r *rendered) certificateSecret(ns, name string) *certificate {
	for _, o := range r.all("Certificate") {
		if c := o.Obj.(*certificate); o.Namespace == ns && c.Spec.SecretName == name {
			return c
		}
	}
	return nil
}

// mountedSecretKey is the Secret and key whose file is path in container c
// of spec: a Secret volume mounted at a directory of path, and the item
// whose path is the rest (every key of the Secret without items).
func mountedSecretKey(spec *corev1.PodSpec, c corev1.Container, path string) (secret, key string, ok bool) {
	for _, m := range c.VolumeMounts {
		rel, found := strings.CutPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/")
		if !found {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name != m.Name || v.Secret == nil {
				continue
			}
			if len(v.Secret.Items) == 0 {
				return v.Secret.SecretName, rel, true
			}
			for _, it := range v.Secret.Items {
				if it.Path == rel {
					return v.Secret.SecretName, it.Key, true
				}
			}
		}
	}
	return "", "", false
}

// checkAPITLS: when the API serves TLS (INTAKE_TLS_CERT_FILE), its
// certificate and key are the tls.crt and tls.key of a Secret that a
// Certificate of the render makes, for a server; every client of the API
// verifies it with that Secret's ca.crt (INTAKE_API_CA_FILE), is not given
// the API's key, and dials a name of the Certificate (INTAKE_API_ADDR).
// When the API serves plaintext, a client sends its token to the API's
// Service only with INTAKE_API_INSECURE=true, and is not told of a CA.
func checkAPITLS(t *testing.T, r *rendered) {
	type served struct {
		secret string
		cert   *certificate
	}
	var api []served
	for _, ic := range r.intakeContainers() {
		if ic.svc != "api" {
			continue
		}
		certFile, hasCert := r.env(ic.p.namespace, ic.c, "INTAKE_TLS_CERT_FILE")
		keyFile, hasKey := r.env(ic.p.namespace, ic.c, "INTAKE_TLS_KEY_FILE")
		if hasCert != hasKey {
			t.Errorf("%s: INTAKE_TLS_CERT_FILE and INTAKE_TLS_KEY_FILE come together or not at all", ic.p.owner)
			continue
		}
		if !hasCert {
			continue
		}
		want := map[string]string{"INTAKE_TLS_CERT_FILE": "tls.crt", "INTAKE_TLS_KEY_FILE": "tls.key"}
		secrets := map[string]bool{}
		for name, v := range map[string]envVar{"INTAKE_TLS_CERT_FILE": certFile, "INTAKE_TLS_KEY_FILE": keyFile} {
			secret, key, ok := mountedSecretKey(ic.p.spec, ic.c, v.value)
			switch {
			case !v.known || !ok:
				t.Errorf("%s: %s %q is not a file of a Secret mounted in the container", ic.p.owner, name, v.value)
			case key != want[name]:
				t.Errorf("%s: %s is key %s of Secret %s, want %s", ic.p.owner, name, key, secret, want[name])
			default:
				secrets[secret] = true
			}
		}
		if len(secrets) != 1 {
			t.Errorf("%s: the certificate and its key come from %d Secrets, want one", ic.p.owner, len(secrets))
			continue
		}
		for secret := range secrets {
			c := r.certificateSecret(ic.p.namespace, secret)
			switch {
			case c == nil:
				t.Errorf("%s: Secret %s is made by no Certificate of the render", ic.p.owner, secret)
			case c.Spec.IsCA || !slices.Contains(c.Spec.Usages, "server auth"):
				t.Errorf("%s: Certificate of Secret %s is not a server's (isCA %v, usages %v)", ic.p.owner, secret, c.Spec.IsCA, c.Spec.Usages)
			default:
				api = append(api, served{secret, c})
			}
		}
	}
	for _, ic := range r.intakeContainers() {
		if !slices.Contains(apiClients, ic.svc) {
			continue
		}
		where := ic.p.owner + " (intake " + ic.svc + ")"
		caFile, hasCA := r.env(ic.p.namespace, ic.c, "INTAKE_API_CA_FILE")
		insecure, _ := r.env(ic.p.namespace, ic.c, "INTAKE_API_INSECURE")
		if len(api) == 0 {
			// INTAKE_API_ADDR is a Service of the cluster, not a loopback
			// address: the worker sends its token there only when told.
			if !insecure.known || insecure.value != "true" {
				t.Errorf("%s: the API serves plaintext and INTAKE_API_INSECURE is not \"true\": the worker would refuse to send its token to the API's Service", where)
			}
			if hasCA {
				t.Errorf("%s: INTAKE_API_CA_FILE is set but the API serves no TLS", where)
			}
			continue
		}
		if insecure.known && insecure.value == "true" {
			t.Errorf("%s: INTAKE_API_INSECURE is \"true\" though the API serves TLS", where)
		}
		secret, key, ok := mountedSecretKey(ic.p.spec, ic.c, caFile.value)
		switch {
		case !hasCA || !caFile.known:
			t.Errorf("%s: no INTAKE_API_CA_FILE: the worker cannot verify the API's certificate", where)
			continue
		case !ok || key != "ca.crt" || secret != api[0].secret:
			t.Errorf("%s: INTAKE_API_CA_FILE %q is not the ca.crt of Secret %s (got Secret %q key %q)", where, caFile.value, api[0].secret, secret, key)
		}
		for _, v := range ic.p.spec.Volumes {
			if v.Secret == nil || v.Secret.SecretName != api[0].secret {
				continue
			}
			if len(v.Secret.Items) == 0 || slices.ContainsFunc(v.Secret.Items, func(it corev1.KeyToPath) bool { return it.Key == "tls.key" }) {
				t.Errorf("%s: volume %s gives the worker the API's private key (Secret %s): mount its ca.crt only", where, v.Name, api[0].secret)
			}
		}
		addr, _ := r.env(ic.p.namespace, ic.c, "INTAKE_API_ADDR")
		host, _, err := net.SplitHostPort(addr.value)
		if err != nil || !slices.Contains(api[0].cert.Spec.DNSNames, host) {
			t.Errorf("%s: INTAKE_API_ADDR %q is not a name of the API's certificate %v (%v)", where, addr.value, api[0].cert.Spec.DNSNames, err)
		}
	}
}
