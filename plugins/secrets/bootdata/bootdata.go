// Package bootdata is the user-data format the controller hands a new instance and drover-boot reads
// at boot (DESIGN.md §6): which role the instance is, where its Vault is, the response-wrapped SecretID
// that logs it in once, and which secrets to write where.
//
// The format is JSON, version 1:
//
//	{
//	  "version": 1,
//	  "role": "web",
//	  "vault": {
//	    "addr": "https://vault.example.net:8200",
//	    "role_id": "0f3c…",
//	    "wrapped_secret_id": "hvs.CAES…",
//	    "creation_path": "auth/approle/role/drover-web/secret-id",
//	    "auth_mount": "approle",
//	    "ca_cert": "-----BEGIN CERTIFICATE-----\n…"
//	  },
//	  "secrets": [
//	    {"path": "kv/data/web/tls", "field": "key", "name": "tls.key", "owner": "root:www-data", "mode": "0440"},
//	    {"path": "kv/data/web/db", "name": "db.json"}
//	  ],
//	  "certificates": [
//	    {"name": "www", "pki_role": "web", "common_name": "www.lab.example",
//	     "ip_sans": ["${instance.address}"], "ttl": 259200, "reload": ["nginx"]}
//	  ],
//	  "volumes": [
//	    {"name": "pgdata", "guest_path": "/dev/disk/by-id/virtio-vol1", "mount": "/var/lib/postgresql",
//	     "fs": "ext4", "owner": "postgres:postgres", "mode": "0700"}
//	  ]
//	}
//
// A secret with a field is written as that field's value exactly (a string as is, any other JSON value
// as JSON). A secret without one is written as a JSON object of all its fields, keys sorted, followed
// by a newline: JSON rather than KEY=VALUE lines because values such as PEM keys span lines. Owner
// defaults to root:root and mode to 0400; a mode may only grant read and write to the owner and read
// to the group.
//
// The wrapping token is the one secret the user-data carries, and it must reach the instance, so
// Marshal (and json.Marshal of a UserData) writes it in clear. Everything else that prints a
// UserData (fmt, log/slog, the Vault section on its own) shows it as [REDACTED].
package bootdata

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/drover-dev/drover/plugins/secrets"
)

// Version is the only user-data version this package writes and reads.
const Version = 1

// MaxSize is the largest user-data Parse accepts (EC2 allows 16 KiB).
const MaxSize = 64 << 10

// DefaultAuthMount is the AppRole mount an empty AuthMount means.
const DefaultAuthMount = "approle"

// DefaultOwner and DefaultMode are what a SecretFile without them gets.
const (
	DefaultOwner = "root:root"
	DefaultMode  = Mode(0o400)
)

// UserData is what one instance gets at launch.
type UserData struct {
	Version int          `json:"version"`
	Role    string       `json:"role"`
	Vault   *Vault       `json:"vault,omitempty"`
	Secrets []SecretFile `json:"secrets,omitempty"`
	// Volumes are mounted before the role's services start (see VolumeMount).
	Volumes []VolumeMount `json:"volumes,omitempty"`
	// Raft is what a node of a raft cluster (strategy "raft") needs at boot (see RaftNode).
	Raft *RaftNode `json:"raft,omitempty"`
	// Certificates are issued from Vault's PKI engine at boot and renewed (see Certificate).
	Certificates []Certificate `json:"certificates,omitempty"`
}

// Vault is where and how the instance logs in. Only WrappedSecretID is secret; the RoleID alone logs
// nobody in.
type Vault struct {
	Addr   string `json:"addr"`
	RoleID string `json:"role_id"`
	// WrappedSecretID is the wrapping token of a single-use, response-wrapped SecretID. Marshalled on
	// its own (a Vault value rather than a UserData) it shows as [REDACTED].
	WrappedSecretID secrets.Secret `json:"wrapped_secret_id"`
	// CreationPath is the path that must have created the wrapped response:
	// "auth/<mount>/role/drover-<role>/secret-id". drover-boot refuses a token created elsewhere.
	CreationPath string `json:"creation_path"`
	// AuthMount is the AppRole auth mount; empty means "approle".
	AuthMount string `json:"auth_mount,omitempty"`
	// CACert, when set, is the PEM of the CA (or CAs) that signs Vault's certificate; it then is the
	// only CA drover-boot trusts for Vault. Empty means the system's CAs.
	CACert string `json:"ca_cert,omitempty"`
	// Auth is how the instance logs in: AuthAppRole (empty means it) with the wrapped SecretID
	// above, or AuthAWS: Vault's aws auth method, iam type. The instance then signs an
	// sts:GetCallerIdentity request with its instance profile's credentials, taken from the
	// metadata service, and Vault logs it in as AWSRole if that identity is the role's IAM
	// principal: nothing secret is delivered, so RoleID, WrappedSecretID and CreationPath are empty.
	Auth string `json:"auth,omitempty"`
	// AWSRole is the role at the aws auth mount (AuthMount, default "aws"): "drover-<role>".
	AWSRole string `json:"aws_role,omitempty"`
	// IAMServerID, when set, is sent as the X-Vault-AWS-IAM-Server-ID header of the signed request
	// (the mount's iam_server_id_header_value), which makes the request good for this Vault only.
	IAMServerID string `json:"iam_server_id,omitempty"`
}

// Login methods of Vault.Auth.
const (
	AuthAppRole = "approle"
	AuthAWS     = "aws"
)

// DefaultAWSMount is the aws auth mount an empty AuthMount means when Auth is AuthAWS.
const DefaultAWSMount = "aws"

// SecretFile is one secret drover-boot writes.
type SecretFile struct {
	// Path is the KV version 2 API path as declared for the role: "kv/data/web/tls".
	Path string `json:"path"`
	// Field, when set, is the one field written; empty writes all fields as a JSON object.
	Field string `json:"field,omitempty"`
	// Template, when set, is the absolute path inside the image of a Go text/template rendered with
	// the path's fields as its data ({{ .password }}) instead of writing them; missing fields are
	// an error. It excludes Field. Templates are baked into the image (under TemplateDir), so they
	// are scanned like every other file and must hold no secret themselves.
	Template string `json:"template,omitempty"`
	// Name is the file name under the secrets directory (/run/drover/secrets): no slashes.
	Name string `json:"name"`
	// Owner is "user:group" (names or numeric IDs); empty means root:root.
	Owner string `json:"owner,omitempty"`
	// Mode is the file's permissions; zero means 0400.
	Mode Mode `json:"mode,omitempty"`
}

// Mode is a file mode that reads and writes in JSON as an octal string, "0400".
type Mode uint32

// String gives the mode in octal with a leading 0.
func (m Mode) String() string { return fmt.Sprintf("%#o", uint32(m)) }

// MarshalJSON implements json.Marshaler.
func (m Mode) MarshalJSON() ([]byte, error) { return json.Marshal(m.String()) }

// UnmarshalJSON implements json.Unmarshaler: an octal string ("0400", "400", "0o400").
func (m *Mode) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`mode: want an octal string such as "0400"`)
	}
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "0o"), 8, 32)
	if err != nil || len(s) > 6 {
		return errors.New(`mode: want an octal string such as "0400"`)
	}
	*m = Mode(v)
	return nil
}

// Perm returns the mode as os.FileMode, DefaultMode when zero.
func (f SecretFile) Perm() os.FileMode {
	if f.Mode == 0 {
		return os.FileMode(DefaultMode)
	}
	return os.FileMode(f.Mode)
}

// OwnerOrDefault returns Owner, DefaultOwner when empty.
func (f SecretFile) OwnerOrDefault() string {
	if f.Owner == "" {
		return DefaultOwner
	}
	return f.Owner
}

// Mount returns AuthMount; when empty, DefaultAuthMount, or DefaultAWSMount for AuthAWS.
func (v *Vault) Mount() string {
	if m := strings.Trim(v.AuthMount, "/"); m != "" {
		return m
	}
	if v.Auth == AuthAWS {
		return DefaultAWSMount
	}
	return DefaultAuthMount
}

// AWSRoleName is the aws auth role of a drover role: "drover-<role>", like its AppRole and policy.
func AWSRoleName(role string) string { return "drover-" + role }

// NewAWSVault is the Vault section of an instance that logs in with Vault's aws auth method (iam) at
// mount as role's aws role; serverID and caPEM may be empty.
func NewAWSVault(addr, mount, role, serverID, caPEM string) *Vault {
	return &Vault{Addr: addr, Auth: AuthAWS, AuthMount: mount, AWSRole: AWSRoleName(role), IAMServerID: serverID, CACert: caPEM}
}

// CreationPath is the creation path of a SecretID wrapped for role at the AppRole mount.
func CreationPath(mount, role string) string {
	mount = strings.Trim(mount, "/")
	if mount == "" {
		mount = DefaultAuthMount
	}
	return "auth/" + mount + "/role/drover-" + role + "/secret-id"
}

// NewVault is the Vault section for a SecretID w issued for ref's AppRole (as a secrets.Broker returns
// them); caPEM may be empty.
func NewVault(addr string, ref secrets.RoleRef, w secrets.Wrapped, caPEM string) *Vault {
	return &Vault{
		Addr:            addr,
		RoleID:          ref.RoleID,
		WrappedSecretID: w.Token,
		CreationPath:    w.CreationPath,
		AuthMount:       ref.Mount,
		CACert:          caPEM,
	}
}

// wire is UserData as JSON with the wrapping token in clear. It has no methods, so json.Marshal
// writes its fields as they are.
type wire struct {
	Version int           `json:"version"`
	Role    string        `json:"role"`
	Vault   *wireVault    `json:"vault,omitempty"`
	Secrets []SecretFile  `json:"secrets,omitempty"`
	Volumes []VolumeMount `json:"volumes,omitempty"`
	Raft    *RaftNode     `json:"raft,omitempty"`

	Certificates []Certificate `json:"certificates,omitempty"`
}

type wireVault struct {
	Addr            string `json:"addr"`
	RoleID          string `json:"role_id"`
	WrappedSecretID string `json:"wrapped_secret_id"`
	CreationPath    string `json:"creation_path"`
	AuthMount       string `json:"auth_mount,omitempty"`
	CACert          string `json:"ca_cert,omitempty"`
	Auth            string `json:"auth,omitempty"`
	AWSRole         string `json:"aws_role,omitempty"`
	IAMServerID     string `json:"iam_server_id,omitempty"`
}

// MarshalJSON implements json.Marshaler. It reveals WrappedSecretID, and only it: the JSON is the
// user-data, and the instance cannot unwrap a [REDACTED]. So never log a UserData as JSON (slog's
// JSON handler uses LogValue, which redacts), and never embed one in something that is logged,
// stored or printed.
func (u UserData) MarshalJSON() ([]byte, error) {
	w := wire{Version: u.Version, Role: u.Role, Secrets: u.Secrets, Volumes: u.Volumes, Raft: u.Raft, Certificates: u.Certificates}
	if v := u.Vault; v != nil {
		w.Vault = &wireVault{
			Addr:            v.Addr,
			RoleID:          v.RoleID,
			WrappedSecretID: v.WrappedSecretID.Reveal(),
			CreationPath:    v.CreationPath,
			AuthMount:       v.AuthMount,
			CACert:          v.CACert,
			Auth:            v.Auth,
			AWSRole:         v.AWSRole,
			IAMServerID:     v.IAMServerID,
		}
	}
	return json.Marshal(w)
}

// String implements fmt.Stringer (%v, %s, %+v) without the wrapping token.
func (u UserData) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "user-data v%d role %s", u.Version, u.Role)
	if v := u.Vault; v != nil {
		if v.Auth == AuthAWS {
			fmt.Fprintf(&sb, " vault %s auth aws role %s", v.Addr, v.AWSRole)
		} else {
			fmt.Fprintf(&sb, " vault %s role_id %s wrapped_secret_id %s creation_path %s", v.Addr, v.RoleID, secrets.Redacted, v.CreationPath)
		}
	}
	for _, s := range u.Secrets {
		fmt.Fprintf(&sb, " secret %s", s.Path)
		if s.Field != "" {
			fmt.Fprintf(&sb, "#%s", s.Field)
		}
		if s.Template != "" {
			fmt.Fprintf(&sb, " via %s", s.Template)
		}
		fmt.Fprintf(&sb, "->%s", s.Name)
	}
	for _, c := range u.Certificates {
		fmt.Fprintf(&sb, " certificate %s from %s", c.Name, c.IssuePath())
	}
	for _, v := range u.Volumes {
		fmt.Fprintf(&sb, " volume %s %s->%s", v.Name, v.GuestPath, v.Mount)
	}
	if r := u.Raft; r != nil {
		fmt.Fprintf(&sb, " raft node %s join %s", r.NodeID, orNone(r.Join))
	}
	return sb.String()
}

// GoString implements fmt.GoStringer (%#v), the same as String.
func (u UserData) GoString() string { return u.String() }

// LogValue implements slog.LogValuer: every handler, JSON included, gets String.
func (u UserData) LogValue() slog.Value { return slog.StringValue(u.String()) }

// Marshal checks u and returns its JSON, wrapping token included (see MarshalJSON).
func Marshal(u UserData) ([]byte, error) {
	if err := u.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(u)
}

// Parse reads user-data: JSON of a known version, with no unknown fields, that Validate accepts.
// Errors never quote the input (it holds the wrapping token).
func Parse(b []byte) (UserData, error) {
	var u UserData
	if len(b) > MaxSize {
		return u, fmt.Errorf("bootdata: user-data is %d bytes, more than %d", len(b), MaxSize)
	}
	var head struct {
		Version *int `json:"version"`
	}
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&head); err != nil {
		return u, fmt.Errorf("bootdata: user-data is not a JSON object: %s", jsonReason(err))
	}
	switch {
	case head.Version == nil:
		return u, errors.New("bootdata: user-data has no version")
	case *head.Version != Version:
		return u, fmt.Errorf("bootdata: user-data version %d is not supported (this drover-boot reads version %d)", *head.Version, Version)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&u); err != nil {
		return UserData{}, fmt.Errorf("bootdata: user-data: %s", jsonReason(err))
	}
	if _, err := d.Token(); err != io.EOF {
		return UserData{}, errors.New("bootdata: user-data: data after the JSON object")
	}
	if err := u.Validate(); err != nil {
		return UserData{}, err
	}
	if len(u.Volumes) == 0 {
		u.Volumes = nil // "volumes": [] is no volumes, as Marshal writes them
	}
	return u, nil
}

// jsonReason is a decoding error without any of the input: encoding/json's messages quote at most a
// character or a field name, but the input holds a token, so only known shapes pass.
func jsonReason(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q: want %s, got a JSON %s", te.Field, te.Type, te.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	case strings.HasPrefix(err.Error(), "mode"):
		return err.Error() // ours: quotes the mode only
	}
	return "invalid JSON"
}

var (
	roleRE  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	mountRE = regexp.MustCompile(`^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$`)
	pathRE  = regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$`)
	nameRE  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,127}$`)
	ownerRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*:[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
)

// Validate checks u: version, role, a complete Vault section whose creation path is the role's, and
// secrets with exact paths, distinct plain file names, "user:group" owners and modes within 0640 that
// let the owner read; volumes with distinct names, devices under /dev/disk/by-id and mount points.
func (u UserData) Validate() error {
	if u.Version != Version {
		return fmt.Errorf("bootdata: version %d is not supported (want %d)", u.Version, Version)
	}
	if !roleRE.MatchString(u.Role) {
		return fmt.Errorf("bootdata: role %q: want lower-case letters, digits and '-', at most 63", u.Role)
	}
	if err := validateVolumes(u.Volumes); err != nil {
		return err
	}
	if err := u.Raft.validate(); err != nil {
		return err
	}
	if u.Vault == nil {
		if len(u.Secrets) > 0 {
			return errors.New("bootdata: secrets without a vault section")
		}
		if len(u.Certificates) > 0 {
			return errors.New("bootdata: certificates without a vault section")
		}
		return nil
	}
	if err := u.Vault.validate(u.Role); err != nil {
		return err
	}
	if len(u.Secrets) == 0 && len(u.Certificates) == 0 {
		return errors.New("bootdata: a vault section but no secrets or certificates")
	}
	var names []string
	for i, s := range u.Secrets {
		if err := s.validate(); err != nil {
			return fmt.Errorf("bootdata: secrets[%d]: %w", i, err)
		}
		if slices.Contains(names, s.Name) {
			return fmt.Errorf("bootdata: secrets[%d]: name %q is used twice", i, s.Name)
		}
		names = append(names, s.Name)
	}
	return validateCertificates(u.Certificates, names)
}

func (v *Vault) validate(role string) error {
	if u, err := url.Parse(v.Addr); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return fmt.Errorf("bootdata: vault addr %q: want http(s)://host[:port]", v.Addr)
	}
	if !mountRE.MatchString(v.Mount()) {
		return fmt.Errorf("bootdata: vault auth_mount %q: want letters, digits, '-', '_' and '/'", v.AuthMount)
	}
	if v.CACert != "" && !strings.Contains(v.CACert, "-----BEGIN CERTIFICATE-----") {
		return errors.New("bootdata: vault ca_cert holds no PEM certificate")
	}
	switch v.Auth {
	case "", AuthAppRole:
		return v.validateAppRole(role)
	case AuthAWS:
		if v.RoleID != "" || v.WrappedSecretID != "" || v.CreationPath != "" {
			return errors.New("bootdata: vault auth aws takes no role_id, wrapped_secret_id or creation_path: nothing is delivered")
		}
		if want := AWSRoleName(role); v.AWSRole != want {
			return fmt.Errorf("bootdata: vault aws_role %q: want %q (role %s)", v.AWSRole, want, role)
		}
		if strings.ContainsAny(v.IAMServerID, "\r\n") {
			return errors.New("bootdata: vault iam_server_id contains a line break")
		}
		return nil
	}
	return fmt.Errorf("bootdata: vault auth %q: want %q or %q", v.Auth, AuthAppRole, AuthAWS)
}

func (v *Vault) validateAppRole(role string) error {
	if v.AWSRole != "" || v.IAMServerID != "" {
		return errors.New("bootdata: vault aws_role and iam_server_id are for auth aws")
	}
	if v.RoleID == "" {
		return errors.New("bootdata: vault role_id is empty")
	}
	if v.WrappedSecretID == "" {
		return errors.New("bootdata: vault wrapped_secret_id is empty")
	}
	if strings.ContainsAny(v.WrappedSecretID.Reveal(), " \t\r\n") {
		return errors.New("bootdata: vault wrapped_secret_id contains white space")
	}
	if want := CreationPath(v.Mount(), role); v.CreationPath != want {
		return fmt.Errorf("bootdata: vault creation_path %q: want %q (role %s, mount %s)", v.CreationPath, want, role, v.Mount())
	}
	return nil
}

func (s SecretFile) validate() error {
	parts := strings.Split(s.Path, "/")
	if !pathRE.MatchString(s.Path) || slices.Contains(parts, "..") || slices.Contains(parts, ".") {
		return fmt.Errorf("path %q: want an exact KV path such as kv/data/web/tls", s.Path)
	}
	if len(parts) < 3 || parts[1] != "data" {
		return fmt.Errorf("path %q: want a KV version 2 data path: MOUNT/data/PATH", s.Path)
	}
	if strings.ContainsAny(s.Field, "\x00\n") {
		return fmt.Errorf("field %q: no NUL or newline", s.Field)
	}
	if s.Template != "" {
		if s.Field != "" {
			return fmt.Errorf("template %q and field %q: a secret file takes one or the other", s.Template, s.Field)
		}
		if !path.IsAbs(s.Template) || path.Clean(s.Template) != s.Template {
			return fmt.Errorf("template %q: want a clean absolute path inside the image", s.Template)
		}
	}
	if !nameRE.MatchString(s.Name) || s.Name == "." || s.Name == ".." {
		return fmt.Errorf("name %q: want a plain file name (letters, digits, '.', '_', '-', '@', '+'; no slash)", s.Name)
	}
	if s.Owner != "" && !ownerRE.MatchString(s.Owner) {
		return fmt.Errorf("owner %q: want user:group", s.Owner)
	}
	if m := s.Perm(); m&^0o640 != 0 || m&0o400 == 0 {
		return fmt.Errorf("mode %s: want the owner's read, and at most 0640 (owner read-write, group read)", Mode(m))
	}
	return nil
}
