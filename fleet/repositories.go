package fleet

import (
	"fmt"
	"net/url"
	"strings"
	"unicode"

	"github.com/hashicorp/hcl/v2"
)

// Repository is a repository block: a third-party apt repository (HashiCorp's, Docker's) that the
// image's packages may come from, verified with a key kept in the fleet's repository, never one
// fetched at build time.
type Repository struct {
	Name       string
	URI        string   // http:// or https:// URL of the repository's root (the one holding dists/)
	Suite      string   // the distribution under dists/, such as "bookworm" or "stable"
	Components []string // default ["main"]
	// Architectures restrict the repository to these Debian architectures (apt's arch= option);
	// empty for the image's own.
	Architectures []string
	Key           string // absolute path of the OpenPGP public key file that signs the repository
	Range         hcl.Range
}

var repositorySchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "uri", Required: true}, {Name: "suite", Required: true}, {Name: "components"},
	{Name: "architectures"}, {Name: "key", Required: true},
}}

// decodeRepositories reads the repository blocks of a base or an image body, in file order. Each
// problem that can be known without the network (a URI that is not http or https, a missing suite,
// a key file that is not an OpenPGP public key, a duplicate name) is reported at the attribute at
// fault; an unreachable, unsigned or wrongly signed repository is found when the role is built.
func (d *decoder) decodeRepositories(f *Fleet, blocks hcl.Blocks, opts Options) []Repository {
	var out []Repository
	seen := map[string]hcl.Range{}
	for _, b := range blocks {
		if b.Type != "repository" {
			continue
		}
		name := b.Labels[0]
		if prev, dup := seen[name]; dup {
			d.errorf(b.LabelRanges[0], "Duplicate repository", "A repository named %q was already declared at %s.", name, pos(prev))
			continue
		}
		seen[name] = b.DefRange
		if !validName(name) {
			d.errorf(b.LabelRanges[0], "Invalid repository name", "Repository name %q must start with a letter and contain only letters, digits, _ and -: it names the repository's files in the image.", name)
		}
		c := d.content(b.Body, repositorySchema)
		repo := Repository{Name: name, Components: []string{"main"}, Range: b.DefRange}
		ok := true
		if d.str(c.Attributes, "uri", &repo.URI) {
			if u, err := url.Parse(repo.URI); err != nil || strings.ContainsFunc(repo.URI, unicode.IsSpace) || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				d.errorf(c.Attributes["uri"].Expr.Range(), "Invalid repository URI",
					"\"uri\" of repository %q must be an http:// or https:// URL of an apt repository's root (the directory holding dists/), such as \"https://apt.releases.hashicorp.com\", got %q.", name, repo.URI)
				ok = false
			}
		} else {
			ok = false
		}
		if d.str(c.Attributes, "suite", &repo.Suite) {
			if !debianSuite.MatchString(repo.Suite) {
				d.errorf(c.Attributes["suite"].Expr.Range(), "Invalid suite",
					"\"suite\" of repository %q is a distribution under its dists/, such as \"bookworm\" or \"stable\", got %q.", name, repo.Suite)
				ok = false
			}
		} else {
			ok = false
		}
		if d.strings(c.Attributes, "components", &repo.Components) {
			if len(repo.Components) == 0 {
				d.errorf(c.Attributes["components"].Expr.Range(), "No components", "Repository %q needs at least one component, such as \"main\".", name)
				ok = false
			}
			d.checkNames(c.Attributes, "components", repo.Components, debianComponent, "archive area")
		}
		if d.strings(c.Attributes, "architectures", &repo.Architectures) {
			for _, a := range repo.Architectures {
				if !contains(Architectures, a) {
					d.errorf(c.Attributes["architectures"].Expr.Range(), "Invalid value",
						"\"architectures\" lists Debian architectures among %s, got %q.%s", quoteList(Architectures), a, didYouMean(a, Architectures))
					ok = false
				}
			}
		}
		var written string
		if d.str(c.Attributes, "key", &written) {
			rng := c.Attributes["key"].Expr.Range()
			path := resolvePath(f.Dir, written)
			switch {
			case !d.checkSource(opts, rng, written, path, f.shownDir):
				ok = false
			default:
				if problem := checkKeyring(path); problem != "" {
					d.errorf(rng, "Invalid repository key",
						"\"key\" of repository %q must be an OpenPGP public key file, as gpg --export (binary, .gpg) or gpg --export --armor (.asc) writes it; %q %s.", name, written, problem)
					ok = false
				}
				repo.Key = path
			}
		} else {
			ok = false
		}
		if ok {
			out = append(out, repo)
		}
	}
	return out
}

// String names the block for messages: repository "NAME" (FILE:LINE:COL).
func (r Repository) String() string {
	return fmt.Sprintf("repository %q (%s)", r.Name, pos(r.Range))
}
