package ecssim

// SetInitLookup replaces how the simulator finds tini for initProcessEnabled tasks and
// returns a function that restores it; tests that call it must not run in parallel.
func SetInitLookup(f func() (string, error)) (restore func()) {
	old := lookInit
	lookInit = f
	return func() { lookInit = old }
}
