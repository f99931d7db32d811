package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/urfave/cli/v2"
)

// version is set at release time with -ldflags "-X main.version=v0.1.0".
var version = "dev"

func versionString() string {
	v := version
	if info, ok := debug.ReadBuildInfo(); ok && v == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		v = info.Main.Version
	}
	return v
}

func versionCommand(a *app) *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print drover's version, Go version and platform",
		Action: func(c *cli.Context) error {
			info := map[string]string{"version": versionString(), "go": runtime.Version(), "platform": runtime.GOOS + "/" + runtime.GOARCH}
			if a.json() {
				writeJSON(a.stdout, info)
				return nil
			}
			fmt.Fprintf(a.stdout, "drover %s (%s, %s)\n", info["version"], info["go"], info["platform"])
			return nil
		},
	}
}
