package data

import (
	"context"
	"math"

	"github.com/ncsn-go/ncsn/internal/blas"
)

// MaxPairwiseDistance returns the largest Euclidean distance between two
// images of ds and their indices, exactly: blocked float32 products
// ‖a‖² + ‖b‖² − 2a·b find every pair within a relative 1e-3 of the maximum,
// and those are re-measured in float64. progress, if set, is called after
// each block row. A cancelled ctx stops the pass within one block product
// (about 20 ms for MNIST's images) with ctx's error.
func MaxPairwiseDistance(ctx context.Context, ds *Dataset, progress func(done, total int)) (dist float64, i, j int, err error) {
	n, d := ds.N, ds.Dim()
	const bs = 1024
	norms := make([]float32, n)
	for i := 0; i < n; i++ {
		var s float64
		for _, v := range ds.Image(i) {
			s += float64(v) * float64(v)
		}
		norms[i] = float32(s)
	}
	type pair struct{ i, j int }
	var cands []pair
	best := float32(0) // running maximum of d² in float32
	g := make([]float32, bs*bs)
	blocks := (n + bs - 1) / bs
	for bi := 0; bi < blocks; bi++ {
		i0, i1 := bi*bs, min(n, (bi+1)*bs)
		for bj := bi; bj < blocks; bj++ {
			if err := ctx.Err(); err != nil {
				return 0, 0, 0, err
			}
			j0, j1 := bj*bs, min(n, (bj+1)*bs)
			m, k := i1-i0, j1-j0
			blas.Gemm(false, true, m, k, d, 1, ds.Images[i0*d:i1*d], d, ds.Images[j0*d:j1*d], d, 0, g[:m*k], k)
			for a := 0; a < m; a++ {
				row := g[a*k : (a+1)*k]
				na := norms[i0+a]
				for b, dot := range row {
					d2 := na + norms[j0+b] - 2*dot
					if d2 >= best*(1-1e-3) {
						if d2 > best {
							best = d2
						}
						cands = append(cands, pair{i0 + a, j0 + b})
					}
				}
			}
			if len(cands) > 1<<16 { // prune what the grown maximum has overtaken
				kept := cands[:0]
				for _, c := range cands {
					if exactD2(ds, c.i, c.j) >= float64(best)*(1-2e-3) {
						kept = append(kept, c)
					}
				}
				cands = kept
			}
		}
		if progress != nil {
			progress(bi+1, blocks)
		}
	}
	var bd float64
	bi, bj := 0, 0
	for _, c := range cands {
		if v := exactD2(ds, c.i, c.j); v > bd {
			bd, bi, bj = v, c.i, c.j
		}
	}
	return math.Sqrt(bd), bi, bj, nil
}

func exactD2(ds *Dataset, i, j int) float64 {
	a, b := ds.Image(i), ds.Image(j)
	var s float64
	for k := range a {
		v := float64(a[k]) - float64(b[k])
		s += v * v
	}
	return s
}
