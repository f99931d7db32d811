package fleet

import (
	"regexp"
	"time"

	"github.com/hashicorp/hcl/v2"
)

var (
	deploySchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "compute", Required: true}, {Name: "count"}, {Name: "strategy"}, {Name: "ports"},
			{Name: "keep_old"}, {Name: "auto_promote"}, {Name: "watch"}, {Name: "aws_iam_role"},
		},
		Blocks: []hcl.BlockHeaderSchema{
			{Type: "health", LabelNames: []string{"type"}}, {Type: "cutover", LabelNames: []string{"type"}},
			{Type: "volume", LabelNames: []string{"name"}},
		},
	}
	healthSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "port", Required: true}, {Name: "path"}, {Name: "expect"}, {Name: "query"}, {Name: "interval"},
		{Name: "timeout"}, {Name: "healthy_threshold"}, {Name: "deadline"}, {Name: "tls_skip_verify"},
		{Name: "scheme"}, {Name: "ca_file"},
	}}
	cutoverSchemas = map[string]*hcl.BodySchema{
		"dns": {Attributes: []hcl.AttributeSchema{{Name: "dns", Required: true}, {Name: "name", Required: true}, {Name: "ttl"}, {Name: "drain"}}},
		// dns, name and ttl on an ip cutover publish the failover address under a name.
		"ip":   {Attributes: []hcl.AttributeSchema{{Name: "ip", Required: true}, {Name: "drain"}, {Name: "dns"}, {Name: "name"}, {Name: "ttl"}}},
		"none": {},
	}
)

// iamRoleARN is an IAM role's ARN in any partition, with an optional path.
var iamRoleARN = regexp.MustCompile(`^arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$`)

// cutoverAnySchema decodes a cutover type the catalog knows and cutoverSchemas does not: every
// attribute of Cutover, none required.
var cutoverAnySchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "dns"}, {Name: "name"}, {Name: "ttl"}, {Name: "ip"}, {Name: "drain"},
}}

// types lists the names of a kind the deploy catalog knows (fleet.DeployStrategy, ...).
func (d *decoder) types(kind string) []string {
	if d.deploy == nil {
		return nil
	}
	return d.deploy.Types(kind)
}

func (d *decoder) decodeDeploy(f *Fleet, b *hcl.Block, opts Options) *Deploy {
	dep := &Deploy{Count: 1, Strategy: "bluegreen", KeepOld: 15 * time.Minute, Watch: 2 * time.Minute,
		Cutover: Cutover{Type: "none"}, Range: b.DefRange}
	if d.deploy == nil {
		d.errorf(b.DefRange, "No deploy catalog", "drover was built without a deploy catalog; this is a bug.")
		return dep
	}
	c := d.content(b.Body, deploySchema)
	if d.str(c.Attributes, "compute", &dep.Compute) {
		d.nonEmpty(c.Attributes, "compute", dep.Compute, "the compute block the role runs on")
	}
	d.integer(c.Attributes, "count", 1, 1000, &dep.Count)
	d.str(c.Attributes, "strategy", &dep.Strategy) // checked with the whole role (checkStrategy)
	if attr, ok := c.Attributes["ports"]; ok {
		var ports []int
		if v, ok := d.value(attr, listOfNumbers, "a list of port numbers"); ok {
			for it := v.ElementIterator(); it.Next(); {
				_, e := it.Element()
				p, acc := e.AsBigFloat().Int64()
				if !e.AsBigFloat().IsInt() || acc != 0 || p < 1 || p > 65535 {
					d.errorf(attr.Expr.Range(), "Value out of range", "\"ports\" must hold port numbers between 1 and 65535, got %s.", describeNumber(e.AsBigFloat()))
					continue
				}
				ports = append(ports, int(p))
			}
		}
		dep.Ports = ports
	}
	d.duration(c.Attributes, "keep_old", &dep.KeepOld)
	d.boolean(c.Attributes, "auto_promote", &dep.AutoPromote)
	d.duration(c.Attributes, "watch", &dep.Watch)
	if d.str(c.Attributes, "aws_iam_role", &dep.AWSIAMRole) && !iamRoleARN.MatchString(dep.AWSIAMRole) {
		d.errorf(c.Attributes["aws_iam_role"].Expr.Range(), "Invalid IAM role",
			"\"aws_iam_role\" is the ARN of the IAM role the instances run as, such as \"arn:aws:iam::123456789012:role/web\", got %q.", dep.AWSIAMRole)
	}

	var cutovers hcl.Blocks
	for _, blk := range c.Blocks {
		switch blk.Type {
		case "health":
			if hc, ok := d.decodeHealth(f, blk, opts); ok {
				dep.Health = append(dep.Health, hc)
			}
		case "cutover":
			cutovers = append(cutovers, blk)
		case "volume":
			if v, ok := d.decodeVolume(blk); ok {
				dep.Volumes = append(dep.Volumes, v)
			}
		}
	}
	if len(cutovers) > 1 {
		d.errorf(cutovers[1].DefRange, "Duplicate cutover block", "A deploy has at most one cutover block; the first is at %s.", pos(cutovers[0].DefRange))
	}
	if len(cutovers) > 0 {
		d.decodeCutover(cutovers[0], &dep.Cutover)
	}
	if _, set := c.Attributes["strategy"]; !set && len(dep.Volumes) > 0 {
		dep.Strategy = HandoffStrategy // data on a volume is handed over, never left behind
	}
	d.checkHealthPorts(c, dep)
	d.checkVolumes(c, dep)
	return dep
}

func (d *decoder) decodeHealth(f *Fleet, b *hcl.Block, opts Options) (HealthCheck, bool) {
	hc := HealthCheck{Type: b.Labels[0], Path: "/", Expect: 200, Interval: 2 * time.Second, Timeout: 2 * time.Second,
		Healthy: 2, Deadline: 5 * time.Minute}
	if types := d.types(DeployHealth); !contains(types, hc.Type) {
		d.errorf(b.LabelRanges[0], "Unknown health check type", "Health check type must be one of %s, got %q.%s",
			quoteList(types), hc.Type, didYouMean(hc.Type, types))
		return hc, false
	}
	c := d.content(b.Body, healthSchema)
	ok := d.integer(c.Attributes, "port", 1, 65535, &hc.Port)
	if d.str(c.Attributes, "path", &hc.Path) {
		if problem := healthPathProblem(hc.Path); problem != "" {
			d.errorf(c.Attributes["path"].Expr.Range(), "Invalid health check path", "%s; got %q.", problem, hc.Path)
			ok = false
		}
	}
	d.integer(c.Attributes, "expect", 100, 599, &hc.Expect)
	if d.str(c.Attributes, "query", &hc.Query) {
		if problem := dnsNameProblem(hc.Query); problem != "" {
			d.errorf(c.Attributes["query"].Expr.Range(), "Invalid name", "\"query\" is the name asked: %s; got %q.", problem, hc.Query)
			ok = false
		}
	}
	d.duration(c.Attributes, "interval", &hc.Interval)
	d.duration(c.Attributes, "timeout", &hc.Timeout)
	d.integer(c.Attributes, "healthy_threshold", 1, 100, &hc.Healthy)
	d.duration(c.Attributes, "deadline", &hc.Deadline)
	d.boolean(c.Attributes, "tls_skip_verify", &hc.TLSSkipVerify)
	d.decodeHealthTLS(f, c, &hc, opts)
	if _, set := c.Attributes["query"]; hc.Type == "dns" && !set {
		d.errorf(b.Body.MissingItemRange(), "Missing required argument", "A dns health check needs \"query\", the name to ask the instance.")
	}
	if attr, set := c.Attributes["timeout"]; set && hc.Timeout > hc.Interval {
		d.errorf(attr.Expr.Range(), "Invalid health check timing", "\"timeout\" (%s) must not exceed \"interval\" (%s).", hc.Timeout, hc.Interval)
	}
	return hc, ok
}

// decodeHealthTLS reads how a check speaks TLS: scheme (a vault check's http or https) and ca_file
// (the PEM file of the certificate authority an https endpoint is verified with, relative to the
// fleet file).
func (d *decoder) decodeHealthTLS(f *Fleet, c *hcl.BodyContent, hc *HealthCheck, opts Options) {
	if attr, ok := c.Attributes["scheme"]; ok && d.str(c.Attributes, "scheme", &hc.Scheme) {
		if hc.Type != "vault" {
			d.errorf(attr.Expr.Range(), "Unsupported argument", "\"scheme\" is for vault checks; the scheme of a health \"%s\" check is its type (health \"https\" for TLS).", hc.Type)
		} else {
			d.oneOf(c.Attributes, "scheme", hc.Scheme, "http", "https")
		}
	}
	var ca string
	if !d.str(c.Attributes, "ca_file", &ca) {
		return
	}
	rng := c.Attributes["ca_file"].Expr.Range()
	if !hc.TLS() {
		d.errorf(rng, "Unsupported argument", "\"ca_file\" verifies an https endpoint: use it on health \"https\", or on health \"vault\" with scheme = \"https\".")
		return
	}
	hc.CAFile = resolvePath(f.Dir, ca)
	d.checkSource(opts, rng, ca, hc.CAFile, f.shownDir)
}

func (d *decoder) decodeCutover(b *hcl.Block, co *Cutover) {
	co.Type = b.Labels[0]
	if types := d.types(DeployCutover); !contains(types, co.Type) {
		d.errorf(b.LabelRanges[0], "Unknown cutover type", "Cutover type must be one of %s, got %q.%s",
			quoteList(types), co.Type, didYouMean(co.Type, types))
		return
	}
	schema, ok := cutoverSchemas[co.Type]
	if !ok {
		schema = cutoverAnySchema
	}
	c := d.content(b.Body, schema)
	co.TTL = 60
	if d.str(c.Attributes, "dns", &co.DNS) {
		d.nonEmpty(c.Attributes, "dns", co.DNS, "the dns block whose record moves")
	}
	if d.str(c.Attributes, "name", &co.Name) {
		if problem := dnsNameProblem(co.Name); problem != "" {
			d.errorf(c.Attributes["name"].Expr.Range(), "Invalid record name", "\"name\" is the record's name in the zone: %s; got %q.", problem, co.Name)
		}
	}
	d.integer(c.Attributes, "ttl", 1, 604800, &co.TTL)
	if d.str(c.Attributes, "ip", &co.IP) {
		d.nonEmpty(c.Attributes, "ip", co.IP, "the ip block whose address moves")
	}
	d.duration(c.Attributes, "drain", &co.Drain)
	if co.Type == "ip" {
		_, hasDNS := c.Attributes["dns"]
		_, hasName := c.Attributes["name"]
		if hasDNS != hasName {
			d.errorf(b.Body.MissingItemRange(), "Missing required argument",
				"An ip cutover publishes its address only with both \"dns\" (the dns block) and \"name\" (the record name).")
		}
	}
}

// checkHealthPorts makes sure every checked port is reachable: with ports declared, a health check on
// another port could never pass through the lab's host forwards. Without ports, the checked ports are
// the ports.
func (d *decoder) checkHealthPorts(c *hcl.BodyContent, dep *Deploy) {
	if _, declared := c.Attributes["ports"]; !declared {
		for _, hc := range dep.Health {
			if !containsInt(dep.Ports, hc.Port) {
				dep.Ports = append(dep.Ports, hc.Port)
			}
		}
		return
	}
	for _, hc := range dep.Health {
		if !containsInt(dep.Ports, hc.Port) {
			d.errorf(c.Attributes["ports"].Expr.Range(), "Health check port not exposed",
				"The %s health check uses port %d, which is not in \"ports\" %v; add it.", hc.Type, hc.Port, dep.Ports)
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func containsInt(list []int, n int) bool {
	for _, v := range list {
		if v == n {
			return true
		}
	}
	return false
}
