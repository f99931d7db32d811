// Command drover-boot is the agent baked into every drover image. systemd runs it once at boot,
// before the role's services. For now it reports which image booted, on the console and in
// /run/drover/status; fetching the instance's secrets from Vault joins it with the Vault work.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// image is /etc/drover/image.json, written by the image builder.
type image struct {
	Role     string   `json:"role"`
	Identity string   `json:"identity"`
	Secrets  []string `json:"secrets"`
}

// status is /run/drover/status: what the rollout's health checks and a person can read.
type status struct {
	State    string    `json:"state"` // booted, failed
	Role     string    `json:"role,omitempty"`
	Identity string    `json:"identity,omitempty"`
	Time     time.Time `json:"time"`
	Reason   string    `json:"reason,omitempty"`
}

func main() {
	root := flag.String("root", "/", "the root of the system (tests point it at a tree)")
	flag.Parse()
	os.Exit(run(*root, os.Stdout, time.Now))
}

func run(root string, out io.Writer, now func() time.Time) int {
	st := status{State: "booted", Time: now().UTC()}
	img, err := readImage(filepath.Join(root, "etc/drover/image.json"))
	if err != nil {
		st.State, st.Reason = "failed", err.Error()
	} else {
		st.Role, st.Identity = img.Role, img.Identity
	}
	if err := writeStatus(filepath.Join(root, "run/drover/status"), st); err != nil && st.State == "booted" {
		st.State, st.Reason = "failed", err.Error()
	}
	if st.State != "booted" {
		fmt.Fprintf(out, "drover-boot: failed: %s\n", st.Reason)
		return 1
	}
	fmt.Fprintf(out, "drover-boot: role %s image %s booted\n", st.Role, st.Identity)
	return 0
}

func readImage(path string) (image, error) {
	var img image
	b, err := os.ReadFile(path)
	if err != nil {
		return img, fmt.Errorf("drover-boot: reading the image description: %w", err)
	}
	if err := json.Unmarshal(b, &img); err != nil {
		return img, fmt.Errorf("drover-boot: %s is not valid JSON: %w", path, err)
	}
	if img.Role == "" || img.Identity == "" {
		return img, fmt.Errorf("drover-boot: %s names no role or identity", path)
	}
	return img, nil
}

func writeStatus(path string, st status) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("drover-boot: %w", err)
	}
	b, _ := json.Marshal(st)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("drover-boot: writing %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}
