package demo

import (
	"strconv"

	"github.com/ncsn-go/ncsn/sde"
)

func fmtFloat(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }

func geometricSigmas(hi, lo float64, n int) []float64 {
	s, _ := sde.Geometric(hi, lo, n)
	return s
}
