// Package sigv4 checks AWS Signature Version 4 (header form) the way AWS does, for the fakes of
// AWS APIs (the cloud lab's EC2 and EBS, vaulttest's STS and IAM): it signs the request it got
// again, with the secret key it knows for the access key ID, and compares. A request altered on
// the way, or signed with another key, scope or time, is refused with the error AWS gives.
package sigv4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Error is why a signature was refused: AWS's error code, its message and the HTTP status.
type Error struct {
	Code, Message string
	Status        int
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Key is what the fake knows of an access key ID.
type Key struct {
	Secret string
	// SessionToken, when set, must come with the request (temporary credentials) and be signed.
	SessionToken string
}

// Check is what a fake expects of a request.
type Check struct {
	Service string // the credential scope's service ("ec2", "ebs", "sts")
	Region  string // the scope's region; "" accepts any
	// Keys returns the key of an access key ID; ok false refuses it (InvalidClientTokenId).
	Keys func(keyID string) (k Key, ok bool)
	// AllowUnsigned accepts X-Amz-Content-Sha256: UNSIGNED-PAYLOAD (EBS's PutSnapshotBlock,
	// whose body a checksum header covers instead).
	AllowUnsigned bool
	// S3 checks the way S3 does: the path is signed as sent (no normalization) and escaped once,
	// not twice as for the other services.
	S3 bool
}

var authzRE = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([a-z0-9-]+)/([a-z0-9]+)/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$`)

const unsignedPayload = "UNSIGNED-PAYLOAD"

// Verify checks r's signature over body: the credential scope, the time (15 minutes either way),
// the session token of temporary credentials, and the signature computed again over the request as
// received, Host and all. Like AWS for every service but S3, it normalizes the path first (unless
// c.S3). It
// returns the access key ID and the signed header names (also when it refuses, once they are
// known); a nil error means the signature holds.
func Verify(r *http.Request, body []byte, c Check) (keyID string, signed []string, err *Error) {
	m := authzRE.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		return "", nil, &Error{"IncompleteSignature", "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters.", http.StatusBadRequest}
	}
	keyID, date, region, svc := m[1], m[2], m[3], m[4]
	signed = strings.Split(m[5], ";")
	key, ok := c.Keys(keyID)
	if !ok {
		return keyID, signed, &Error{"InvalidClientTokenId", "The security token included in the request is invalid.", http.StatusForbidden}
	}
	if svc != c.Service || (c.Region != "" && region != c.Region) {
		return keyID, signed, &Error{"SignatureDoesNotMatch", "Credential should be scoped to a valid region and service " + c.Service + ", not '" + region + "' and '" + svc + "'.", http.StatusForbidden}
	}
	at, terr := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if terr != nil || at.Format("20060102") != date {
		return keyID, signed, &Error{"IncompleteSignature", "Date must be in ISO-8601 'basic format'.", http.StatusBadRequest}
	}
	if d := time.Since(at); d > 15*time.Minute || d < -15*time.Minute {
		return keyID, signed, &Error{"RequestExpired", "Request has expired.", http.StatusForbidden}
	}
	if key.SessionToken != "" && (r.Header.Get("X-Amz-Security-Token") != key.SessionToken || !slices.Contains(signed, "x-amz-security-token")) {
		return keyID, signed, &Error{"InvalidClientTokenId", "The security token included in the request is invalid.", http.StatusForbidden}
	}
	if !slices.Contains(signed, "host") {
		return keyID, signed, &Error{"SignatureDoesNotMatch", "'Host' must be a signed header.", http.StatusForbidden}
	}
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" {
		switch {
		case !slices.Contains(signed, "x-amz-content-sha256"):
			return keyID, signed, &Error{"SignatureDoesNotMatch", "X-Amz-Content-Sha256 must be signed.", http.StatusForbidden}
		case h == unsignedPayload && c.AllowUnsigned:
			payloadHash = h
		case h != payloadHash:
			return keyID, signed, &Error{"SignatureDoesNotMatch", "The provided 'x-amz-content-sha256' header does not match what was computed.", http.StatusForbidden}
		}
	}
	p := path.Clean("/" + r.URL.EscapedPath())
	if c.S3 {
		p = r.URL.EscapedPath()
	}
	u := "https://" + r.Host + p
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	again, rerr := http.NewRequest(r.Method, u, bytes.NewReader(body))
	if rerr != nil {
		return keyID, signed, &Error{"IncompleteSignature", rerr.Error(), http.StatusBadRequest}
	}
	again.ContentLength = 0
	for _, h := range signed {
		switch h {
		case "host":
		case "content-length":
			again.ContentLength = int64(len(body))
		default:
			again.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	creds := aws.Credentials{AccessKeyID: keyID, SecretAccessKey: key.Secret, SessionToken: r.Header.Get("X-Amz-Security-Token")}
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = c.S3 })
	if err := signer.SignHTTP(context.Background(), creds, again, payloadHash, svc, region, at); err != nil {
		return keyID, signed, &Error{"InternalFailure", err.Error(), http.StatusInternalServerError}
	}
	if again.Header.Get("Authorization") != r.Header.Get("Authorization") {
		return keyID, signed, &Error{"SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.", http.StatusForbidden}
	}
	return keyID, signed, nil
}
