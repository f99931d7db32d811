package main

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/urfave/cli/v2"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/plugins/secrets"
)

//go:embed pipelines/*.tmpl
var pipelineTemplates embed.FS

// pipelinePlatforms are the CI systems drover ci init writes a pipeline for, with the file each
// reads it from in the repository.
var pipelinePlatforms = map[string]string{
	"github": ".github/workflows/drover.yml",
	"gitlab": ".gitlab-ci.yml",
	"drone":  ".drone.yml",
}

// pipelineData is what a pipeline template is given.
type pipelineData struct {
	Fleet, Branch string
	Roles         []string // roles with a deploy block: the ones a person promotes or rolls back
	JWT           bool     // the vault block logs in with the job's OIDC token
	JWTEnv        string
	Actions       []string // what a person does by hand
	// RefreshCron is when the weekly drover ci --refresh runs: five cron fields, UTC.
	RefreshCron string
}

func (d pipelineData) RoleList() string { return strings.Join(d.Roles, ", ") }
func (d pipelineData) FirstRole() string {
	if len(d.Roles) == 0 {
		return ""
	}
	return d.Roles[0]
}

func ciInitCommand(a *app) *cli.Command {
	return &cli.Command{
		Name:      "init",
		Usage:     "write a CI pipeline for the fleet's repository: github, gitlab or drone",
		ArgsUsage: "github|gitlab|drone",
		Description: `Writes the pipeline file of a CI system for the repository that holds the fleet file:
  github  .github/workflows/drover.yml
  gitlab  .gitlab-ci.yml
  drone   .drone.yml
(the paths are relative to the fleet file's directory; --file names another). The pipeline runs
drover ci on every push to --branch, treats exit 3 (a rollout waits at ready) as success with a
notice, runs drover ci --refresh weekly (--refresh-schedule, a cron expression in UTC: in the
file on GitHub; GitLab and Drone keep schedules in their settings, and the file's header gives the
one command that creates it), and lets a person promote, roll back or abort each role's rollout by hand
(workflow_dispatch inputs, manual jobs, Drone promotions with DROVER_ROLE). Two runs of the fleet
never overlap (concurrency group, resource group, concurrency limit).

The jobs run on a runner of your own (root, mmdebstrap, qemu: where drover doctor passes), whose
/var/cache/drover (base trees) and /var/lib/drover (state) persist between runs; with a store
"etcd" block the rollout state is shared with the people who promote by hand.

When the fleet's vault block has jwt_role, the pipeline hands the job's OIDC token to drover
(GitHub: id-token permission and the audience in the variable DROVER_VAULT_AUDIENCE; GitLab:
id_tokens), so no Vault token is stored in CI (docs/vault-jwt.md). Otherwise, and on Drone, which
issues no OIDC token, VAULT_TOKEN comes from the CI's secrets.

Examples:
   drover ci init github
   drover ci init gitlab --branch production
   drover ci init drone --stdout`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "branch", Value: "main", Usage: "the branch whose pushes run drover ci"},
			&cli.StringFlag{Name: "refresh-schedule", Value: defaultRefreshCron, Usage: "when the weekly drover ci --refresh runs: five cron fields, UTC (default Mondays 04:17)"},
			&cli.StringFlag{Name: "file", Usage: "where to write the pipeline (default: the CI system's own path, next to the fleet file)"},
			&cli.BoolFlag{Name: "stdout", Usage: "print the pipeline instead of writing it"},
			&cli.BoolFlag{Name: "force", Usage: "overwrite a pipeline file that exists"},
		},
		Action: func(c *cli.Context) error {
			platform := c.Args().First()
			if _, ok := pipelinePlatforms[platform]; !ok || c.NArg() != 1 {
				return usageError(fmt.Sprintf("name one CI system, got %q", strings.Join(c.Args().Slice(), " ")), "drover ci init github, gitlab or drone")
			}
			branch := c.String("branch")
			if branch == "" || strings.ContainsAny(branch, " \t\n\"'`$") {
				return usageError(fmt.Sprintf("--branch %q is not a branch name", branch), "for example --branch main")
			}
			cron := c.String("refresh-schedule")
			if !validCron(cron) {
				return usageError(fmt.Sprintf("--refresh-schedule %q is not five cron fields", cron), `for example --refresh-schedule "17 4 * * 1" (Mondays at 04:17 UTC)`)
			}
			f, err := a.requireFleet(c)
			if err != nil {
				return err
			}
			d := pipelineFor(f, c.String("fleet"), branch)
			d.RefreshCron = cron
			text, err := renderPipeline(platform, d)
			if err != nil {
				return failed(err, "")
			}
			if c.Bool("stdout") {
				_, err := a.stdout.Write(text)
				return err
			}
			path := c.String("file")
			if path == "" {
				path = filepath.Join(f.Dir, pipelinePlatforms[platform])
			}
			return a.writePipeline(path, text, c.Bool("force"))
		},
	}
}

// defaultRefreshCron is Mondays at 04:17 UTC: off the hour, when schedulers are busiest.
const defaultRefreshCron = "17 4 * * 1"

// validCron says whether s is five cron fields of the characters cron allows: the pipelines put it
// inside quotes and commands, so nothing else may get through.
func validCron(s string) bool {
	fields := strings.Fields(s)
	if len(fields) != 5 || strings.Join(fields, " ") != s {
		return false
	}
	for _, f := range fields {
		if strings.Trim(f, "0123456789*/,-") != "" {
			return false
		}
	}
	return true
}

// pipelineFor gathers what the templates need from the fleet.
func pipelineFor(f *fleet.Fleet, fleetFlag, branch string) pipelineData {
	d := pipelineData{Fleet: filepath.Base(fleetFlag), Branch: branch, Actions: []string{"promote", "rollback", "abort"}}
	for _, r := range f.Roles {
		if r.Deploy != nil {
			d.Roles = append(d.Roles, r.Name)
		}
	}
	if f.Vault != nil {
		if l, ok := f.Vault.Config.(secrets.CILogin); ok && l.CITokenEnv() != "" {
			d.JWT, d.JWTEnv = true, l.CITokenEnv()
		}
	}
	return d
}

func renderPipeline(platform string, d pipelineData) ([]byte, error) {
	if len(d.Roles) == 0 {
		return nil, errors.New("ci init: the fleet deploys no role (no deploy block): a pipeline would only build; drover build is the command for that")
	}
	src, err := fs.ReadFile(pipelineTemplates, "pipelines/"+platform+".yml.tmpl")
	if err != nil {
		return nil, fmt.Errorf("ci init: %w", err)
	}
	tmpl, err := template.New(platform).Delims("[[", "]]").Option("missingkey=error").Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("ci init: the %s template: %w", platform, err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("ci init: the %s template: %w", platform, err)
	}
	return b.Bytes(), nil
}

func (a *app) writePipeline(path string, text []byte, force bool) error {
	if _, err := os.Stat(path); err == nil && !force {
		return usageError(fmt.Sprintf("%s exists", path), "compare it with drover ci init --stdout, or overwrite it with --force")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return failed(err, "")
	}
	if err := os.WriteFile(path, text, 0o644); err != nil {
		return failed(err, "")
	}
	if a.json() {
		writeJSON(a.stdout, map[string]any{"ok": true, "file": path})
		return nil
	}
	fmt.Fprintf(a.stdout, "wrote %s: commit it next to the fleet file\n", path)
	return nil
}
