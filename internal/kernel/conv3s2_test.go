package kernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func TestConv3S2MatchesNaive(t *testing.T) {
	eachSet(t, func(t *testing.T) {
		for _, g := range []Conv3S2{
			{C: 16, O: 16, B: 3, H: 28, W: 28},
			{C: 32, O: 32, B: 2, H: 14, W: 14},
			{C: 3, O: 5, B: 4, H: 6, W: 10},
			{C: 1, O: 1, B: 2, H: 2, W: 2},
			{C: 2, O: 3, B: 1, H: 4, W: 200}, // phases wider than a 96-pixel block
		} {
			poisonPool()
			r := rand.New(rand.NewPCG(11, uint64(g.C*100+g.O)))
			x := randn(r, g.C*g.B*g.H*g.W)
			w := randn(r, g.O*g.C*9)
			bias := randn(r, g.O)
			dy := randn(r, g.O*g.B*g.H*g.W/4)
			wy, wdx, wdw := naiveConv(g.C, g.O, g.B, g.H, g.W, 2, x, w, bias, dy)
			// Stale values, the padding's among them, must be overwritten.
			y, dx, dw := nanFilled(len(wy)), nanFilled(len(x)), nanFilled(len(w))
			xp := nanFilled(g.PaddedLen())
			g.ForwardPadded(x, w, bias, y, xp)
			g.Backward(x, xp, w, dy, dx, dw)
			dw2 := nanFilled(len(w))
			g.Backward(x, nil, w, dy, dx, dw2)
			for i := range dw {
				if dw[i] != dw2[i] {
					t.Fatalf("%+v: Backward with and without the kept phases differ at %d", g, i)
				}
			}
			name := fmt.Sprintf("%+v ", g)
			near(t, name+"y", y, wy, math.Sqrt(float64(g.C*9))+1)
			near(t, name+"dx", dx, wdx, math.Sqrt(float64(g.O*9))+1)
			near(t, name+"dw", dw, wdw, math.Sqrt(float64(g.B*g.H*g.W))+1)
		}
	})
}
