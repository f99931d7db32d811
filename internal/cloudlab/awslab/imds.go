package awslab

// The instance metadata service, as EC2 documents IMDSv2
// (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-service.html):
// PUT /latest/api/token with X-aws-ec2-metadata-token-ttl-seconds (1 to 21600) answers a session
// token; GETs carry it in X-aws-ec2-metadata-token. An instance launched with HttpTokens=required
// answers 401 to a GET without a valid token; with optional, IMDSv1 GETs work too. Served:
// /latest/user-data (404 when the instance has none), /latest/meta-data/ with instance-id,
// instance-type, ami-id, local-ipv4, public-ipv4, hostname, placement/availability-zone,
// placement/region and, for an instance with an instance profile,
// iam/security-credentials/ (the role's name) and iam/security-credentials/ROLE (its credentials
// as JSON); /latest/dynamic/instance-identity/document. Left out: signatures of the identity
// document (pkcs7, rsa2048), network/, tags/instance, spot/ and events/, the hop limit.

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

type metadata struct {
	c  *Cloud
	id string

	mu     sync.Mutex
	tokens map[string]time.Time // token -> expiry
}

// Metadata is the metadata service of the instance with the ID id, as its guest sees it at
// 169.254.169.254. It is what MachineSpec.Metadata holds; tests without a Hypervisor call it
// directly (an httptest server around it, or ServeHTTP). It answers 404 to everything once the
// instance is gone.
func (c *Cloud) Metadata(id string) http.Handler {
	c.mu.Lock()
	defer c.mu.Unlock()
	if in := c.instances[id]; in != nil {
		return in.imds
	}
	return http.NotFoundHandler()
}

func (m *metadata) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Server", "EC2ws")
	if r.Header.Get("X-Forwarded-For") != "" { // IMDSv2 refuses proxied token requests
		http.Error(w, "Forbidden", http.StatusForbidden)
		return
	}
	if r.URL.Path == "/latest/api/token" {
		m.token(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD, PUT")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	m.c.mu.Lock()
	in := m.c.instances[m.id]
	var doc map[string]string
	var userData []byte
	var tokens string
	var role *InstanceProfile
	if in != nil && in.State != "terminated" {
		tokens, userData, role = in.HTTPTokens, in.UserData, in.role
		doc = m.c.metadataValues(in)
	}
	m.c.mu.Unlock()
	if doc == nil {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	if tok := r.Header.Get("X-aws-ec2-metadata-token"); tok != "" || tokens == "required" {
		if !m.valid(tok) {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
	}
	p := r.URL.Path
	switch {
	case p == "/latest/user-data" || p == "/latest/user-data/":
		if userData == nil {
			http.Error(w, "Not Found", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(userData)
	case p == "/latest/dynamic/instance-identity/document":
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(doc["identity"]))
	case strings.HasPrefix(p, "/latest/meta-data/iam/security-credentials/"):
		name := strings.TrimPrefix(p, "/latest/meta-data/iam/security-credentials/")
		switch {
		case role == nil:
			http.Error(w, "Not Found", http.StatusNotFound)
		case name == "":
			text(w, role.Role)
		case name == role.Role:
			exp := role.Expiration
			if exp.IsZero() {
				exp = time.Now().Add(time.Hour)
			}
			b, _ := json.MarshalIndent(map[string]string{"Code": "Success", "LastUpdated": time.Now().UTC().Format(time.RFC3339),
				"Type": "AWS-HMAC", "AccessKeyId": role.AccessKeyID, "SecretAccessKey": role.SecretAccessKey, "Token": role.Token,
				"Expiration": exp.UTC().Format(time.RFC3339)}, "", "  ")
			text(w, string(b))
		default:
			http.Error(w, "Not Found", http.StatusNotFound)
		}
	case strings.HasPrefix(p, "/latest/meta-data/"):
		v, ok := doc[strings.TrimPrefix(p, "/latest/meta-data/")]
		if !ok || (v == "" && !strings.HasSuffix(p, "/")) {
			http.Error(w, "Not Found", http.StatusNotFound)
			return
		}
		if p == "/latest/meta-data/iam/" && role == nil {
			http.Error(w, "Not Found", http.StatusNotFound)
			return
		}
		text(w, v)
	default:
		http.Error(w, "Not Found", http.StatusNotFound)
	}
}

func text(w http.ResponseWriter, s string) {
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(s))
}

// token answers PUT /latest/api/token.
func (m *metadata) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut {
		w.Header().Set("Allow", "PUT")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	ttl, err := strconv.Atoi(r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds"))
	if err != nil || ttl < 1 || ttl > 21600 {
		http.Error(w, "Bad Request", http.StatusBadRequest)
		return
	}
	b := make([]byte, 42)
	_, _ = rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	m.mu.Lock()
	m.tokens[tok] = time.Now().Add(time.Duration(ttl) * time.Second)
	m.mu.Unlock()
	w.Header().Set("X-aws-ec2-metadata-token-ttl-seconds", strconv.Itoa(ttl))
	text(w, tok)
}

func (m *metadata) valid(tok string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	exp, ok := m.tokens[tok]
	return ok && time.Now().Before(exp)
}

// metadataValues is the instance's metadata paths (under /latest/meta-data/) and its identity
// document (under "identity"); c.mu is held.
func (c *Cloud) metadataValues(in *instance) map[string]string {
	zone := c.opts.Region + "a"
	host := "ip-" + strings.ReplaceAll(in.PrivateIP.String(), ".", "-") + ".ec2.internal"
	public := c.publicOf(in)
	identity, _ := json.MarshalIndent(map[string]any{
		"accountId": c.opts.Account, "architecture": in.arch, "availabilityZone": zone, "billingProducts": nil,
		"devpayProductCodes": nil, "marketplaceProductCodes": nil, "imageId": in.ImageID, "instanceId": in.ID,
		"instanceType": in.InstanceType, "kernelId": nil, "ramdiskId": nil, "pendingTime": ec2Time(in.LaunchTime),
		"privateIp": in.PrivateIP.String(), "region": c.opts.Region, "version": "2017-09-30",
	}, "", "  ")
	listing := []string{"ami-id", "hostname", "instance-id", "instance-type", "local-hostname", "local-ipv4", "placement/"}
	if public != "" {
		listing = append(listing, "public-ipv4")
	}
	if in.role != nil {
		listing = append(listing, "iam/")
	}
	v := map[string]string{
		"": strings.Join(listing, "\n"), "ami-id": in.ImageID, "hostname": host, "local-hostname": host,
		"instance-id": in.ID, "instance-type": in.InstanceType, "local-ipv4": in.PrivateIP.String(),
		"placement/": "availability-zone\nregion", "placement/availability-zone": zone, "placement/region": c.opts.Region,
		"iam/": "security-credentials/", "identity": string(identity),
	}
	if public != "" {
		v["public-ipv4"] = public
	}
	return v
}
