package main

// The aws login (bootdata.AuthAWS): Vault's aws auth method, iam type, done the way `vault login
// -method=aws` does it (awsutil.GenerateLoginData). Nothing secret travels in the user-data: the
// instance proves who it is with the temporary credentials of its instance profile, which only
// code on the instance can read from the metadata service. It signs an sts:GetCallerIdentity
// request with them but does not send it; Vault does, to STS, and logs the instance in as the
// aws role when the identity STS answers with is the role's IAM principal. The credentials never
// leave the instance, and the signed request is good for one Vault (the IAM server ID header)
// and 15 minutes.

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/drover-dev/drover/plugins/secrets"
	"github.com/drover-dev/drover/plugins/secrets/bootdata"
)

// The request Vault's aws auth method expects signed: STS's global endpoint, which signs for
// us-east-1 whatever region the instance is in, as Vault's own CLI does by default. Vault sends it
// to its configured sts_endpoint, keeping the Host signed here.
const (
	stsURL            = "https://sts.amazonaws.com/"
	stsBody           = "Action=GetCallerIdentity&Version=2011-06-15"
	stsRegion         = "us-east-1"
	iamServerIDHeader = "X-Vault-AWS-IAM-Server-ID"
	imdsCredsPath     = "/latest/meta-data/iam/security-credentials/"
)

// iamRoleNameRE is an IAM role name, as the metadata service lists the instance profile's role.
var iamRoleNameRE = regexp.MustCompile(`^[A-Za-z0-9+=,.@_-]{1,128}$`)

// awsCreds are the instance profile's temporary credentials. The access key ID is not secret to
// AWS, but it is scrubbed from the output all the same.
type awsCreds struct {
	accessKeyID string
	secretKey   secrets.Secret
	token       secrets.Secret
}

// loginAWS logs in at auth/<mount>/login as v.AWSRole with a signed sts:GetCallerIdentity. Only
// reaching the metadata service and Vault is retried (no answer, or Vault's 5xx or 429), for at
// most Wait, and always with the same instance's credentials: a refusal is final.
func (b *boot) loginAWS(ctx context.Context, vc *vaultClient, v *bootdata.Vault) (vaultToken, error) {
	deadline := time.Now().Add(b.c.Wait)
	switch {
	case b.c.MetadataURL == none:
		return vaultToken{}, errors.New("aws login: the metadata service is off (metadata-url none), and the instance profile's credentials come from it")
	case b.labVM():
		return vaultToken{}, errors.New("aws login: this is a lab vm (fw_cfg lab mark), which never asks the metadata service for credentials")
	}
	creds, err := b.instanceCredentials(ctx, strings.TrimRight(b.c.MetadataURL, "/"), deadline)
	if err != nil {
		return vaultToken{}, err
	}
	for {
		body, err := b.signedCallerIdentity(ctx, creds, v)
		if err != nil {
			return vaultToken{}, err
		}
		tok, err := vc.loginWith(ctx, v.Mount(), body)
		var te *transportError
		switch {
		case err == nil:
			b.scrub.add(tok.token)
			return tok, nil
		case !errors.As(err, &te) && statusOf(err) < 500 && statusOf(err) != http.StatusTooManyRequests:
			return vaultToken{}, fmt.Errorf("aws login: vault refused the instance's aws identity for role %s at auth/%s: %s", v.AWSRole, v.Mount(), stsErrors(err.Error()))
		}
		if again, ierr := waitRetry(ctx, deadline); !again {
			if ierr != nil {
				return vaultToken{}, ierr
			}
			return vaultToken{}, fmt.Errorf("aws login: vault at %s not answering for %s: %w", v.Addr, b.c.Wait, err)
		}
	}
}

// instanceCredentials reads the instance profile's credentials from the metadata service at base,
// EC2's IMDSv2 only: the role name is the first line of the security-credentials listing, its
// credentials a JSON document under it.
func (b *boot) instanceCredentials(ctx context.Context, base string, deadline time.Time) (awsCreds, error) {
	for {
		c, err := b.fetchCredentials(ctx, base)
		var te *transportError
		if !errors.As(err, &te) {
			return c, err
		}
		if again, ierr := waitRetry(ctx, deadline); !again {
			if ierr != nil {
				return awsCreds{}, ierr
			}
			return awsCreds{}, fmt.Errorf("aws login: the metadata service %s not answering for %s: %w", base, b.c.Wait, err)
		}
	}
}

func (b *boot) fetchCredentials(ctx context.Context, base string) (awsCreds, error) {
	tok, code, err := b.imdsToken(ctx, base)
	if err != nil {
		return awsCreds{}, err
	}
	if code != http.StatusOK {
		return awsCreds{}, fmt.Errorf("aws login: the metadata service %s is not ec2's imdsv2 (PUT /latest/api/token: %d %s), so it has no instance profile credentials", base, code, http.StatusText(code))
	}
	list, err := metadataGet(ctx, base, imdsCredsPath, tok)
	if err != nil {
		return awsCreds{}, err
	}
	name, _, _ := strings.Cut(strings.TrimSpace(string(list)), "\n")
	name = strings.TrimSpace(name)
	if !iamRoleNameRE.MatchString(name) {
		return awsCreds{}, fmt.Errorf("aws login: the metadata service has no instance profile credentials: GET %s lists no iam role name", imdsCredsPath)
	}
	raw, err := metadataGet(ctx, base, imdsCredsPath+name, tok)
	if err != nil {
		return awsCreds{}, err
	}
	defer clear(raw)
	var doc struct {
		Code            string         `json:"Code"`
		AccessKeyID     string         `json:"AccessKeyId"`
		SecretAccessKey secrets.Secret `json:"SecretAccessKey"`
		Token           secrets.Secret `json:"Token"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return awsCreds{}, fmt.Errorf("aws login: the instance profile credentials of iam role %s from the metadata service are not the json expected", name)
	}
	c := awsCreds{accessKeyID: doc.AccessKeyID, secretKey: doc.SecretAccessKey, token: doc.Token}
	b.scrub.add(secrets.Secret(c.accessKeyID))
	b.scrub.add(c.secretKey)
	b.scrub.add(c.token)
	switch {
	case doc.Code != "Success":
		return awsCreds{}, fmt.Errorf("aws login: the instance profile credentials of iam role %s are not usable: the metadata service says code %q", name, doc.Code)
	case c.accessKeyID == "" || c.secretKey == "" || c.token == "":
		return awsCreds{}, fmt.Errorf("aws login: the instance profile credentials of iam role %s from the metadata service lack AccessKeyId, SecretAccessKey or Token", name)
	}
	return c, nil
}

// metadataGet is GET path of the metadata service with its IMDSv2 session token. 404 means the
// instance has no instance profile (or no credentials for it yet).
func metadataGet(ctx context.Context, base, path string, tok secrets.Secret) ([]byte, error) {
	resp, data, err := metadataRead(ctx, base, path, tok, 64<<10)
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return data, nil
	case http.StatusNotFound:
		return nil, fmt.Errorf("aws login: the metadata service has no instance profile credentials: GET %s: %s (does the instance have an instance profile?)", path, resp.Status)
	}
	return nil, fmt.Errorf("aws login: the metadata service's instance profile credentials: GET %s: %s", path, resp.Status)
}

// signedCallerIdentity is the login body of Vault's aws auth method, iam type: the role, and an
// sts:GetCallerIdentity request signed with SigV4 (service sts, us-east-1, the session token
// signed as X-Amz-Security-Token, and the IAM server ID header when set), base64-encoded as Vault
// reads it. The signed request logs in for 15 minutes, so it is as secret as a token.
func (b *boot) signedCallerIdentity(ctx context.Context, c awsCreds, v *bootdata.Vault) (map[string]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, stsURL, strings.NewReader(stsBody))
	if err != nil {
		return nil, fmt.Errorf("aws login: the sts request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	if v.IAMServerID != "" {
		req.Header.Set(iamServerIDHeader, v.IAMServerID)
	}
	sum := sha256.Sum256([]byte(stsBody))
	creds := aws.Credentials{AccessKeyID: c.accessKeyID, SecretAccessKey: c.secretKey.Reveal(), SessionToken: c.token.Reveal(), Source: "instance profile"}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "sts", stsRegion, time.Now().UTC()); err != nil {
		return nil, fmt.Errorf("aws login: signing sts:GetCallerIdentity: %w", err)
	}
	b.scrub.add(secrets.Secret(req.Header.Get("Authorization")))
	headers, err := json.Marshal(req.Header)
	if err != nil {
		return nil, fmt.Errorf("aws login: the signed request's headers: %w", err)
	}
	defer clear(headers)
	b64 := base64.StdEncoding.EncodeToString
	return map[string]string{
		"role":                    v.AWSRole,
		"iam_http_request_method": http.MethodPost,
		"iam_request_url":         b64([]byte(stsURL)),
		"iam_request_body":        b64([]byte(stsBody)),
		"iam_request_headers":     b64(headers),
	}, nil
}

// stsErrorRE is an AWS Query API error document, as Vault quotes STS's answer in its own error.
var stsErrorRE = regexp.MustCompile(`(?s)<ErrorResponse.*?<Code>([^<]*)</Code>.*?<Message>([^<]*)</Message>.*?</ErrorResponse>`)

// stsErrors shortens the STS error documents in msg to "Code: Message".
func stsErrors(msg string) string {
	return stsErrorRE.ReplaceAllStringFunc(msg, func(doc string) string {
		m := stsErrorRE.FindStringSubmatch(doc)
		return html.UnescapeString(m[1]) + ": " + html.UnescapeString(m[2])
	})
}

// waitRetry waits a second before another attempt. It is false when that would pass deadline, and
// false with errInterrupted when ctx ends first.
func waitRetry(ctx context.Context, deadline time.Time) (bool, error) {
	if ctx.Err() != nil {
		return false, errInterrupted
	}
	if time.Now().Add(time.Second).After(deadline) {
		return false, nil
	}
	select {
	case <-ctx.Done():
		return false, errInterrupted
	case <-time.After(time.Second):
		return true, nil
	}
}
