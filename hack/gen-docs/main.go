// Command gen-docs writes the generated parts of docs/ (the GatewayConfig
// reference and the supported-annotation table). `make docs` runs it.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/portico-dev/portico/hack/docgen"
)

func main() {
	root := flag.String("root", ".", "repository root")
	flag.Parse()
	files, err := docgen.Files(*root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen-docs:", err)
		os.Exit(1)
	}
	for p, data := range files {
		full := filepath.Join(*root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err == nil {
			err = os.WriteFile(full, data, 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "gen-docs:", err)
			os.Exit(1)
		}
		fmt.Println("gen-docs: wrote", p)
	}
}
