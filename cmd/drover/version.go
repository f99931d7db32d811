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

// buildInfo is what drover version reports: the release or module version and, from the build
// info Go records, the module path and the VCS revision the binary was built from.
type buildInfo struct {
	Version      string `json:"version"`
	Module       string `json:"module,omitempty"`
	Revision     string `json:"revision,omitempty"`      // vcs.revision: the commit
	RevisionTime string `json:"revision_time,omitempty"` // vcs.time
	Modified     string `json:"modified,omitempty"`      // vcs.modified: "true" when built from a tree with changes
	Go           string `json:"go"`
	Platform     string `json:"platform"`
}

func readBuildInfo() buildInfo {
	info, _ := debug.ReadBuildInfo()
	return fromBuildInfo(versionString(), info)
}

// fromBuildInfo reads the module path and the vcs.* settings that go build records (when it builds
// from a checkout with -buildvcs, the default outside GOFLAGS=-buildvcs=false).
func fromBuildInfo(version string, info *debug.BuildInfo) buildInfo {
	b := buildInfo{Version: version, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if info == nil {
		return b
	}
	b.Module = info.Main.Path
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.RevisionTime = s.Value
		case "vcs.modified":
			b.Modified = s.Value
		}
	}
	return b
}

func versionCommand(a *app) *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print drover's version, the commit it was built from, Go version and platform",
		Action: func(c *cli.Context) error {
			info := readBuildInfo()
			if a.json() {
				writeJSON(a.stdout, info)
				return nil
			}
			fmt.Fprintf(a.stdout, "drover %s (%s, %s)\n", info.Version, info.Go, info.Platform)
			if info.Module != "" {
				fmt.Fprintf(a.stdout, "module   %s\n", info.Module)
			}
			if info.Revision != "" {
				rev := info.Revision
				if info.Modified == "true" {
					rev += " (with uncommitted changes)"
				}
				fmt.Fprintf(a.stdout, "revision %s %s\n", rev, info.RevisionTime)
			} else {
				fmt.Fprintln(a.stdout, "revision unknown (built without VCS information, as go test and go run do)")
			}
			return nil
		},
	}
}
