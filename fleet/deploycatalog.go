package fleet

// DeployCatalog tells the decoder which strategies, health check types and cutover types exist and
// what each strategy admits. The rollout package implements it from its registries (cmd passes
// rollout.NewCatalog); fleet imports no rollout, so these names live in one place.
type DeployCatalog interface {
	// Types lists the names of one kind, in the order shown to people: "strategy", "health" or
	// "cutover".
	Types(kind string) []string
	// Admit checks a role's deploy block against its strategy. known is false for a strategy the
	// catalog has never heard of (the decoder reports it with the names Types gives); otherwise
	// each refusal is something the strategy cannot do (one not built yet refuses everything).
	Admit(role *Role) (known bool, refusals []Refusal)
}

// Kinds of names a DeployCatalog lists.
const (
	DeployStrategy = "strategy"
	DeployHealth   = "health"
	DeployCutover  = "cutover"
)

// Refusal is what a strategy cannot do with a deploy block, reported as a diagnostic at the
// block's Attribute ("strategy", "count") or at the block itself when it is not set.
type Refusal struct {
	Attribute string
	Summary   string
	Detail    string
}
