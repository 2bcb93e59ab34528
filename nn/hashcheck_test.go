package nn

import (
	"errors"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
)

// TestCheckHashes: two inputs whose names were found to give one 32-bit
// node hash (x139599 and x322382, a vector of 2 float32s) are two nodes of
// the graph, which Gorgonia's TapeMachine would compile as one; CheckHashes
// names them. Without them the graph passes.
func TestCheckHashes(t *testing.T) {
	g := G.NewGraph()
	a := G.NewVector(g, G.Float32, G.WithShape(2), G.WithName("x139599"))
	if err := CheckHashes(g); err != nil {
		t.Fatalf("one node: %v", err)
	}
	b := G.NewVector(g, G.Float32, G.WithShape(2), G.WithName("x322382"))
	if a == b || a.Hashcode() != b.Hashcode() {
		t.Fatalf("the pair no longer collides (%#x, %#x): Gorgonia's node hash changed", a.Hashcode(), b.Hashcode())
	}
	err := CheckHashes(g)
	if !errors.Is(err, ErrHashCollision) || !strings.Contains(err.Error(), "x139599") || !strings.Contains(err.Error(), "x322382") {
		t.Fatalf("colliding nodes: %v", err)
	}
}
