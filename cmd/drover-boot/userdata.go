package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/drover-dev/drover/plugins/secrets"
	"github.com/drover-dev/drover/plugins/secrets/bootdata"
)

// metadataTimeout bounds each request to the metadata service: it answers on the link in
// milliseconds, and a machine without one should not wait long.
const metadataTimeout = 2 * time.Second

// userData returns the instance's user-data and where it came from, from the first source that has
// some: the --user-data file (then the only source), qemu's fw_cfg, the metadata service. No
// user-data anywhere is nil and no error. need (the image declares secrets) makes the metadata
// service worth waiting for while the network comes up.
func (b *boot) userData(ctx context.Context, need bool) ([]byte, string, error) {
	if p := b.c.UserDataPath; p != "" {
		data, err := readLimited(p)
		if err != nil {
			return nil, "", fmt.Errorf("user-data file: %w", err)
		}
		if len(strings.TrimSpace(string(data))) == 0 {
			return nil, "file " + p, nil
		}
		return data, "file " + p, nil
	}
	if p := b.c.FwCfgPath; p != none {
		if p == defaultFwCfg {
			loadFwCfg()
		}
		data, err := readLimited(p)
		switch {
		case errors.Is(err, fs.ErrNotExist): // not qemu, or qemu without user-data
		case err != nil:
			return nil, "", fmt.Errorf("fw_cfg user-data: %w", err)
		case len(data) > 0:
			return data, "fw_cfg", nil
		}
		// drover's lab marks its VMs in fw_cfg: there, fw_cfg is the only source. A lab VM must
		// never ask 169.254.169.254, which its user-mode network would send out of this machine.
		if b.labVM() {
			return nil, "fw_cfg (lab)", nil
		}
	}
	if u := b.c.MetadataURL; u != none {
		deadline := time.Now()
		if need || b.onCloud() {
			deadline = deadline.Add(b.c.Wait)
		}
		if b.vendor() == digitalOceanVendor { // no DHCP there: the network comes from the metadata first
			return b.digitalOcean(ctx, strings.TrimRight(u, "/"), deadline)
		}
		return b.metadataUserData(ctx, strings.TrimRight(u, "/"), deadline)
	}
	return nil, "", nil
}

// sources describes where userData looked, for a failure that found nothing.
func (b *boot) sources() string {
	if b.c.UserDataPath != "" {
		return "the file " + b.c.UserDataPath
	}
	var s []string
	if b.c.FwCfgPath != none {
		s = append(s, "fw_cfg "+b.c.FwCfgPath)
	}
	if b.c.MetadataURL != none {
		md := "the metadata service " + b.c.MetadataURL
		if b.mdUnreachable != nil {
			md += " (unreachable: " + b.mdUnreachable.Error() + ")"
		}
		s = append(s, md)
	}
	if len(s) == 0 {
		return "no source: every source is off"
	}
	return strings.Join(s, " and ")
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, bootdata.MaxSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > bootdata.MaxSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, bootdata.MaxSize)
	}
	return data, nil
}

// The SMBIOS system vendors of the clouds drover publishes to, as Linux shows them in
// /sys/class/dmi/id/sys_vendor.
const (
	ec2Vendor          = "Amazon EC2"
	vultrVendor        = "Vultr"
	digitalOceanVendor = "DigitalOcean"
)

// vendor is the firmware's system vendor, or "" when it cannot be read.
func (b *boot) vendor() string {
	v, err := os.ReadFile(filepath.Join(b.c.Root, "sys/class/dmi/id/sys_vendor"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(v))
}

// onCloud reports whether the firmware says this machine is an instance of a cloud drover
// publishes to (EC2, Vultr, DigitalOcean). There the metadata service exists for certain, so it is
// worth waiting for while the network comes up even for an image without secrets: drover-boot
// starts after network.target, often before DHCP has given the NIC an address, and one early try
// would miss the instance's user-data.
func (b *boot) onCloud() bool {
	switch b.vendor() {
	case ec2Vendor, vultrVendor, digitalOceanVendor:
		return true
	}
	return false
}

// labMarker is the fw_cfg entry (next to user-data) that the lab's qemu provider gives every VM.
const labMarker = "lab"

// labVM reports whether fw_cfg holds the lab's mark: the machine is a VM of drover's lab.
func (b *boot) labVM() bool {
	if b.c.FwCfgPath == none {
		return false
	}
	_, err := os.Stat(filepath.Join(filepath.Dir(filepath.Dir(b.c.FwCfgPath)), labMarker))
	return err == nil
}

// loadFwCfg loads qemu's fw_cfg sysfs driver when its directory is missing (Debian builds it as a
// module, and nothing may have loaded it yet). On a machine that is not qemu it loads and finds
// nothing.
func loadFwCfg() {
	if _, err := os.Stat("/sys/firmware/qemu_fw_cfg"); err == nil || os.Geteuid() != 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = exec.CommandContext(ctx, "modprobe", "-q", "qemu_fw_cfg").Run()
}

// transportError is a request that got no HTTP answer.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

var metadataClient = &http.Client{
	Timeout: metadataTimeout,
	Transport: &http.Transport{
		Proxy:       nil, // never through a proxy: the service is on the link
		DialContext: (&net.Dialer{Timeout: metadataTimeout}).DialContext,
	},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// metadataUserData asks the metadata service at base, retrying while it cannot be reached until
// deadline. A service that cannot be reached by then means no user-data.
func (b *boot) metadataUserData(ctx context.Context, base string, deadline time.Time) ([]byte, string, error) {
	for {
		data, src, err := b.imds(ctx, base)
		var te *transportError
		if !errors.As(err, &te) {
			return data, src, err
		}
		b.mdUnreachable = te
		if again, err := waitRetry(ctx, deadline); !again {
			return nil, "", err
		}
	}
}

// imds reads /latest/user-data the EC2 IMDSv2 way: a session token from PUT /latest/api/token, sent
// with the GET. A service that does not know the PUT (404, 405) is Vultr's, whose /latest/user-data
// needs no token. 404 for the user-data itself means the instance has none.
func (b *boot) imds(ctx context.Context, base string) ([]byte, string, error) {
	tok, code, err := b.imdsToken(ctx, base)
	switch {
	case err != nil:
		return nil, "", err
	case code == http.StatusOK:
		return b.getUserData(ctx, base, tok, "ec2-imdsv2")
	case code == http.StatusNotFound, code == http.StatusMethodNotAllowed:
		return b.getUserData(ctx, base, "", "vultr")
	}
	return nil, "", fmt.Errorf("metadata service %s: PUT /latest/api/token: %d %s", base, code, http.StatusText(code))
}

// imdsToken is PUT /latest/api/token: an IMDSv2 session token when the service answers 200, and the
// status it answered either way. The token goes to the scrubber.
func (b *boot) imdsToken(ctx context.Context, base string) (secrets.Secret, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+"/latest/api/token", nil)
	if err != nil {
		return "", 0, fmt.Errorf("metadata service %s: %w", base, err)
	}
	req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "60")
	resp, err := metadataClient.Do(req)
	if err != nil {
		return "", 0, &transportError{err}
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", resp.StatusCode, nil
	}
	tok := secrets.Secret(strings.TrimSpace(string(body)))
	clear(body)
	if tok == "" {
		return "", 0, fmt.Errorf("metadata service %s: PUT /latest/api/token returned no token", base)
	}
	b.scrub.add(tok)
	return tok, resp.StatusCode, nil
}

func (b *boot) getUserData(ctx context.Context, base string, tok secrets.Secret, src string) ([]byte, string, error) {
	resp, data, err := metadataRead(ctx, base, "/latest/user-data", tok, bootdata.MaxSize+1)
	if err != nil {
		return nil, "", err
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, src, nil
	default:
		return nil, "", fmt.Errorf("metadata service %s (%s): GET /latest/user-data: %s", base, src, resp.Status)
	}
	if len(data) > bootdata.MaxSize {
		return nil, "", fmt.Errorf("metadata service %s (%s): user-data larger than %d bytes", base, src, bootdata.MaxSize)
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, src, nil
	}
	return data, src, nil
}

// metadataRead is GET path of the metadata service at base, with the IMDSv2 session token when
// there is one: the response (its body closed) and, when it is 200, at most limit bytes of the
// body. Not reaching the service, or losing it half way, is a *transportError.
func metadataRead(ctx context.Context, base, path string, tok secrets.Secret, limit int64) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("metadata service %s: %w", base, err)
	}
	if tok != "" {
		req.Header.Set("X-aws-ec2-metadata-token", tok.Reveal())
	}
	resp, err := metadataClient.Do(req)
	if err != nil {
		return nil, nil, &transportError{err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp, nil, nil
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return nil, nil, &transportError{err}
	}
	return resp, data, nil
}
