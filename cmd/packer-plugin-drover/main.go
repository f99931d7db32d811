// Command packer-plugin-drover offers drover's image builder to Packer users: `packer plugins install
// --path packer-plugin-drover github.com/drover-dev/drover`, then `source "drover-rootfs" "web" {...}`.
package main

import (
	"fmt"
	"os"

	"github.com/hashicorp/packer-plugin-sdk/plugin"

	"github.com/drover-dev/drover/images/rootfs"
)

func main() {
	set := plugin.NewSet()
	set.RegisterBuilder("rootfs", new(rootfs.Builder))
	if err := set.Run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
