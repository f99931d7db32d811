// Command packer-plugin-drover offers drover's image builder to Packer users (README.md, "Packer",
// has the install steps for Packer 1.9 and 1.10+), as `source "drover-rootfs" "web" {...}`.
package main

import (
	"fmt"
	"os"

	"github.com/hashicorp/packer-plugin-sdk/plugin"

	"github.com/drover-dev/drover/images/rootfs"
	"github.com/drover-dev/drover/internal/fds"
)

func main() {
	// Packer starts its plugins with descriptors 3-5 open; they must not reach the tools the builder
	// runs (mmdebstrap's shell scripts break on them).
	if err := fds.CloseInheritedOnExec(); err != nil {
		fmt.Fprintf(os.Stderr, "packer-plugin-drover: warning: %v\n", err)
	}
	set := plugin.NewSet()
	set.SetVersion(pluginVersion())
	set.RegisterBuilder("rootfs", new(rootfs.Builder))
	if err := set.Run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
