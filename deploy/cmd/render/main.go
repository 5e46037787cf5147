// Command render prints the manifests of a kustomization directory, as
// `kubectl kustomize DIR` does, with the kustomize library this module pins:
//
//	go run ./cmd/render k8s/overlays/prod | kubectl apply -f -
package main

import (
	"fmt"
	"os"

	"github.com/intakehq/intake/deploy"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: render DIR (a kustomization, e.g. k8s/overlays/prod)")
		os.Exit(2)
	}
	out, err := deploy.RenderYAML(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
	if _, err := os.Stdout.Write(out); err != nil {
		fmt.Fprintln(os.Stderr, "render: write:", err)
		os.Exit(1)
	}
}
