// Package rollout is drover's rollout controller (DESIGN.md §5): it boots green instances of a
// role's image, health-checks them, cuts traffic over, watches, keeps blue for keep_old and destroys
// it, with rollback, abort and garbage collection.
//
// # Persisted state machine
//
// A rollout is a Record in the state store (rollouts/<role>/<seq>, JSON) moving through the states
// of State. Every transition is written with compare-and-swap before the side effects of the new
// state, and every side effect is idempotent:
//
//   - Launch uses a token derived from the rollout ID and the slot, so launching again returns the
//     instance made before;
//   - Terminate of a gone instance is nil;
//   - the cutover's Point (ip.Provider.Assign) of the current holder changes nothing.
//
// The controller never trusts memory: it finds instances by their labels (role, color, rollout,
// slot) through compute.Provider.Instances, and where traffic goes through Cutover.Current. Every
// command first takes the role's lock, then repairs what the records say against what the providers
// report (retire a promoted rollout past keep_old, point the cutover at what should serve, destroy
// instances of rollouts that own none, update in-use image marks). So a drover killed at any point
// and run again with the same command converges to where it would have ended.
//
// # Strategies
//
// How a rollout replaces what serves is its Strategy (strategy.go): bluegreen.go (the default: boot
// every green beside blue, cut over at once, keep blue for keep_old) and raft.go (a Vault cluster:
// its nodes join the first, a new image replaces them one at a time), one file each, listed once in builtinStrategies. The record names its strategy and
// keeps the strategy's own progress (Record.Progress). Plan asks the strategy for its steps and each
// cutover type for its own (CutoverType.Describe). Catalog hands the names of strategies, health
// check and cutover types, and each strategy's rules (Strategy.Validate), to the fleet decoder, so
// drover validate refuses what a rollout would.
//
// # Locks
//
// One command works on a role at a time, holding the lease locks/role/<role> (renewed while it
// works). Another is refused with a *LockedError naming the holder ("user@host pid N") and how long
// it has held the lock; a lock of a dead process on this host is taken over at once.
//
// # What the store holds
//
// Rollout records (no secrets: no user-data; console tails are redacted), the role locks, and
// images/in-use/<identity> marks for every image a rollout in flight or live runs; drover images
// prune keeps those (ImagesInUse).
//
// # Test hook
//
// Options.CrashAfter (DROVER_TEST_CRASH_AFTER in the CLI, see CrashAfterFromEnv) stops a command
// right after a named transition is persisted, as kill -9 would, so fault tests can check that
// running the command again converges.
package rollout
