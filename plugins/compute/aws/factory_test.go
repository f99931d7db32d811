package aws_test

import (
	"testing"

	"github.com/drover-dev/drover/internal/cloudlab/awslab"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/aws"
	"github.com/drover-dev/drover/plugins/config"
)

// TestFactoryWithEndpointVariables opens the provider as drover does (Factory, the SDK's default
// chain) with the SDK's own variables pointing it at the fake: credentials from
// AWS_ACCESS_KEY_ID, endpoints from AWS_ENDPOINT_URL_EC2 and AWS_ENDPOINT_URL_EBS, which
// aws-sdk-go-v2/config v1.33.15 resolves per service.
func TestFactoryWithEndpointVariables(t *testing.T) {
	l := newLab(t, awslab.Options{})
	t.Setenv("AWS_ACCESS_KEY_ID", awslab.DefaultAccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", awslab.DefaultSecretKey)
	t.Setenv("AWS_REGION", l.cloud.Region())
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_ENDPOINT_URL_EC2", l.cloud.EC2URL())
	t.Setenv("AWS_ENDPOINT_URL_EBS", l.cloud.EBSURL())
	f := aws.Factory()
	cfg, err := f.NewConfig(config.OS())
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.Open(t.Context(), cfg, config.Env{Name: "prod", Lookup: config.OS()})
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := p.(compute.Publisher)
	if !ok {
		t.Fatalf("%T is not a compute.Publisher", p)
	}
	src, _, _ := sparseSource(t, 3)
	ref, err := pub.Publish(t.Context(), src, nil)
	if err != nil {
		t.Fatalf("Publish through the endpoint variables: %v", err)
	}
	if _, err := p.Launch(t.Context(), compute.Spec{Token: "env-1", Image: compute.Image{Published: ref}}); err != nil {
		t.Fatalf("Launch through the endpoint variables: %v", err)
	}
	if got := len(l.cloud.Instances()); got != 1 {
		t.Errorf("the fake holds %d instances, want 1", got)
	}
}
