package deploy_test

import (
	"net"
	"net/url"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// endpoint is one end of a connection: a pod (its namespace, labels and
// declared ports), or an address outside the cluster (ip set).
type endpoint struct {
	name   string
	ns     string
	labels map[string]string
	ports  []corev1.ContainerPort
	ip     net.IP
}

func podEndpoint(p pod) endpoint {
	e := endpoint{name: p.owner, ns: p.namespace, labels: p.labels}
	if p.spec != nil {
		for _, c := range p.spec.Containers {
			e.ports = append(e.ports, c.Ports...)
		}
	}
	return e
}

// nsLabels are the labels of namespace ns: its name label, and those the
// render gives it.
func (r *rendered) nsLabels(ns string) labels.Set {
	l := labels.Set{"kubernetes.io/metadata.name": ns}
	if o, ok := r.get("Namespace", "", ns); ok {
		for k, v := range o.Obj.(*corev1.Namespace).Labels {
			l[k] = v
		}
	}
	return l
}

// allows reports whether the render's NetworkPolicies let from open a
// connection to to on proto/port: the egress policies of from and the
// ingress policies of to must both allow it. Pods of other namespaces and
// outside addresses have no policies here.
func (r *rendered) allows(t *testing.T, from, to endpoint, proto corev1.Protocol, port int32) bool {
	t.Helper()
	return r.sideAllows(t, from, to, to, networkingv1.PolicyTypeEgress, proto, port) &&
		r.sideAllows(t, to, from, to, networkingv1.PolicyTypeIngress, proto, port)
}

// sideAllows applies the policies of type typ that select self to traffic
// with peer, whose destination is dst.
func (r *rendered) sideAllows(t *testing.T, self, peer, dst endpoint, typ networkingv1.PolicyType, proto corev1.Protocol, port int32) bool {
	if self.ip != nil {
		return true
	}
	selected := false
	for _, o := range r.all("NetworkPolicy") {
		np := o.Obj.(*networkingv1.NetworkPolicy)
		if o.Namespace != self.ns || !hasType(np.Spec.PolicyTypes, typ) {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil || !sel.Matches(labels.Set(self.labels)) {
			continue
		}
		selected = true
		if typ == networkingv1.PolicyTypeEgress {
			for _, rule := range np.Spec.Egress {
				if r.peersMatch(t, o.Namespace, rule.To, peer) && portsMatch(rule.Ports, dst, proto, port) {
					return true
				}
			}
		} else {
			for _, rule := range np.Spec.Ingress {
				if r.peersMatch(t, o.Namespace, rule.From, peer) && portsMatch(rule.Ports, dst, proto, port) {
					return true
				}
			}
		}
	}
	return !selected
}

func hasType(types []networkingv1.PolicyType, typ networkingv1.PolicyType) bool {
	for _, x := range types {
		if x == typ {
			return true
		}
	}
	return false
}

func (r *rendered) peersMatch(t *testing.T, policyNS string, peers []networkingv1.NetworkPolicyPeer, e endpoint) bool {
	if len(peers) == 0 {
		return true
	}
	for _, p := range peers {
		if p.IPBlock != nil {
			if e.ip != nil && inBlock(t, p.IPBlock, e.ip) {
				return true
			}
			continue
		}
		if e.ip != nil {
			continue
		}
		if p.NamespaceSelector != nil {
			sel, err := metav1.LabelSelectorAsSelector(p.NamespaceSelector)
			if err != nil || !sel.Matches(r.nsLabels(e.ns)) {
				continue
			}
		} else if e.ns != policyNS {
			continue
		}
		if p.PodSelector != nil {
			sel, err := metav1.LabelSelectorAsSelector(p.PodSelector)
			if err != nil || !sel.Matches(labels.Set(e.labels)) {
				continue
			}
		}
		return true
	}
	return false
}

func inBlock(t *testing.T, b *networkingv1.IPBlock, ip net.IP) bool {
	_, cidr, err := net.ParseCIDR(b.CIDR)
	if err != nil {
		t.Errorf("ipBlock %s: %v", b.CIDR, err)
		return false
	}
	if !cidr.Contains(ip) {
		return false
	}
	for _, ex := range b.Except {
		_, exNet, err := net.ParseCIDR(ex)
		if err != nil {
			t.Errorf("ipBlock except %s: %v", ex, err)
			continue
		}
		if exNet.Contains(ip) {
			return false
		}
	}
	return true
}

func portsMatch(ports []networkingv1.NetworkPolicyPort, dst endpoint, proto corev1.Protocol, port int32) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		pp := corev1.ProtocolTCP
		if p.Protocol != nil {
			pp = *p.Protocol
		}
		switch {
		case pp != proto:
		case p.Port == nil:
			return true
		case p.Port.Type == intstr.Int:
			if p.Port.IntVal == port || p.EndPort != nil && port >= p.Port.IntVal && port <= *p.EndPort {
				return true
			}
		default:
			for _, cp := range dst.ports {
				if cp.Name == p.Port.StrVal && cp.ContainerPort == port {
					return true
				}
			}
		}
	}
	return false
}

// serviceBackend is a pod that Service host of the render sends port to,
// and the pod's port.
func (r *rendered) serviceBackend(t *testing.T, ns, host string, port int32) (endpoint, int32, bool) {
	o, ok := r.get("Service", ns, host)
	if !ok {
		return endpoint{}, 0, false
	}
	svc := o.Obj.(*corev1.Service)
	for _, sp := range svc.Spec.Ports {
		if sp.Port != port {
			continue
		}
		for _, p := range r.selected(t, ns, &metav1.LabelSelector{MatchLabels: svc.Spec.Selector}) {
			e := podEndpoint(p)
			if sp.TargetPort.Type == intstr.Int {
				return e, sp.TargetPort.IntVal, true
			}
			for _, cp := range e.ports {
				if cp.Name == sp.TargetPort.StrVal {
					return e, cp.ContainerPort, true
				}
			}
		}
	}
	t.Errorf("Service %s has no pod of the render behind port %d", host, port)
	return endpoint{}, 0, false
}

// checkFlows checks, on a complete render, that the NetworkPolicies allow
// the connections the pipeline makes and deny the ones it does not.
func checkFlows(t *testing.T, r *rendered) {
	if !r.rc.complete {
		return
	}
	ns := r.all("Namespace")[0].Name
	cfg := r.byKey["ConfigMap/"+ns+"/intake-config"].Obj.(*corev1.ConfigMap).Data

	svcs := map[string]endpoint{}
	var dbURLSecret string
	for _, p := range r.pods {
		if s := subcommandOf(p); s != "" {
			svcs[s] = podEndpoint(p)
			for _, c := range p.spec.Containers {
				for _, e := range c.Env {
					if e.Name == "INTAKE_DATABASE_URL" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
						dbURLSecret = e.ValueFrom.SecretKeyRef.Name
					}
				}
			}
		}
	}
	for _, s := range []string{"api", "scheduler", "fetcher", "mapper", "loader"} {
		if _, ok := svcs[s]; !ok {
			t.Fatalf("no pod runs intake %s", s)
		}
	}

	// NATS: the Service of INTAKE_NATS_URL in the render, or the Helm chart's pods.
	u, err := url.Parse(cfg["INTAKE_NATS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	natsPort := int32(4222)
	nats, port, ok := r.serviceBackend(t, ns, u.Hostname(), natsPort)
	if ok {
		natsPort = port
	} else {
		nats = endpoint{name: "NATS (Helm chart)", ns: "nats", labels: map[string]string{"app.kubernetes.io/name": "nats", "app.kubernetes.io/instance": "nats"},
			ports: []corev1.ContainerPort{{Name: "nats", ContainerPort: natsPort}}}
	}

	// PostgreSQL: CloudNativePG's instances, or the Service of the URL in
	// the render's Secret.
	var dbs []endpoint
	for _, p := range r.pods {
		if p.kind == "Cluster" {
			dbs = append(dbs, podEndpoint(p))
		}
	}
	if o, ok := r.get("Secret", ns, dbURLSecret); ok {
		du, err := url.Parse(string(o.Obj.(*corev1.Secret).Data["INTAKE_DATABASE_URL"]))
		if err != nil {
			t.Fatalf("Secret %s: INTAKE_DATABASE_URL: %v", dbURLSecret, err)
		}
		if db, port, ok := r.serviceBackend(t, ns, du.Hostname(), 5432); ok && port == 5432 {
			dbs = append(dbs, db)
		}
	}
	if len(dbs) == 0 {
		t.Fatal("found no PostgreSQL pods: no CloudNativePG Cluster, no Service of the database URL")
	}

	dns := endpoint{name: "DNS", ns: "kube-system", labels: map[string]string{"k8s-app": "kube-dns"}}
	prometheus := endpoint{name: "Prometheus", ns: "monitoring", labels: map[string]string{"app.kubernetes.io/name": "prometheus"}}
	ingress := endpoint{name: "ingress controller", ns: "ingress-nginx", labels: map[string]string{"app.kubernetes.io/name": "ingress-nginx"}}
	elsewhere := endpoint{name: "a pod of another namespace", ns: "elsewhere", labels: map[string]string{"app": "x"}}
	public := endpoint{name: "203.0.113.10 (public)", ip: net.ParseIP("203.0.113.10")}
	public6 := endpoint{name: "2001:db8::10 (public)", ip: net.ParseIP("2001:db8::10")}
	private := endpoint{name: "10.1.2.3 (private)", ip: net.ParseIP("10.1.2.3")}
	metadata := endpoint{name: "169.254.169.254 (cloud metadata)", ip: net.ParseIP("169.254.169.254")}

	expect := func(from, to endpoint, proto corev1.Protocol, port int32, want bool) {
		t.Helper()
		if got := r.allows(t, from, to, proto, port); got != want {
			verb := "denied"
			if want {
				verb = "allowed"
			}
			t.Errorf("%s -> %s %s/%d: want %s", from.name, to.name, proto, port, verb)
		}
	}
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	for name, s := range svcs {
		expect(s, dns, udp, 53, true)
		expect(s, nats, tcp, natsPort, true)
		expect(prometheus, s, tcp, 9090, true)
		expect(elsewhere, s, tcp, 9090, false)
		wantDB := name == "api" || name == "loader"
		for _, db := range dbs {
			expect(s, db, tcp, 5432, wantDB)
		}
		wantInternet := name == "api" || name == "fetcher"
		for _, port := range []int32{443, 80, 22} {
			expect(s, public, tcp, port, wantInternet)
		}
		expect(s, public6, tcp, 443, wantInternet)
		expect(s, private, tcp, 5432, false)
		expect(s, metadata, tcp, 80, false)
		if name != "api" {
			expect(s, svcs["api"], tcp, 7070, true)
			expect(s, svcs["api"], tcp, 9090, false)
		}
		if name != "mapper" {
			expect(s, svcs["mapper"], tcp, 9090, false)
		}
	}
	expect(ingress, svcs["api"], tcp, 8080, true)
	expect(elsewhere, svcs["api"], tcp, 7070, false)
	for _, db := range dbs {
		expect(elsewhere, db, tcp, 5432, false)
	}
	if nats.ip == nil && nats.ns == ns {
		expect(elsewhere, nats, tcp, natsPort, false)
	}
}
