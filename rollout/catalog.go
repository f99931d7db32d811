package rollout

import (
	"fmt"
	"strings"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/rollout/health"
)

// Catalog names what a fleet's deploy blocks may use, from the registries a Controller drives:
// strategies, health check types and cutover types, and what each strategy admits. It implements
// fleet.DeployCatalog, so drover validate refuses what a rollout would refuse, with the same names.
// It opens nothing and is safe for concurrent use.
type Catalog struct {
	health     *health.Registry
	cutovers   map[string]CutoverType
	strategies map[string]Strategy
}

// NewCatalog returns the catalog of a controller built with these health and cutover registries
// (Options.Health and Options.Cutovers): nil health means health.NewRegistry().
func NewCatalog(h *health.Registry, cutovers map[string]CutoverType) *Catalog {
	if h == nil {
		h = health.NewRegistry()
	}
	cat := &Catalog{health: h, cutovers: builtinCutovers(nil), strategies: builtinStrategies()}
	for k, t := range cutovers {
		cat.cutovers[k] = t
	}
	return cat
}

// Types lists the names of a kind (fleet.DeployStrategy, DeployHealth, DeployCutover): strategies
// with bluegreen, the default, first; the others sorted.
func (cat *Catalog) Types(kind string) []string {
	switch kind {
	case fleet.DeployStrategy:
		return strategyNames(cat.strategies)
	case fleet.DeployHealth:
		return cat.health.Types()
	case fleet.DeployCutover:
		return sortedKeys(cat.cutovers)
	}
	return nil
}

// Admit checks role's deploy block against its strategy: the strategy's own refusals (Validate), or,
// for a strategy that is not built yet, a refusal at "strategy" saying which are. known is false
// for a name that is neither.
func (cat *Catalog) Admit(role *fleet.Role) (known bool, refusals []fleet.Refusal) {
	name := role.Deploy.Strategy
	if name == "" {
		name = defaultStrategy
	}
	if st, ok := cat.strategies[name]; ok {
		return true, st.Validate(role)
	}
	what, soon := upcomingStrategies()[name]
	if !soon {
		return false, nil
	}
	return true, []fleet.Refusal{{Attribute: "strategy", Summary: "Strategy not available yet",
		Detail: fmt.Sprintf("The %s strategy (it %s) is not available yet; role %q can use %s.",
			name, what, role.Name, quoteOr(strategyNames(cat.strategies)))}}
}

// quoteOr joins names as `"a", "b" or "c"`.
func quoteOr(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	if len(q) < 2 {
		return strings.Join(q, "")
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}
