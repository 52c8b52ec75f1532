// Command gen-bundle writes Portico's OLM bundle (bundle/manifests,
// bundle/metadata, bundle.Dockerfile) from config/manifests, in the layout of
// `operator-sdk generate bundle`. `make bundle VERSION=x.y.z` runs it.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/portico-dev/portico/hack/bundlegen"
)

func main() {
	o := bundlegen.Options{Package: "portico"}
	var channels string
	flag.StringVar(&o.Root, "root", ".", "repository root")
	flag.StringVar(&o.Version, "version", "", "operator version, x.y.z (required)")
	flag.StringVar(&o.Image, "image", "", "operator image; empty keeps config/manager's")
	flag.StringVar(&o.Package, "package", o.Package, "OLM package name")
	flag.StringVar(&channels, "channels", "candidate-v0", "comma-separated channels")
	flag.StringVar(&o.DefaultChannel, "default-channel", "candidate-v0", "default channel")
	flag.Parse()
	o.Channels = strings.Split(channels, ",")
	out, err := bundlegen.Generate(o)
	if err == nil {
		err = bundlegen.Write(o.Root, out)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen-bundle:", err)
		os.Exit(1)
	}
	for _, id := range out.LeftOut {
		fmt.Fprintf(os.Stderr, "gen-bundle: left out %s (no place in a registry+v1 bundle)\n", id)
	}
	fmt.Printf("gen-bundle: wrote %d files for %s v%s\n", len(out.Files), o.Package, o.Version)
}
