package main

import "testing"

func TestParsePluginVersion(t *testing.T) {
	for in, want := range map[string]string{
		"v0.1.0":                             "0.1.0",
		"v1.2.3-rc.1":                        "1.2.3-rc.1",
		"v0.0.0-20261204091500-0123456789ab": "0.0.0-20261204091500-0123456789ab",
		"dev":                                "0.0.0-dev",
		"(devel)":                            "0.0.0-dev",
		"v1":                                 "0.0.0-dev",
		"v1.2.3+abc":                         "1.2.3+abc",
	} {
		if got := parsePluginVersion(in).String(); got != want {
			t.Errorf("parsePluginVersion(%q) = %q, want %q", in, got, want)
		}
	}
}
