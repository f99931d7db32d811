package s3lab

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/drover-dev/drover/internal/cloudlab/sigv4"
)

type authError struct {
	Status        int
	Code, Message string
}

// authenticate checks r's SigV4 signature: the Authorization header (sigv4.Verify, in S3's
// variant) or, for a presigned URL, the X-Amz-* query parameters. A request with neither is
// refused, as a private bucket refuses anonymous access.
func (l *Lab) authenticate(r *http.Request, body []byte) *authError {
	if r.URL.Query().Has("X-Amz-Signature") {
		return l.verifyPresigned(r)
	}
	if r.Header.Get("Authorization") == "" {
		return &authError{http.StatusForbidden, "AccessDenied", "Access Denied"}
	}
	_, _, err := sigv4.Verify(r, body, sigv4.Check{Service: "s3", Region: l.Region, AllowUnsigned: true, S3: true,
		Keys: func(id string) (sigv4.Key, bool) {
			return sigv4.Key{Secret: l.SecretAccessKey}, id == l.AccessKeyID
		}})
	if err != nil {
		code := err.Code
		if code == "InvalidClientTokenId" {
			code = "InvalidAccessKeyId" // S3's name for it
		}
		return &authError{err.Status, code, err.Message}
	}
	return nil
}

var credentialRE = regexp.MustCompile(`^([^/]+)/(\d{8})/([a-z0-9-]+)/s3/aws4_request$`)

// maxPresignExpiry is SigV4's limit on X-Amz-Expires: seven days.
const maxPresignExpiry = 7 * 24 * time.Hour

// verifyPresigned checks a query-signed request the way S3 does: the key, the scope, the expiry
// (X-Amz-Date + X-Amz-Expires), and the signature computed again over the request as received.
func (l *Lab) verifyPresigned(r *http.Request) *authError {
	q := r.URL.Query()
	denied := func(msg string) *authError { return &authError{http.StatusForbidden, "AccessDenied", msg} }
	if q.Get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" {
		return &authError{http.StatusBadRequest, "AuthorizationQueryParametersError", "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\""}
	}
	m := credentialRE.FindStringSubmatch(q.Get("X-Amz-Credential"))
	if m == nil {
		return &authError{http.StatusBadRequest, "AuthorizationQueryParametersError", "Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\"."}
	}
	keyID, date, region := m[1], m[2], m[3]
	if keyID != l.AccessKeyID {
		return &authError{http.StatusForbidden, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."}
	}
	if region != l.Region {
		return &authError{http.StatusBadRequest, "AuthorizationQueryParametersError", "Error parsing the X-Amz-Credential parameter; the region '" + region + "' is wrong; expecting '" + l.Region + "'"}
	}
	at, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	if err != nil || at.Format("20060102") != date {
		return &authError{http.StatusBadRequest, "AuthorizationQueryParametersError", "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\" and match the credential's date"}
	}
	secs, err := strconv.Atoi(q.Get("X-Amz-Expires"))
	if err != nil || secs < 1 || time.Duration(secs)*time.Second > maxPresignExpiry {
		return &authError{http.StatusBadRequest, "AuthorizationQueryParametersError", "X-Amz-Expires must be a number of seconds from 1 to 604800"}
	}
	now := time.Now()
	if at.After(now.Add(15 * time.Minute)) {
		return denied("Request is not valid yet")
	}
	if now.After(at.Add(time.Duration(secs) * time.Second)) {
		return denied("Request has expired")
	}
	signed := strings.Split(q.Get("X-Amz-SignedHeaders"), ";")
	if !slices.Contains(signed, "host") {
		return denied("'Host' must be a signed header.")
	}

	unsigned := url.Values{}
	for k, vs := range q {
		if k != "X-Amz-Signature" {
			unsigned[k] = vs
		}
	}
	again, err := http.NewRequest(r.Method, "https://"+r.Host+r.URL.EscapedPath()+"?"+unsigned.Encode(), nil)
	if err != nil {
		return denied(err.Error())
	}
	for _, h := range signed {
		if h != "host" {
			again.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	creds := aws.Credentials{AccessKeyID: keyID, SecretAccessKey: l.SecretAccessKey}
	signedURL, _, err := signer.PresignHTTP(context.Background(), creds, again, "UNSIGNED-PAYLOAD", "s3", region, at)
	if err != nil {
		return &authError{http.StatusInternalServerError, "InternalError", err.Error()}
	}
	u, err := url.Parse(signedURL)
	if err != nil || u.Query().Get("X-Amz-Signature") != q.Get("X-Amz-Signature") {
		return &authError{http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method."}
	}
	return nil
}
