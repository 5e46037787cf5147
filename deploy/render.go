// Package deploy renders Intake's Kubernetes manifests (deploy/k8s: a
// kustomize base, components and overlays) in process with kustomize's
// krusty, as `kubectl apply -k` would: the tests decode and check what it
// renders, and `make k8s` prints it (cmd/render).
package deploy

import (
	"fmt"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Render builds the kustomization in dir (a path on disk) with kustomize's
// default options, those of `kubectl kustomize`: files only from within the
// kustomization's root, no plugins, no Helm charts and no network.
func Render(dir string) (resmap.ResMap, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("deploy: kustomize build %s: %w", dir, err)
	}
	return m, nil
}

// RenderYAML is Render as one YAML stream, documents separated by "---".
func RenderYAML(dir string) ([]byte, error) {
	m, err := Render(dir)
	if err != nil {
		return nil, err
	}
	out, err := m.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("deploy: kustomize build %s: encode YAML: %w", dir, err)
	}
	return out, nil
}
