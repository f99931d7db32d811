#!/bin/sh
# planted by drover's e2e test (cmd/drover/scan_e2e_test.go): a made-up value, not a credential
export GH_TOKEN=ghp_DroverPlantedFakeGitHubToken24680135
git push origin main
