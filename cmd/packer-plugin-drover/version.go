package main

import (
	"regexp"
	"runtime/debug"

	sdkversion "github.com/hashicorp/packer-plugin-sdk/version"
)

// version is set at release time with -ldflags "-X main.version=v0.1.0".
var version = "dev"

// pluginVersion is what the plugin's describe command reports: Packer 1.10 and later reject a plugin
// without a semantic version and compare it with the version in the installed file's name. It is
// the release version, else the module version `go install ...@VERSION` records in the binary,
// else 0.0.0-dev for a build from a work tree.
func pluginVersion() *sdkversion.PluginVersion {
	v := version
	if info, ok := debug.ReadBuildInfo(); ok && v == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		v = info.Main.Version
	}
	return parsePluginVersion(v)
}

// parsePluginVersion turns a Go module or release version (v1.2.3, v0.0.0-20261204-abcdef) into a
// plugin version; anything that is not MAJOR.MINOR.PATCH[-PRERELEASE] becomes 0.0.0-dev.
func parsePluginVersion(v string) *sdkversion.PluginVersion {
	// A semantic version with an optional leading v: core, prerelease, metadata.
	semver := regexp.MustCompile(`^v?((?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*))(?:-([0-9A-Za-z.-]+))?(?:\+([0-9A-Za-z.-]+))?$`)
	m := semver.FindStringSubmatch(v)
	if m == nil {
		return sdkversion.NewPluginVersion("0.0.0", "dev", "")
	}
	return sdkversion.NewPluginVersion(m[1], m[2], m[3])
}
