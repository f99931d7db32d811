package fleet

import (
	"io/fs"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

var listOfNumbers = cty.List(cty.Number)

// checkReferences resolves every name a role uses (its base, compute, dns and ip blocks) and the
// cross-block rules that need the whole file: secrets need a vault block, a strategy admits the
// deploy block (DeployCatalog.Admit).
func (d *decoder) checkReferences(f *Fleet) {
	baseNames := []string{}
	for _, b := range f.Bases {
		baseNames = append(baseNames, b.Name)
	}
	if f.Base(DefaultBase().Name) == nil {
		baseNames = append(baseNames, DefaultBase().Name)
	}
	for _, role := range f.Roles {
		body := role.syntax
		if role.Image.Base != "" && !contains(baseNames, role.Image.Base) {
			d.unknownRef(attrRange(body, "image", "base"), "base", role.Name, role.Image.Base, baseNames)
		}
		if (len(role.Image.SecretPaths()) > 0 || len(role.Image.Certificates) > 0) && f.Vault == nil {
			rng := attrRange(body, "image", "secrets")
			switch {
			case len(role.Image.Secrets) > 0:
			case len(role.Image.SecretFiles) > 0:
				rng = role.Image.SecretFiles[0].Range
			default:
				rng = role.Image.Certificates[0].Range
			}
			d.errorf(rng, "Secrets without a vault block",
				"Role %q fetches secrets at boot, but the fleet has no vault block saying where Vault is.", role.Name)
		}
		if role.Image.Arch == "" {
			if b := f.Base(role.Image.Base); b != nil {
				role.Image.Arch = b.Arch
			} else {
				role.Image.Arch = DefaultBase().Arch
			}
		}
		dep := role.Deploy
		if dep == nil {
			continue
		}
		if dep.Compute != "" && f.Provider(KindCompute, dep.Compute) == nil {
			d.unknownRef(attrRange(body, "deploy", "compute"), "compute", role.Name, dep.Compute, names(f.Compute))
		} else if comp := f.Provider(KindCompute, dep.Compute); comp != nil && iamRoleARN.MatchString(dep.AWSIAMRole) {
			if r, ok := comp.Config.(iamRoleRunner); !ok || !r.RunsAsIAMRole() {
				d.errorf(attrRange(body, "deploy", "aws_iam_role"), "No IAM role on this compute",
					"Role %q runs as the IAM role %q, but its instances run on compute %q of type %q, which cannot give an instance an IAM role: deploy it to an aws compute block, or remove aws_iam_role to log in with an AppRole.",
					role.Name, dep.AWSIAMRole, comp.Name, comp.Type)
			}
		}
		if dep.Cutover.DNS != "" {
			d.checkVerifiable(f, role, attrRange(body, "deploy", "cutover", "dns"))
		}
		switch dep.Cutover.Type {
		case "dns":
			if dep.Cutover.DNS != "" && f.Provider(KindDNS, dep.Cutover.DNS) == nil {
				d.unknownRef(attrRange(body, "deploy", "cutover", "dns"), "dns", role.Name, dep.Cutover.DNS, names(f.DNS))
			}
		case "ip":
			if ipb := f.Provider(KindIP, dep.Cutover.IP); dep.Cutover.IP != "" && ipb == nil {
				d.unknownRef(attrRange(body, "deploy", "cutover", "ip"), "ip", role.Name, dep.Cutover.IP, names(f.IP))
			} else if ipb != nil && ipb.Compute != "" && dep.Compute != "" && ipb.Compute != dep.Compute {
				d.errorf(attrRange(body, "deploy", "cutover", "ip"), "Address on another compute block",
					"Role %q runs on compute %q, but ip %q moves between the instances of compute %q: it could never point at this role's instances.",
					role.Name, dep.Compute, ipb.Name, ipb.Compute)
			}
			if dep.Cutover.DNS != "" && f.Provider(KindDNS, dep.Cutover.DNS) == nil {
				d.unknownRef(attrRange(body, "deploy", "cutover", "dns"), "dns", role.Name, dep.Cutover.DNS, names(f.DNS))
			}
		}
		d.checkStrategy(role)
		d.checkRPiDeploy(f, role)
		d.checkRoleVolumes(f, role)
	}
}

// checkStrategy asks the deploy catalog whether role's strategy exists and admits its deploy block,
// and reports each refusal at the attribute it names.
func (d *decoder) checkStrategy(role *Role) {
	if d.deploy == nil {
		return // decodeDeploy reported it
	}
	body := role.syntax
	known, refusals := d.deploy.Admit(role)
	if !known {
		types := d.types(DeployStrategy)
		d.errorf(attrRange(body, "deploy", "strategy"), "Invalid value",
			"%q must be one of %s, got %q.%s", "strategy", quoteList(types), role.Deploy.Strategy, didYouMean(role.Deploy.Strategy, types))
		return
	}
	for _, r := range refusals {
		d.errorf(attrRange(body, "deploy", r.Attribute), r.Summary, "%s", r.Detail)
	}
}

// iamRoleRunner is implemented by the configs of compute providers that can launch an instance as
// an IAM role (EC2's instance profiles), which a deploy's aws_iam_role needs.
type iamRoleRunner interface {
	RunsAsIAMRole() bool
}

// verifyLimiter is implemented by the configs of dns providers whose records can be set in a way
// the authoritative servers will never show (Cloudflare's proxied records answer with Cloudflare's
// addresses): such a cutover could never be verified, so it is refused here.
type verifyLimiter interface {
	// VerifyLimit says why a change cannot be verified at the authoritative servers, or "".
	VerifyLimit() string
}

func (d *decoder) checkVerifiable(f *Fleet, role *Role, rng hcl.Range) {
	p := f.Provider(KindDNS, role.Deploy.Cutover.DNS)
	if p == nil {
		return
	}
	if v, ok := p.Config.(verifyLimiter); ok {
		if why := v.VerifyLimit(); why != "" {
			d.errorf(rng, "Cutover cannot be verified",
				"Role %q publishes its name through dns %q, but %s.", role.Name, p.Name, why)
		}
	}
}

func (d *decoder) unknownRef(rng hcl.Range, kind, role, name string, declared []string) {
	if d.declaredBroken[kind+"/"+name] {
		return
	}
	list := "none"
	if len(declared) > 0 {
		list = quoteList(declared)
	}
	d.errorf(rng, "Reference to undeclared "+kind,
		"Role %q refers to %s %q, which is not declared (declared: %s).%s", role, kind, name, list, didYouMean(name, declared))
}

func names(ps []*Provider) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Name)
	}
	sort.Strings(out)
	return out
}

// attrRange walks nested blocks (the last name is the attribute) and returns the attribute's value
// range, or the innermost block's range when the attribute is absent.
func attrRange(body *hclsyntax.Body, path ...string) hcl.Range {
	if body == nil {
		return hcl.Range{}
	}
	for _, blockType := range path[:len(path)-1] {
		var next *hclsyntax.Body
		for _, b := range body.Blocks {
			if b.Type == blockType {
				next = b.Body
				break
			}
		}
		if next == nil {
			return body.SrcRange
		}
		body = next
	}
	if a, ok := body.Attributes[path[len(path)-1]]; ok {
		return a.Expr.Range()
	}
	return body.SrcRange
}

// fsMode turns a Unix mode such as 04755 into Go's fs.FileMode, whose special bits differ.
func fsMode(m uint64) fs.FileMode {
	mode := fs.FileMode(m) & fs.ModePerm
	if m&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
