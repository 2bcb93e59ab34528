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

// TestBuildChecked: a build whose graphs collide is called again, up to
// MaxGraphBuilds times, and its first graph without a collision is kept; a
// build that always collides ends in ErrHashCollision; a build error
// returns at once.
func TestBuildChecked(t *testing.T) {
	colliding := func(collide bool) *G.ExprGraph {
		g := G.NewGraph()
		G.NewVector(g, G.Float32, G.WithShape(2), G.WithName("x139599"))
		if collide {
			G.NewVector(g, G.Float32, G.WithShape(2), G.WithName("x322382"))
		}
		return g
	}
	for _, tc := range []struct {
		name      string
		clean     int // the first call whose graph has no collision (0: none)
		buildErr  bool
		wantCalls int
		want      error
	}{
		{"first graph clean", 1, false, 1, nil},
		{"third graph clean", 3, false, 3, nil},
		{"always colliding", 0, false, MaxGraphBuilds, ErrHashCollision},
		{"build error", 1, true, 1, errBuild},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			v, err := BuildChecked(func() (int, *G.ExprGraph, error) {
				calls++
				if tc.buildErr {
					return 0, nil, errBuild
				}
				return calls, colliding(calls != tc.clean), nil
			})
			if calls != tc.wantCalls || !errors.Is(err, tc.want) {
				t.Fatalf("%d calls, %v; want %d calls, %v", calls, err, tc.wantCalls, tc.want)
			}
			if tc.want == nil && v != tc.clean {
				t.Fatalf("kept the graph of call %d, want %d", v, tc.clean)
			}
		})
	}
}

var errBuild = errors.New("build failed")
