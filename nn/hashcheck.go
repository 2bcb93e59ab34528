package nn

import (
	"errors"
	"fmt"

	G "gorgonia.org/gorgonia"
)

// ErrHashCollision says two different nodes of a graph share Gorgonia's
// 32-bit node hash. Its TapeMachine numbers values by that hash alone
// (common-subexpression elimination without an equality check), so it would
// compute one of the two nodes for both, silently or with an operator that
// finds its source never ran. Building the graph again gives its operators
// new ids, and so other hashes.
var ErrHashCollision = errors.New("nn: two nodes of the graph share a hash")

// CheckHashes reports ErrHashCollision if two distinct nodes of g share a
// hashcode. (Equal nodes are already one node: ExprGraph.AddNode merges them.)
func CheckHashes(g *G.ExprGraph) error {
	seen := make(map[uint32]*G.Node, len(g.AllNodes()))
	for _, n := range g.AllNodes() {
		h := n.Hashcode()
		if o, ok := seen[h]; ok && o != n {
			return fmt.Errorf("%w: %v and %v (%#x)", ErrHashCollision, o, n, h)
		}
		seen[h] = n
	}
	return nil
}

// MaxGraphBuilds is how many times a graph is built before a hash collision
// is given up on (each build draws new operator ids; a collision has a
// chance of about 10⁻³ per build of the default network's graphs).
const MaxGraphBuilds = 4

// BuildChecked calls build, which must make a new graph on every call, until
// the graph passes CheckHashes, at most MaxGraphBuilds times: each new graph
// draws new operator ids, and so new hashes. An error from build returns at
// once; after MaxGraphBuilds collisions the last ErrHashCollision does.
func BuildChecked[T any](build func() (T, *G.ExprGraph, error)) (T, error) {
	var zero T
	var err error
	for range MaxGraphBuilds {
		v, g, berr := build()
		if berr != nil {
			return zero, berr
		}
		if err = CheckHashes(g); err == nil {
			return v, nil
		}
	}
	return zero, err
}
