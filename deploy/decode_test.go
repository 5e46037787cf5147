package deploy_test

import (
	"fmt"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/intakehq/intake/deploy"
)

// kinds are the types a rendered object may have, by "apiVersion/kind".
// An object of any other type fails the test: add its type here first.
var kinds = map[string]func() any{
	"v1/Namespace":                            func() any { return new(corev1.Namespace) },
	"v1/ConfigMap":                            func() any { return new(corev1.ConfigMap) },
	"v1/Secret":                               func() any { return new(corev1.Secret) },
	"v1/Service":                              func() any { return new(corev1.Service) },
	"v1/ServiceAccount":                       func() any { return new(corev1.ServiceAccount) },
	"apps/v1/Deployment":                      func() any { return new(appsv1.Deployment) },
	"apps/v1/StatefulSet":                     func() any { return new(appsv1.StatefulSet) },
	"batch/v1/Job":                            func() any { return new(batchv1.Job) },
	"policy/v1/PodDisruptionBudget":           func() any { return new(policyv1.PodDisruptionBudget) },
	"networking.k8s.io/v1/NetworkPolicy":      func() any { return new(networkingv1.NetworkPolicy) },
	"autoscaling/v2/HorizontalPodAutoscaler":  func() any { return new(autoscalingv2.HorizontalPodAutoscaler) },
	"monitoring.coreos.com/v1/ServiceMonitor": func() any { return new(monitoringv1.ServiceMonitor) },
	"monitoring.coreos.com/v1/PodMonitor":     func() any { return new(monitoringv1.PodMonitor) },
	"monitoring.coreos.com/v1/PrometheusRule": func() any { return new(monitoringv1.PrometheusRule) },
	"keda.sh/v1alpha1/ScaledObject":           func() any { return new(scaledObject) },
	"postgresql.cnpg.io/v1/Cluster":           func() any { return new(cnpgCluster) },
	"cert-manager.io/v1/Issuer":               func() any { return new(certIssuer) },
	"cert-manager.io/v1/Certificate":          func() any { return new(certificate) },
}

// KEDA's and CloudNativePG's own Go API types (github.com/kedacore/keda/v2,
// github.com/cloudnative-pg/cloudnative-pg) pull in controller-runtime and
// large dependency trees. Their objects are decoded instead into the small
// mirrors below, which hold only the fields these manifests use, with the
// JSON names of the upstream types (KEDA apis/keda/v1alpha1
// scaledobject_types.go, CloudNativePG api/v1 cluster_types.go). The decode
// is as strict as for the Kubernetes types: a field a mirror does not know
// (a typo, or a field upstream does not have) fails the test. To use
// another upstream field, add it here with upstream's JSON name.

// scaledObject mirrors KEDA's keda.sh/v1alpha1 ScaledObject.
type scaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		ScaleTargetRef struct {
			APIVersion string `json:"apiVersion,omitempty"`
			Kind       string `json:"kind,omitempty"`
			Name       string `json:"name"`
		} `json:"scaleTargetRef"`
		PollingInterval *int32 `json:"pollingInterval,omitempty"`
		CooldownPeriod  *int32 `json:"cooldownPeriod,omitempty"`
		MinReplicaCount *int32 `json:"minReplicaCount,omitempty"`
		MaxReplicaCount *int32 `json:"maxReplicaCount,omitempty"`
		Advanced        *struct {
			HorizontalPodAutoscalerConfig *struct {
				Name     string                                         `json:"name,omitempty"`
				Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
			} `json:"horizontalPodAutoscalerConfig,omitempty"`
		} `json:"advanced,omitempty"`
		Triggers []struct {
			Type       string            `json:"type"`
			Name       string            `json:"name,omitempty"`
			MetricType string            `json:"metricType,omitempty"`
			Metadata   map[string]string `json:"metadata"`
		} `json:"triggers"`
	} `json:"spec"`
}

// cnpgCluster mirrors CloudNativePG's postgresql.cnpg.io/v1 Cluster.
type cnpgCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Instances             int    `json:"instances"`
		ImageName             string `json:"imageName,omitempty"`
		PrimaryUpdateStrategy string `json:"primaryUpdateStrategy,omitempty"`
		EnableSuperuserAccess *bool  `json:"enableSuperuserAccess,omitempty"`
		Bootstrap             *struct {
			InitDB *struct {
				Database string `json:"database,omitempty"`
				Owner    string `json:"owner,omitempty"`
			} `json:"initdb,omitempty"`
		} `json:"bootstrap,omitempty"`
		PostgreSQL *struct {
			Parameters map[string]string `json:"parameters,omitempty"`
		} `json:"postgresql,omitempty"`
		Storage    cnpgStorage                 `json:"storage"`
		WalStorage *cnpgStorage                `json:"walStorage,omitempty"`
		Resources  corev1.ResourceRequirements `json:"resources,omitempty"`
		Affinity   *struct {
			EnablePodAntiAffinity *bool  `json:"enablePodAntiAffinity,omitempty"`
			PodAntiAffinityType   string `json:"podAntiAffinityType,omitempty"`
			TopologyKey           string `json:"topologyKey,omitempty"`
		} `json:"affinity,omitempty"`
		InheritedMetadata *struct {
			Labels      map[string]string `json:"labels,omitempty"`
			Annotations map[string]string `json:"annotations,omitempty"`
		} `json:"inheritedMetadata,omitempty"`
	} `json:"spec"`
}

// certIssuer mirrors cert-manager's cert-manager.io/v1 Issuer
// (pkg/apis/certmanager/v1 types_issuer.go).
type certIssuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SelfSigned *struct{} `json:"selfSigned,omitempty"`
		CA         *struct {
			SecretName string `json:"secretName"`
		} `json:"ca,omitempty"`
	} `json:"spec"`
}

// certificate mirrors cert-manager's cert-manager.io/v1 Certificate
// (types_certificate.go).
type certificate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		IsCA        bool             `json:"isCA,omitempty"`
		CommonName  string           `json:"commonName,omitempty"`
		DNSNames    []string         `json:"dnsNames,omitempty"`
		SecretName  string           `json:"secretName"`
		Duration    *metav1.Duration `json:"duration,omitempty"`
		RenewBefore *metav1.Duration `json:"renewBefore,omitempty"`
		Usages      []string         `json:"usages,omitempty"`
		PrivateKey  *struct {
			Algorithm      string `json:"algorithm,omitempty"`
			Size           int    `json:"size,omitempty"`
			RotationPolicy string `json:"rotationPolicy,omitempty"`
		} `json:"privateKey,omitempty"`
		IssuerRef struct {
			Name  string `json:"name"`
			Kind  string `json:"kind,omitempty"`
			Group string `json:"group,omitempty"`
		} `json:"issuerRef"`
	} `json:"spec"`
}

// cnpgStorage mirrors CloudNativePG's StorageConfiguration.
type cnpgStorage struct {
	Size         string  `json:"size,omitempty"`
	StorageClass *string `json:"storageClass,omitempty"`
}

// object is one rendered manifest, decoded.
type object struct {
	APIVersion, Kind, Name, Namespace string
	Obj                               any // a pointer to the type kinds gives
}

func (o object) String() string { return fmt.Sprintf("%s %s/%s", o.Kind, o.Namespace, o.Name) }

// decodeStrict decodes one YAML document into v: a duplicate key, or a
// field v's type does not have (case-sensitive), is an error.
func decodeStrict(doc []byte, v any) error {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return fmt.Errorf("YAML to JSON: %w", err)
	}
	strict, err := sigsjson.UnmarshalStrict(js, v, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	if len(strict) > 0 {
		return fmt.Errorf("strict decoding: %v", strict)
	}
	return nil
}

// renderObjects renders the kustomization dir and decodes every object
// strictly into its type.
func renderObjects(t *testing.T, dir string) []object {
	t.Helper()
	m, err := deploy.Render(dir)
	if err != nil {
		t.Fatal(err)
	}
	var objs []object
	for _, r := range m.Resources() {
		doc, err := r.AsYAML()
		if err != nil {
			t.Fatalf("%s: %s: encode YAML: %v", dir, r.CurId(), err)
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatalf("%s: %s: read apiVersion and kind: %v", dir, r.CurId(), err)
		}
		gvk := tm.APIVersion + "/" + tm.Kind
		newObj, ok := kinds[gvk]
		if !ok {
			t.Errorf("%s: %s %s: type %s is not one the test knows: add it to kinds", dir, tm.Kind, r.GetName(), gvk)
			continue
		}
		v := newObj()
		if err := decodeStrict(doc, v); err != nil {
			t.Errorf("%s: %s %s does not decode strictly into %T: %v", dir, tm.Kind, r.GetName(), v, err)
			continue
		}
		objs = append(objs, object{APIVersion: tm.APIVersion, Kind: tm.Kind, Name: r.GetName(), Namespace: r.GetNamespace(), Obj: v})
	}
	return objs
}

func TestDecodeStrictRejectsUnknownAndDuplicateFields(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, kind, doc string }{
		{"unknown field", "v1/Service", "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {selectr: {a: b}}\n"},
		{"field in another case", "v1/Service", "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {Selector: {a: b}}\n"},
		{"duplicate key", "v1/Service", "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nmetadata: {name: b}\n"},
		{"unknown field of a mirror", "keda.sh/v1alpha1/ScaledObject", "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: a}\nspec: {minReplicas: 1}\n"},
		{"unknown nested field of a mirror", "postgresql.cnpg.io/v1/Cluster", "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: a}\nspec: {storage: {sise: 1Gi}}\n"},
	} {
		if err := decodeStrict([]byte(c.doc), kinds[c.kind]()); err == nil {
			t.Errorf("%s: decoded without error:\n%s", c.name, c.doc)
		}
	}
	var svc corev1.Service
	if err := decodeStrict([]byte("apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {selector: {a: b}}\n"), &svc); err != nil || svc.Spec.Selector["a"] != "b" {
		t.Errorf("a valid Service: %v, %+v", err, svc.Spec)
	}
}
