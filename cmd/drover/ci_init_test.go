package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
	"gopkg.in/yaml.v3"
)

// pipeline runs drover ci init PLATFORM --stdout on the example fleet (four roles with deploy
// blocks), with extra lines appended to its vault block.
func pipeline(t *testing.T, platform, vaultExtra string) []byte {
	t.Helper()
	dir := t.TempDir()
	copyTree(t, "../../examples/homelab", dir)
	fleetFile := filepath.Join(dir, "drover.hcl")
	if vaultExtra != "" {
		b, err := os.ReadFile(fleetFile)
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.Replace(b, []byte(`  address = "http://127.0.0.1:8200"`), []byte(`  address = "http://127.0.0.1:8200"`+"\n"+vaultExtra), 1)
		if err := os.WriteFile(fleetFile, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out, stderr := drover(t, nil, "--fleet", fleetFile, "ci", "init", platform, "--stdout")
	if code != exitOK {
		t.Fatalf("ci init %s: exit %d\n%s", platform, code, stderr)
	}
	return []byte(out)
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", src+"/.", dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
}

// The GitHub workflow passes actionlint (with shellcheck over its run scripts when installed), with
// and without the OIDC login, and has what the pipeline needs: push to the branch, manual actions
// per role, one run at a time, the id-token permission only with jwt_role.
func TestCIInitGitHubPassesActionlint(t *testing.T) {
	shellcheck := ""
	if p, err := exec.LookPath("shellcheck"); err == nil {
		shellcheck = p
	}
	cfg := filepath.Join(t.TempDir(), "actionlint.yaml")
	// The runner's own label, declared as a user declares the labels of their self-hosted runners.
	if err := os.WriteFile(cfg, []byte("self-hosted-runner:\n  labels: [drover]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, extra := range map[string]string{"token": "", "jwt": `  jwt_role = "drover-ci"`} {
		wf := pipeline(t, "github", extra)
		var lintOut bytes.Buffer
		l, err := actionlint.NewLinter(&lintOut, &actionlint.LinterOptions{Shellcheck: shellcheck, ConfigFile: cfg})
		if err != nil {
			t.Fatal(err)
		}
		errs, err := l.Lint(".github/workflows/drover.yml", wf, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range errs {
			t.Errorf("%s: actionlint: %s:%d:%d: %s [%s]", name, e.Filepath, e.Line, e.Column, e.Message, e.Kind)
		}
		var doc struct {
			On struct {
				Push     struct{ Branches []string }
				Schedule []struct{ Cron string }
				Dispatch struct {
					Inputs map[string]struct{ Options []string } `yaml:"inputs"`
				} `yaml:"workflow_dispatch"`
			} `yaml:"on"`
			Concurrency struct {
				Group            string
				CancelInProgress bool `yaml:"cancel-in-progress"`
			}
			Permissions map[string]string
			Jobs        map[string]struct {
				Steps []struct{ Name, Run string }
			}
		}
		if err := yaml.Unmarshal(wf, &doc); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(doc.On.Push.Branches, []string{"main"}) || !slices.Equal(doc.On.Dispatch.Inputs["role"].Options, []string{"web", "db", "dns", "vault"}) ||
			!slices.Equal(doc.On.Dispatch.Inputs["action"].Options, []string{"ci", "refresh", "promote", "rollback", "abort"}) ||
			len(doc.On.Schedule) != 1 || doc.On.Schedule[0].Cron != defaultRefreshCron {
			t.Errorf("%s: triggers %+v", name, doc.On)
		}
		// The weekly run and the refresh by hand pass --refresh; a push does not.
		if s := string(wf); !strings.Contains(s, "REFRESH: ${{ github.event_name == 'schedule' || inputs.action == 'refresh' }}") ||
			!strings.Contains(s, `if [ "$REFRESH" = true ]; then set -- --refresh; fi`) || !strings.Contains(s, `drover ci "$@"`) {
			t.Errorf("%s: the drover ci step does not refresh on the schedule:\n%s", name, s)
		}
		if doc.Concurrency.Group == "" || doc.Concurrency.CancelInProgress {
			t.Errorf("%s: concurrency %+v: runs must queue, not cancel each other", name, doc.Concurrency)
		}
		if got := doc.Permissions["id-token"]; (name == "jwt") != (got == "write") {
			t.Errorf("%s: id-token permission %q", name, got)
		}
		if s := string(wf); (name == "jwt") != strings.Contains(s, "DROVER_VAULT_JWT=$tok") || (name == "token") != strings.Contains(s, "secrets.VAULT_TOKEN") {
			t.Errorf("%s: the Vault login does not follow the vault block:\n%s", name, s)
		}
	}
}

// The GitLab pipeline has the structure GitLab documents for what it needs: stages that exist, the
// push job, manual promote/rollback/abort jobs per role in a later stage, a resource group on every
// job (runs queue), id_tokens only with jwt_role.
func TestCIInitGitLabStructure(t *testing.T) {
	for name, extra := range map[string]string{"token": "", "jwt": `  jwt_role = "drover-ci"`} {
		var doc map[string]any
		if err := yaml.Unmarshal(pipeline(t, "gitlab", extra), &doc); err != nil {
			t.Fatal(err)
		}
		stages, _ := doc["stages"].([]any)
		if len(stages) != 2 || stages[0] != "deploy" || stages[1] != "manual" {
			t.Fatalf("%s: stages %v", name, stages)
		}
		base, _ := doc[".drover"].(map[string]any)
		if base["resource_group"] == nil || (name == "jwt") != (base["id_tokens"] != nil) {
			t.Errorf("%s: the .drover template %v", name, base)
		}
		keywords := []string{"extends", "stage", "script", "when", "allow_failure", "artifacts", "tags", "resource_group", "id_tokens"}
		jobs := 0
		for key, v := range doc {
			job, ok := v.(map[string]any)
			if !ok || key == "workflow" || key == "variables" || strings.HasPrefix(key, ".") {
				continue
			}
			jobs++
			for k := range job {
				if !slices.Contains(keywords, k) {
					t.Errorf("%s: job %s: unknown keyword %q", name, key, k)
				}
			}
			if job["extends"] != ".drover" || !slices.Contains(stages, job["stage"]) {
				t.Errorf("%s: job %s: %v", name, key, job)
			}
			if script, _ := job["script"].([]any); len(script) == 0 {
				t.Errorf("%s: job %s has no script", name, key)
			}
			if key != "drover-ci" && (job["when"] != "manual" || job["stage"] != "manual") {
				t.Errorf("%s: job %s is not manual: %v", name, key, job)
			}
		}
		for _, role := range []string{"web", "db", "dns", "vault"} {
			for _, act := range []string{"promote", "rollback", "abort"} {
				job, _ := doc[act+"-"+role].(map[string]any)
				if script, _ := job["script"].([]any); len(script) != 1 || script[0] != "drover rollout "+act+" "+role {
					t.Errorf("%s: job %s-%s: %v", name, act, role, job)
				}
			}
		}
		ci, _ := doc["drover-ci"].(map[string]any)
		if script := fmt.Sprint(ci["script"]); !strings.Contains(script, `if [ "$CI_PIPELINE_SOURCE" = schedule ]; then set -- --refresh; fi`) {
			t.Errorf("%s: drover-ci does not refresh in a scheduled pipeline: %s", name, script)
		}
		if jobs != 1+4*3 {
			t.Errorf("%s: %d jobs, want drover-ci and 3 manual jobs for each of 4 roles", name, jobs)
		}
	}
}

// The Drone pipeline is an exec pipeline (builds need the machine) with Drone's documented keys, a
// concurrency limit of one, drover ci on push and one promotion target per manual action.
func TestCIInitDroneStructure(t *testing.T) {
	var doc struct {
		Kind, Type, Name string
		Platform         struct{ OS, Arch string }
		Concurrency      struct{ Limit int }
		Trigger          struct{ Branch, Event []string }
		Steps            []struct {
			Name     string
			Commands []string
			When     struct{ Event, Target []string }
		}
	}
	out := pipeline(t, "drone", "")
	if err := yaml.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Kind != "pipeline" || doc.Type != "exec" || doc.Concurrency.Limit != 1 || !slices.Equal(doc.Trigger.Branch, []string{"main"}) ||
		!slices.Equal(doc.Trigger.Event, []string{"push", "cron", "promote"}) || doc.Platform.OS != "linux" {
		t.Errorf("pipeline %+v", doc)
	}
	var targets []string
	for _, s := range doc.Steps {
		if len(s.Commands) == 0 {
			t.Errorf("step %q has no commands", s.Name)
		}
		targets = append(targets, s.When.Target...)
	}
	if len(doc.Steps) != 4 || !slices.Equal(doc.Steps[0].When.Event, []string{"push", "cron"}) ||
		!strings.Contains(strings.Join(doc.Steps[0].Commands, "\n"), `if [ "$DRONE_BUILD_EVENT" = cron ]; then set -- --refresh; fi`) || !slices.Equal(targets, []string{"promote", "rollback", "abort"}) {
		t.Errorf("steps %+v", doc.Steps)
	}
	// The commands are sh: check them when shellcheck is here.
	if sc, err := exec.LookPath("shellcheck"); err == nil {
		for _, s := range doc.Steps {
			cmd := exec.Command(sc, "-s", "sh", "-")
			cmd.Stdin = strings.NewReader(strings.Join(s.Commands, "\n") + "\n")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("step %q: shellcheck: %v\n%s", s.Name, err, out)
			}
		}
	}
}

// drover ci init writes the file where the CI system reads it, refuses to overwrite one, and
// refuses an unknown system.
func TestCIInitWritesAndRefuses(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, "../../examples/homelab", dir)
	fleetFile := filepath.Join(dir, "drover.hcl")
	if code, out, stderr := drover(t, nil, "--fleet", fleetFile, "ci", "init", "github"); code != exitOK || !strings.Contains(out, "wrote "+filepath.Join(dir, ".github/workflows/drover.yml")) {
		t.Fatalf("ci init github: exit %d\n%s%s", code, out, stderr)
	}
	if code, _, stderr := drover(t, nil, "--fleet", fleetFile, "ci", "init", "github"); code != exitUsage || !strings.Contains(stderr, "exists") || !strings.Contains(stderr, "--force") {
		t.Errorf("ci init github again: exit %d\n%s", code, stderr)
	}
	if code, _, stderr := drover(t, nil, "--fleet", fleetFile, "ci", "init", "jenkins"); code != exitUsage || !strings.Contains(stderr, "drover ci init github, gitlab or drone") {
		t.Errorf("ci init jenkins: exit %d\n%s", code, stderr)
	}
	for _, bad := range []string{"17 4 * *", "17 4 * * 1; rm -rf /", "@weekly"} {
		if code, _, stderr := drover(t, nil, "--fleet", fleetFile, "ci", "init", "gitlab", "--stdout", "--refresh-schedule", bad); code != exitUsage || !strings.Contains(stderr, "is not five cron fields") {
			t.Errorf("ci init --refresh-schedule %q: exit %d\n%s", bad, code, stderr)
		}
	}
	if code, out, stderr := drover(t, nil, "--fleet", fleetFile, "ci", "init", "drone", "--stdout", "--refresh-schedule", "0 3 * * 0"); code != exitOK || !strings.Contains(out, `drone cron add OWNER/REPO drover-refresh "0 0 3 * * 0" --branch main`) {
		t.Errorf("ci init drone --refresh-schedule: exit %d\n%s%s", code, out, stderr)
	}
}
